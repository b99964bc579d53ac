/* cmd_predict.c: `adapler predict`: JSONL in on stdin, JSONL out on stdout. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <string.h>

#include "bert.h"
#include "cli.h"
#include "common.h"
#include "method.h"
#include "wordpiece.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: adapler predict --model DIR [--batch N] [--threads N] [--max-len N] [--no-lower]\n"
            "                       [--weights f32|f16|bf16|i8]\n\n"
            "Run a sequence classifier (Hugging Face layout: config.json, model.safetensors) on\n"
            "JSONL read from stdin, one object per line, either token ids\n"
            "  {\"input_ids\": [2, 1037, ...], \"token_type_ids\": [0, 0, ...]}   (token_type_ids optional)\n"
            "or text, WordPiece-encoded with the model's vocab.txt ([CLS] text [SEP] text_pair [SEP])\n"
            "  {\"text\": \"...\", \"text_pair\": \"...\"}                          (text_pair optional)\n"
            "and write one JSON line per input, in the same order:\n"
            "  {\"logits\": [...], \"label\": k, \"layer_tokens\": [n_0, ..., n_L-1], \"flops\": F}\n"
            "layer_tokens[l] is the number of tokens entering layer l; flops the exact count of\n"
            "the forward pass (see engine/flops.c).  The whole input is validated before anything\n"
            "is written: a bad line is a one-line error naming it and nothing goes to stdout.\n\n"
            "  --batch N     sequences per packed batch (default 32)\n"
            "  --threads N   OpenMP/OpenBLAS threads (default: $OMP_NUM_THREADS, else all cores)\n"
            "  --max-len N   truncate text input to N pieces (default: the model's positions)\n"
            "  --no-lower    keep case (for cased vocabularies; ours are uncased)\n"
            "  --weights W   f32 (default), f16, bf16 or i8: the encoder's projections and pooler\n"
            "                rounded to IEEE half or bfloat16 (half the bytes) or quantized to int8\n"
            "                with one scale per output row (a quarter), and streamed as such; sums\n"
            "                stay fp32\n\n"
            "With a pruning method (--method NAME and its knob, below) each output line also holds\n"
            "\"layer_positions\": for every layer, the original positions of the tokens entering it.\n\n%s",
            METHOD_OPTS_HELP);
}

typedef struct {
    int32_t *ids, *types;
    int *len;
    size_t n, cap, tok, tok_cap;
} inputs;

static int int_array(const cJSON *a, const char *key, long line, int32_t **buf, size_t at, size_t *tok_cap, int *n_out) {
    if (!cJSON_IsArray(a)) return adp_seterr("stdin:%ld: \"%s\" must be an array of integers", line, key);
    int n = cJSON_GetArraySize(a);
    if (at + (size_t)n > *tok_cap) {
        while (at + (size_t)n > *tok_cap) *tok_cap = *tok_cap ? 2 * *tok_cap : 4096;
        *buf = reallocCheck(*buf, sizeof(int32_t) * *tok_cap);
    }
    int i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) {
        double v = cJSON_IsNumber(e) ? e->valuedouble : -1e300;
        if (!cJSON_IsNumber(e) || v != (double)(int32_t)v)
            return adp_seterr("stdin:%ld: \"%s\"[%d] is not an integer", line, key, i);
        (*buf)[at + i] = (int32_t)v;
    }
    *n_out = n;
    return ADP_OK;
}

/* Text input: the tokenizer, loaded on first use. */
typedef struct {
    const char *vocab_path;
    int lower;
    size_t max_len;
    wordpiece wp;
    int loaded;
    wp_encoding enc;
} text_in;

static int encode_text(text_in *ti, const cJSON *text, const cJSON *pair, long line) {
    if (!cJSON_IsString(text)) return adp_seterr("stdin:%ld: \"text\" must be a string", line);
    if (pair && !cJSON_IsString(pair)) return adp_seterr("stdin:%ld: \"text_pair\" must be a string", line);
    if (!ti->loaded) {
        if (!ti->vocab_path) return adp_seterr("stdin:%ld: text input, but the model directory has no vocab.txt", line);
        if (wordpiece_load(&ti->wp, ti->vocab_path, ti->lower) != ADP_OK) return ADP_ERR;
        ti->loaded = 1;
    }
    const char *p = pair ? pair->valuestring : NULL;
    if (wordpiece_encode(&ti->wp, &ti->enc, text->valuestring, strlen(text->valuestring), p, p ? strlen(p) : 0,
                         ti->max_len) != ADP_OK)
        return adp_preferr("stdin:%ld: ", line);
    if (ti->enc.n_words_a == 0) return adp_seterr("stdin:%ld: \"text\" is empty (no words)", line);
    return ADP_OK;
}

static int read_inputs(FILE *in, const bert_config *c, inputs *x, text_in *ti) {
    char *line = NULL;
    size_t cap = 0, types_cap = 0;
    long lineno = 0;
    int rc = ADP_OK;
    while (rc == ADP_OK && getline(&line, &cap, in) != -1) {
        lineno++;
        cJSON *j = cJSON_Parse(line);
        if (!j || !cJSON_IsObject(j)) {
            rc = adp_seterr("stdin:%ld: not a JSON object", lineno);
            cJSON_Delete(j);
            break;
        }
        if (x->n == x->cap) x->len = reallocCheck(x->len, sizeof(int) * (x->cap = x->cap ? 2 * x->cap : 256));
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(j, "input_ids");
        const cJSON *types = cJSON_GetObjectItemCaseSensitive(j, "token_type_ids");
        int n = 0, nt = 0;
        size_t ids_cap = x->tok_cap;
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(j, "text");
        if (!ids && !text) rc = adp_seterr("stdin:%ld: missing \"input_ids\" (or \"text\")", lineno);
        if (!rc && ids) rc = int_array(ids, "input_ids", lineno, &x->ids, x->tok, &ids_cap, &n);
        if (!rc && !ids) {
            rc = encode_text(ti, text, cJSON_GetObjectItemCaseSensitive(j, "text_pair"), lineno);
            if (!rc) {
                n = (int)ti->enc.n;
                while (x->tok + (size_t)n > ids_cap) ids_cap = ids_cap ? 2 * ids_cap : 4096;
                if (ids_cap != x->tok_cap) x->ids = reallocCheck(x->ids, sizeof(int32_t) * ids_cap);
                memcpy(x->ids + x->tok, ti->enc.ids, sizeof(int32_t) * (size_t)n);
                types = NULL;
            }
        }
        if (!rc && n == 0) rc = adp_seterr("stdin:%ld: \"input_ids\" is empty", lineno);
        if (!rc && n > c->max_pos)
            rc = adp_seterr("stdin:%ld: %d tokens, more than the model's %d positions", lineno, n, c->max_pos);
        for (int i = 0; !rc && i < n; i++)
            if (x->ids[x->tok + i] < 0 || x->ids[x->tok + i] >= c->vocab_size)
                rc = adp_seterr("stdin:%ld: input_ids[%d] = %d outside the vocabulary [0, %d)", lineno, i,
                                x->ids[x->tok + i], c->vocab_size);
        size_t tcap = types_cap;
        if (!rc && !ids) {
            while (x->tok + (size_t)n > tcap) tcap = tcap ? 2 * tcap : 4096;
            if (tcap != types_cap) x->types = reallocCheck(x->types, sizeof(int32_t) * tcap);
            memcpy(x->types + x->tok, ti->enc.type_ids, sizeof(int32_t) * (size_t)n);
        } else if (!rc && types) {
            rc = int_array(types, "token_type_ids", lineno, &x->types, x->tok, &tcap, &nt);
            if (!rc && nt != n)
                rc = adp_seterr("stdin:%ld: %d token_type_ids for %d input_ids", lineno, nt, n);
            for (int i = 0; !rc && i < n; i++)
                if (x->types[x->tok + i] < 0 || x->types[x->tok + i] >= c->type_vocab)
                    rc = adp_seterr("stdin:%ld: token_type_ids[%d] = %d outside [0, %d)", lineno, i,
                                    x->types[x->tok + i], c->type_vocab);
        } else if (!rc) {
            while (x->tok + (size_t)n > tcap) tcap = tcap ? 2 * tcap : 4096;
            if (tcap != types_cap) x->types = reallocCheck(x->types, sizeof(int32_t) * tcap);
            memset(x->types + x->tok, 0, sizeof(int32_t) * (size_t)n);
        }
        types_cap = tcap;
        x->tok_cap = ids_cap;
        /* both buffers must have the same capacity for the next line */
        if (types_cap < x->tok_cap) x->types = reallocCheck(x->types, sizeof(int32_t) * (types_cap = x->tok_cap));
        if (x->tok_cap < types_cap) x->ids = reallocCheck(x->ids, sizeof(int32_t) * (x->tok_cap = types_cap));
        if (!rc) {
            x->len[x->n++] = n;
            x->tok += (size_t)n;
        }
        cJSON_Delete(j);
    }
    free(line);
    if (!rc && ferror(in)) rc = adp_seterr("stdin: read error");
    return rc;
}

int cmd_predict(int argc, char **argv) {
    const char *model_dir = NULL;
    long batch = 32, threads = 0, max_len = 0;
    int lower = 1, wfmt = FMT_F32;
    static const struct option opts[] = {{"model", 1, 0, 'm'},   {"batch", 1, 0, 'b'},    {"threads", 1, 0, 't'},
                                         {"max-len", 1, 0, 'L'}, {"no-lower", 0, 0, 'u'}, {"help", 0, 0, 'h'}, {"weights", 1, 0, 'w'},
                                         {0, 0, 0, 0}};
    /* method options first (they are shared with eval), the rest through getopt */
    method_opts mopt;
    method_opts_init(&mopt);
    char **rest = mallocCheck(sizeof(char *) * (size_t)(argc + 1));
    int nrest = 0;
    for (int i = 0; i < argc; i++) {
        int r = i ? method_opts_parse(&mopt, argc, argv, &i) : 0;
        if (r == ADP_ERR) {
            fprintf(stderr, "predict: %s\n", adp_errmsg());
            free(rest);
            return 2;
        }
        if (r == 0) rest[nrest++] = argv[i];
    }
    rest[nrest] = NULL;
    argc = nrest, argv = rest;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model_dir = optarg; break;
        case 'b': if (!cli_parse_int("predict", "--batch", optarg, 1, 1000000, &batch)) { free(rest); return 2; } break;
        case 't': if (!cli_parse_int("predict", "--threads", optarg, 0, 1024, &threads)) { free(rest); return 2; } break;
        case 'L': if (!cli_parse_int("predict", "--max-len", optarg, 3, 1000000, &max_len)) { free(rest); return 2; } break;
        case 'u': lower = 0; break;
        case 'w': if (!cli_parse_weights("predict", optarg, &wfmt)) { free(rest); return 2; } break;
        case 'h': usage(stdout); free(rest); return 0;
        default: usage(stderr); free(rest); return 2;
        }
    }
    if (!model_dir || optind < argc) {
        fprintf(stderr, optind < argc ? "predict: unexpected argument '%s'\n" : "predict: --model DIR is required\n",
                optind < argc ? argv[optind] : "");
        free(rest);
        return 2;
    }
    free(rest);
    adp_set_threads((int)threads);
    bert_model m;
    st_file st;
    if (bert_model_load(&m, model_dir, 0, &st) != ADP_OK) {
        fprintf(stderr, "predict: %s\n", adp_errmsg());
        return 1;
    }
    if (bert_model_use_weights(&m, wfmt) != ADP_OK) {
        fprintf(stderr, "predict: %s\n", adp_errmsg());
        st_close(&st);
        bert_model_free(&m);
        return 1;
    }
    method me;
    int mrc = method_create(&me, &mopt, &m, &st);
    st_close(&st);
    if (mrc != ADP_OK) {
        fprintf(stderr, "predict: %s\n", adp_errmsg());
        bert_model_free(&m);
        return 1;
    }
    inputs x = {0};
    text_in ti = {.vocab_path = m.vocab_path, .lower = lower,
                  .max_len = (size_t)(max_len ? ADP_MIN(max_len, m.cfg.max_pos) : m.cfg.max_pos)};
    int read_rc = read_inputs(stdin, &m.cfg, &x, &ti);
    if (ti.loaded) wordpiece_free(&ti.wp);
    wp_encoding_free(&ti.enc);
    if (read_rc != ADP_OK) {
        fprintf(stderr, "predict: %s\n", adp_errmsg());
        free(x.ids), free(x.types), free(x.len);
        method_free(&me);
        bert_model_free(&m);
        return 1;
    }
    bert_ctx ctx;
    bert_ctx_init(&ctx);
    int *off = mallocCheck(sizeof(int) * (size_t)(batch + 1));
    int rc = 0;
    size_t tok = 0;
    for (size_t s0 = 0; s0 < x.n && !rc; s0 += (size_t)batch) {
        int k = (int)ADP_MIN((size_t)batch, x.n - s0);
        off[0] = 0;
        for (int i = 0; i < k; i++) off[i + 1] = off[i] + x.len[s0 + i];
        bert_batch b = {.n_seq = k, .ids = x.ids + tok, .types = x.types + tok, .off = off};
        const bert_result *r;
        bert_run_opts ro = {.prune = me.ps, .batch_first = (int)s0};
        if (bert_forward(&ctx, &m, &b, &ro, &r) != ADP_OK) {
            fprintf(stderr, "predict: batch starting at line %zu: %s\n", s0 + 1, adp_errmsg());
            rc = 1;
            break;
        }
        for (int i = 0; i < k; i++) {
            const float *lg = r->logits + (size_t)i * r->n_labels;
            int best = 0;
            for (int c = 1; c < r->n_labels; c++) best = lg[c] > lg[best] ? c : best;
            printf("{\"logits\": [");
            for (int c = 0; c < r->n_labels; c++) printf("%s%.9g", c ? ", " : "", lg[c]);
            printf("], \"label\": %d, \"layer_tokens\": [", best);
            for (int l = 0; l < r->n_layers; l++) printf("%s%d", l ? ", " : "", r->layer_tokens[i * r->n_layers + l]);
            printf("], \"flops\": %.0f", r->flops[i]);
            if (me.ps) { /* original positions entering each layer: alive at stage 2l iff drop_stage > 2l */
                printf(", \"layer_positions\": [");
                for (int l = 0; l < r->n_layers; l++) {
                    printf("%s[", l ? ", " : "");
                    for (int p = 0, first = 1; p < off[i + 1] - off[i]; p++)
                        if (r->drop_stage[off[i] + p] > 2 * l) printf("%s%d", first ? "" : ", ", p), first = 0;
                    printf("]");
                }
                printf("]");
            }
            printf("}\n");
        }
        tok += (size_t)off[k];
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "predict: write error on stdout\n");
        rc = 1;
    }
    free(off), free(x.ids), free(x.types), free(x.len);
    bert_ctx_free(&ctx);
    method_free(&me);
    bert_model_free(&m);
    return rc;
}
