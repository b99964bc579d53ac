/* cmd_data.c: `adapler data stats|bench|dump`: look at a dataset, time its tokenization,
 * or export it as JSON lines (for the PyTorch reference and the Python tests). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "common.h"
#include "dataset.h"
#include "wordpiece.h"

static void usage(FILE *f) {
    fprintf(f, "usage: adapler data stats --dataset NAME [--vocab FILE] [--no-lower] [dataset options]\n"
               "       adapler data bench --dataset NAME --vocab FILE [--split S] [--min-time SEC] [dataset options]\n"
               "       adapler data dump  --dataset NAME --split S [--vocab FILE] [--max-len N] [--no-lower] [dataset options]\n\n"
               "  stats   per split: examples, label counts, words and WordPiece lengths (p50/p90/p99/max,\n"
               "          [CLS]/[SEP] included, untruncated), share longer than 512 pieces, rationale coverage\n"
               "  bench   one JSON line: tokenizer throughput in MB of text per second on one core, and the time to\n"
               "          load and tokenize the split (default train)\n"
               "  dump    the split as JSON lines: id, text, text_pair, label, label_name, n_words, rationale,\n"
               "          annotator_rationales; with --vocab also input_ids, token_type_ids, word_ids, tokens\n\n"
               "  --vocab FILE     vocab.txt (one token per line)\n"
               "  --no-lower       cased tokenization\n"
               "  --max-len N      dump: truncate to N pieces (default 512, 0 = none)\n"
               "  --split S        train, dev or test\n"
               "  --min-time SEC   bench: repeat the throughput measurement for at least SEC seconds (default 1)\n\n%s",
            DATASET_OPTS_HELP);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static uint32_t pct(const uint32_t *v, size_t n, double p) {
    if (!n) return 0;
    size_t r = (size_t)ceil(p / 100.0 * (double)n);
    return v[r ? r - 1 : 0];
}

static int split_exists(const dataset_opts *o, split_id s) {
    /* tsv:DIR tasks may lack test.tsv; every other dataset has all three splits */
    if (strncmp(o->name, "tsv:", 4) || s != SPLIT_TEST) return 1;
    char path[4096];
    snprintf(path, sizeof path, "%s/test.tsv", o->name + 4);
    return access(path, F_OK) == 0;
}

static int do_stats(const dataset_opts *o, const char *vocab, int lower) {
    wordpiece wp;
    if (vocab && wordpiece_load(&wp, vocab, lower) != ADP_OK) {
        fprintf(stderr, "data stats: %s\n", adp_errmsg());
        return 1;
    }
    if (!strcmp(o->name, "planted")) printf("dataset planted (generated, no files)");
    else printf("dataset %s (data from %s)", o->name, strncmp(o->name, "tsv:", 4) ? dataset_data_root(o) : o->name + 4);
    if (vocab) printf(", vocabulary %s (%zu pieces, %s)", vocab, wp.n, lower ? "uncased" : "cased");
    printf("\n%-6s %9s  %-52s %-23s", "split", "examples", "labels", "words p50/p90/p99/max");
    if (vocab) printf(" %-24s %6s", "pieces p50/p90/p99/max", ">512");
    printf("  rationales\n");
    int rc = 0;
    for (int s = 0; s < N_SPLITS && !rc; s++) {
        if (!split_exists(o, (split_id)s)) {
            printf("%-6s %9s  (no test.tsv)\n", split_name((split_id)s), "-");
            continue;
        }
        dataset ds;
        if (dataset_load(&ds, o, (split_id)s) != ADP_OK) {
            fprintf(stderr, "data stats: %s\n", adp_errmsg());
            rc = 1;
            break;
        }
        char labels[512] = "";
        size_t *counts = callocCheck((size_t)ds.n_labels + 1, sizeof *counts);
        uint32_t *words = mallocCheck((ds.n ? ds.n : 1) * sizeof *words);
        size_t n_rat = 0;
        double rat_frac = 0;
        for (size_t i = 0; i < ds.n; i++) {
            const example *ex = &ds.ex[i];
            counts[ex->label < 0 ? (size_t)ds.n_labels : (size_t)ex->label]++;
            words[i] = ex->n_words;
            if (ex->rationale) {
                size_t m = 0;
                for (uint32_t w = 0; w < ex->n_words; w++) m += ex->rationale[w];
                n_rat++;
                rat_frac += ex->n_words ? (double)m / ex->n_words : 0;
            }
        }
        for (int c = 0; c <= ds.n_labels; c++) {
            if (!counts[c]) continue;
            size_t l = strlen(labels);
            snprintf(labels + l, sizeof labels - l, "%s%s %zu", l ? ", " : "", c < ds.n_labels ? ds.label_names[c] : "unlabelled",
                     counts[c]);
        }
        qsort(words, ds.n, sizeof *words, cmp_u32);
        char wcol[64];
        snprintf(wcol, sizeof wcol, "%u/%u/%u/%u", pct(words, ds.n, 50), pct(words, ds.n, 90), pct(words, ds.n, 99),
                 ds.n ? words[ds.n - 1] : 0);
        printf("%-6s %9zu  %-52s %-23s", split_name((split_id)s), ds.n, labels, wcol);
        if (vocab) {
            packed_tokens pk;
            if (dataset_pack(&pk, &ds, &wp, 0) != ADP_OK) {
                fprintf(stderr, "data stats: %s\n", adp_errmsg());
                rc = 1;
            } else {
                size_t over = 0;
                for (size_t i = 0; i < pk.n_seq; i++) {
                    words[i] = (uint32_t)(pk.seq_off[i + 1] - pk.seq_off[i]);
                    over += words[i] > 512;
                }
                qsort(words, ds.n, sizeof *words, cmp_u32);
                char pcol[64];
                snprintf(pcol, sizeof pcol, "%u/%u/%u/%u", pct(words, ds.n, 50), pct(words, ds.n, 90),
                         pct(words, ds.n, 99), ds.n ? words[ds.n - 1] : 0);
                printf(" %-24s %5.1f%%", pcol, ds.n ? 100.0 * (double)over / (double)ds.n : 0.0);
                packed_tokens_free(&pk);
            }
        }
        if (n_rat) printf("  %zu, %.1f%% of words\n", n_rat, 100.0 * rat_frac / (double)n_rat);
        else printf("  -\n");
        free(counts);
        free(words);
        dataset_free(&ds);
    }
    if (vocab) wordpiece_free(&wp);
    return rc;
}

static int do_bench(const dataset_opts *o, const char *vocab, int lower, split_id split, double min_time) {
    if (!vocab) {
        fprintf(stderr, "data bench: --vocab FILE is required\n");
        return 2;
    }
    wordpiece wp;
    double t0 = adp_now();
    if (wordpiece_load(&wp, vocab, lower) != ADP_OK) {
        fprintf(stderr, "data bench: %s\n", adp_errmsg());
        return 1;
    }
    double t_vocab = adp_now() - t0;
    dataset ds;
    t0 = adp_now();
    if (dataset_load(&ds, o, split) != ADP_OK) {
        fprintf(stderr, "data bench: %s\n", adp_errmsg());
        wordpiece_free(&wp);
        return 1;
    }
    double t_load = adp_now() - t0;
    packed_tokens pk;
    t0 = adp_now();
    if (dataset_pack(&pk, &ds, &wp, 512) != ADP_OK) {
        fprintf(stderr, "data bench: %s\n", adp_errmsg());
        dataset_free(&ds);
        wordpiece_free(&wp);
        return 1;
    }
    double t_pack = adp_now() - t0;
    /* throughput: the basic + WordPiece tokenizer alone over every text, repeated */
    wp_encoding enc = {0};
    size_t bytes = 0, pieces = 0, reps = 0;
    double t_tok = 0;
    t0 = adp_now();
    do {
        for (size_t i = 0; i < ds.n; i++) {
            const example *ex = &ds.ex[i];
            size_t len = strlen(ex->text);
            wordpiece_tokenize(&wp, &enc, ex->text, len);
            bytes += len;
            pieces += enc.n;
            if (ex->pair) {
                len = strlen(ex->pair);
                wordpiece_tokenize(&wp, &enc, ex->pair, len);
                bytes += len;
                pieces += enc.n;
            }
        }
        reps++;
        t_tok = adp_now() - t0;
    } while (t_tok < min_time && ds.n > 0);
    printf("{\"bench\":\"tokenizer\",\"dataset\":\"%s\",\"split\":\"%s\",\"examples\":%zu,\"text_bytes\":%zu,"
           "\"pieces\":%zu,\"threads\":1,\"tokenizer_mb_per_s\":%.2f,\"vocab_load_s\":%.4f,\"load_s\":%.4f,"
           "\"tokenize_s\":%.4f,\"load_tokenize_s\":%.4f,\"vocab\":\"%s\",\"vocab_size\":%zu,\"repeats\":%zu}\n",
           o->name, split_name(split), ds.n, pk.n_bytes, pk.n_tok, t_tok > 0 ? (double)bytes / t_tok / 1e6 : 0.0,
           t_vocab, t_load, t_pack, t_load + t_pack, vocab, wp.n, reps);
    (void)pieces;
    wp_encoding_free(&enc);
    packed_tokens_free(&pk);
    dataset_free(&ds);
    wordpiece_free(&wp);
    return 0;
}

static cJSON *flags_json(const uint8_t *v, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static int do_dump(const dataset_opts *o, const char *vocab, int lower, split_id split, size_t max_len) {
    wordpiece wp;
    if (vocab && wordpiece_load(&wp, vocab, lower) != ADP_OK) {
        fprintf(stderr, "data dump: %s\n", adp_errmsg());
        return 1;
    }
    dataset ds;
    if (dataset_load(&ds, o, split) != ADP_OK) {
        fprintf(stderr, "data dump: %s\n", adp_errmsg());
        if (vocab) wordpiece_free(&wp);
        return 1;
    }
    wp_encoding enc = {0};
    int rc = 0;
    for (size_t i = 0; i < ds.n && !rc; i++) {
        const example *ex = &ds.ex[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", ex->id);
        cJSON_AddStringToObject(j, "text", ex->text);
        if (ex->pair) cJSON_AddStringToObject(j, "text_pair", ex->pair);
        cJSON_AddNumberToObject(j, "label", ex->label);
        if (ex->label >= 0) cJSON_AddStringToObject(j, "label_name", ds.label_names[ex->label]);
        cJSON_AddNumberToObject(j, "n_words", ex->n_words);
        if (ex->rationale) cJSON_AddItemToObject(j, "rationale", flags_json(ex->rationale, ex->n_words));
        if (ex->n_annot) {
            cJSON *a = cJSON_CreateArray();
            for (uint32_t k = 0; k < ex->n_annot; k++)
                cJSON_AddItemToArray(a, flags_json(ex->annot_rationale + (size_t)k * ex->n_words, ex->n_words));
            cJSON_AddItemToObject(j, "annotator_rationales", a);
        }
        if (vocab) {
            if (wordpiece_encode(&wp, &enc, ex->text, strlen(ex->text), ex->pair, ex->pair ? strlen(ex->pair) : 0,
                                 max_len) != ADP_OK) {
                fprintf(stderr, "data dump: %s: %s\n", ex->id, adp_errmsg());
                rc = 1;
            } else {
                cJSON_AddItemToObject(j, "input_ids", cJSON_CreateIntArray(enc.ids, (int)enc.n));
                cJSON_AddItemToObject(j, "token_type_ids", cJSON_CreateIntArray(enc.type_ids, (int)enc.n));
                cJSON_AddItemToObject(j, "word_ids", cJSON_CreateIntArray(enc.word_ids, (int)enc.n));
                cJSON *toks = cJSON_CreateArray();
                for (size_t k = 0; k < enc.n; k++)
                    cJSON_AddItemToArray(toks, cJSON_CreateString(wordpiece_token(&wp, enc.ids[k])));
                cJSON_AddItemToObject(j, "tokens", toks);
            }
        }
        char *s = cJSON_PrintUnformatted(j);
        if (!s || puts(s) < 0) {
            fprintf(stderr, "data dump: write error\n");
            rc = 1;
        }
        cJSON_free(s);
        cJSON_Delete(j);
    }
    if (!rc && fflush(stdout) != 0) {
        fprintf(stderr, "data dump: write error\n");
        rc = 1;
    }
    wp_encoding_free(&enc);
    dataset_free(&ds);
    if (vocab) wordpiece_free(&wp);
    return rc;
}

int cmd_data(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "stats") && strcmp(sub, "bench") && strcmp(sub, "dump")) {
        fprintf(stderr, "data: unknown subcommand '%s' (stats, bench or dump)\n", sub);
        return 2;
    }
    dataset_opts o;
    dataset_opts_init(&o);
    const char *vocab = NULL, *split_s = NULL;
    int lower = 1;
    long max_len = 512;
    double min_time = 1.0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int r = dataset_opts_parse(&o, argc, argv, &i);
        if (r < 0) {
            fprintf(stderr, "data %s: %s\n", sub, adp_errmsg());
            return 2;
        }
        if (r) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--no-lower")) {
            lower = 0;
        } else if (i + 1 < argc && !strcmp(a, "--vocab")) {
            vocab = argv[++i];
        } else if (i + 1 < argc && !strcmp(a, "--split")) {
            split_s = argv[++i];
        } else if (i + 1 < argc && !strcmp(a, "--max-len")) {
            if (!cli_parse_int("data", "--max-len", argv[++i], 0, 1L << 30, &max_len)) return 2;
        } else if (i + 1 < argc && !strcmp(a, "--min-time")) {
            if (!cli_parse_double("data", "--min-time", argv[++i], 0, 3600, &min_time)) return 2;
        } else {
            fprintf(stderr, "data %s: unknown or incomplete option '%s' (try --help)\n", sub, a);
            return 2;
        }
    }
    if (!o.name) {
        fprintf(stderr, "data %s: --dataset NAME is required (%s)\n", sub, DATASET_NAMES);
        return 2;
    }
    if (max_len == 1 || max_len == 2) {
        fprintf(stderr, "data %s: --max-len must be 0 or at least 3\n", sub);
        return 2;
    }
    split_id split = SPLIT_TRAIN;
    if (split_s && split_parse(split_s, &split) != ADP_OK) {
        fprintf(stderr, "data %s: %s\n", sub, adp_errmsg());
        return 2;
    }
    if (!strcmp(sub, "stats")) return do_stats(&o, vocab, lower);
    if (!strcmp(sub, "bench")) return do_bench(&o, vocab, lower, split, min_time);
    if (!split_s) {
        fprintf(stderr, "data dump: --split S is required\n");
        return 2;
    }
    return do_dump(&o, vocab, lower, split, (size_t)max_len);
}
