/* cmd_saliency.c: `adapler saliency`: compute (or check) the gradient x input saliency
 * targets of a dataset split for a fine-tuned model, cached next to the model. */
#include <string.h>

#include "bert.h"
#include "cli.h"
#include "common.h"
#include "dataset.h"
#include "saliency.h"
#include "wordpiece.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: adapler saliency --model DIR --dataset NAME [--split train|dev|test] [--max-len N]\n"
            "                        [--class gold|pred] [--batch N] [--threads N] [--out FILE] [--force]\n\n"
            "Gradient x input saliency of every token of a split: s_j = || dz_c/de_j * e_j ||_2, e the\n"
            "embedding output, z_c the logit of the gold label (AdapLeR's targets) or of the predicted\n"
            "class.  Written to FILE (default DIR/saliency-<dataset>-<split>-<max_len>.safetensors; the\n"
            "format is documented in engine/saliency.h).  An existing cache is reused unless it is stale:\n"
            "made by another model.safetensors (content hash), dataset, split, class or max length.\n"
            "Prints one JSON line: cache, status (cached or computed), examples, tokens, seconds.\n\n"
            "  --split S      default train\n"
            "  --max-len N    truncate to N pieces (default 128, as `adapler train`; must match training)\n"
            "  --class C      gold (default) or pred\n"
            "  --batch N      sequences per batch (default 32)\n"
            "  --force        recompute even if the cache is valid\n\n%s",
            DATASET_OPTS_HELP);
}

int cmd_saliency(int argc, char **argv) {
    const char *model_dir = NULL, *out = NULL, *cls_name = "gold";
    long batch = 32, threads = 0, max_len = 128;
    int force = 0;
    split_id split = SPLIT_TRAIN;
    dataset_opts dopt;
    dataset_opts_init(&dopt);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = dataset_opts_parse(&dopt, argc, argv, &i);
        if (r == ADP_ERR) {
            fprintf(stderr, "saliency: %s\n", adp_errmsg());
            return 2;
        }
        if (r == 1) continue;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--force")) force = 1;
        else if (!strcmp(a, "--model") && v) model_dir = v, i++;
        else if (!strcmp(a, "--out") && v) out = v, i++;
        else if (!strcmp(a, "--class") && v) {
            if (strcmp(v, "gold") && strcmp(v, "pred")) {
                fprintf(stderr, "saliency: --class: expected gold or pred, got '%s'\n", v);
                return 2;
            }
            cls_name = v, i++;
        } else if (!strcmp(a, "--split") && v) {
            if (split_parse(v, &split) != ADP_OK) {
                fprintf(stderr, "saliency: --split: %s\n", adp_errmsg());
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--batch") && v) {
            if (!cli_parse_int("saliency", a, v, 1, 1 << 20, &batch)) return 2;
            i++;
        } else if (!strcmp(a, "--threads") && v) {
            if (!cli_parse_int("saliency", a, v, 0, 1024, &threads)) return 2;
            i++;
        } else if (!strcmp(a, "--max-len") && v) {
            if (!cli_parse_int("saliency", a, v, 2, 1 << 20, &max_len)) return 2;
            i++;
        } else {
            fprintf(stderr, "saliency: unknown or incomplete option '%s' (see adapler saliency --help)\n", a);
            return 2;
        }
    }
    if (!model_dir || !dopt.name) {
        fprintf(stderr, "saliency: --model DIR and --dataset NAME are required\n");
        return 2;
    }
    adp_set_threads((int)threads);
    double t0 = adp_now();
    int rc = 1, have_m = 0, have_ds = 0, have_wp = 0, have_pk = 0;
    bert_model m;
    dataset ds;
    wordpiece wp;
    packed_tokens pk = {0};
    float *scores = NULL;
    int32_t *cls = NULL;
    char path[4096];
    if (bert_model_load(&m, model_dir, 0, NULL) != ADP_OK) goto done;
    have_m = 1;
    if (!m.vocab_path) {
        adp_seterr("%s: no vocab.txt next to the model", model_dir);
        goto done;
    }
    if (max_len > m.cfg.max_pos) max_len = m.cfg.max_pos;
    if (dataset_load(&ds, &dopt, split) != ADP_OK) goto done;
    have_ds = 1;
    if (ds.n_labels != m.cfg.num_labels) {
        adp_seterr("%s has %d labels but the model has %d outputs", ds.name, ds.n_labels, m.cfg.num_labels);
        goto done;
    }
    if (wordpiece_load(&wp, m.vocab_path, 1) != ADP_OK) goto done;
    have_wp = 1;
    if (dataset_pack(&pk, &ds, &wp, (size_t)max_len) != ADP_OK) goto done;
    have_pk = 1;
    cls = mallocCheck(sizeof(int32_t) * (pk.n_seq ? pk.n_seq : 1));
    if (!strcmp(cls_name, "gold")) {
        for (size_t i = 0; i < pk.n_seq; i++)
            if ((cls[i] = pk.labels[i]) < 0) {
                adp_seterr("%s %s: example %zu has no label (use --class pred)", ds.name, split_name(split), i + 1);
                goto done;
            }
    } else {
        bert_ctx ctx;
        bert_ctx_init(&ctx);
        int *off = mallocCheck(sizeof(int) * (size_t)(batch + 1));
        int frc = ADP_OK;
        for (size_t s0 = 0; s0 < pk.n_seq && frc == ADP_OK; s0 += (size_t)batch) {
            int k = (int)ADP_MIN((size_t)batch, pk.n_seq - s0);
            size_t base = pk.seq_off[s0];
            for (int i = 0; i <= k; i++) off[i] = (int)(pk.seq_off[s0 + i] - base);
            bert_batch b = {.n_seq = k, .ids = pk.ids + base, .types = pk.type_ids + base, .off = off};
            const bert_result *r;
            frc = bert_forward(&ctx, &m, &b, NULL, &r);
            for (int i = 0; i < k && frc == ADP_OK; i++) {
                int best = 0;
                for (int c = 1; c < r->n_labels; c++)
                    if (r->logits[i * r->n_labels + c] > r->logits[i * r->n_labels + best]) best = c;
                cls[s0 + i] = best;
            }
        }
        free(off);
        bert_ctx_free(&ctx);
        if (frc) goto done;
    }
    saliency_key key = {.dataset = ds.name, .split = split_name(split), .cls = cls_name, .max_len = max_len};
    if (saliency_key_model(&key, model_dir) != ADP_OK) goto done;
    if (out)
        snprintf(path, sizeof path, "%s", out);
    else
        saliency_cache_path(path, sizeof path, model_dir, ds.name, split_name(split), max_len);
    if (force) remove(path);
    int computed = 0;
    if (saliency_cached(&scores, &computed, path, &key, &m, &pk, cls, (int)batch, 1) != ADP_OK) goto done;
    double mean = 0, mx = 0;
    for (size_t t = 0; t < pk.n_tok; t++) mean += scores[t], mx = scores[t] > mx ? scores[t] : mx;
    printf("{\"cache\": \"%s\", \"status\": \"%s\", \"examples\": %zu, \"tokens\": %zu, \"mean\": %.6g, \"max\": %.6g, "
           "\"seconds\": %.2f}\n",
           path, computed ? "computed" : "cached", pk.n_seq, pk.n_tok, pk.n_tok ? mean / pk.n_tok : 0.0, mx,
           adp_now() - t0);
    rc = 0;
done:
    if (rc) fprintf(stderr, "saliency: %s\n", adp_errmsg());
    free(scores), free(cls);
    if (have_pk) packed_tokens_free(&pk);
    if (have_wp) wordpiece_free(&wp);
    if (have_ds) dataset_free(&ds);
    if (have_m) bert_model_free(&m);
    return rc;
}
