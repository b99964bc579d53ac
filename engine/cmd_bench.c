/* cmd_bench.c: `adapler bench`: time the forward pass of a random model of a given shape
 * (dense, or with a fixed pruning schedule) and print tokens/s and GFLOP/s. */
#include <getopt.h>
#include <string.h>

#include "bert.h"
#include "cli.h"
#include "common.h"
#include "flops.h"
#include "rng.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: adapler bench [--layers L] [--hidden H] [--heads A] [--inter I] [--batch B] [--seq N]\n"
            "                     [--threads T] [--min-time S] [--schedule l:f,...] [--point input|attention]\n"
            "                     [--weights f32|f16|bf16|i8] [--json]\n\n"
            "Time the forward pass of a random BERT of the given shape on B sequences of N tokens\n"
            "(random ids, packed, no padding).  Defaults: BERT-base (L12 H768 A12 I3072), B=8, N=128.\n"
            "Prints the median over repeats of at least --min-time seconds (default 2).\n\n"
            "  --schedule l:f,...  prune with the fixed 'schedule' control: before layer l keep a\n"
            "                      fraction f of the remaining tokens (e.g. 4:0.5,8:0.5); also\n"
            "                      times the dense model in the same run and reports the wall-clock\n"
            "                      and FLOPs speedups\n"
            "  --point             where the schedule prunes: at the layer input (default) or\n"
            "                      after the attention block\n"
            "  --keep-all          also time a strategy that acts at both points of every layer,\n"
            "                      asks for the attention probabilities and keeps every token:\n"
            "                      what the pruning interface itself costs (keep_all_overhead)\n"
            "  --lengths FILE      instead of B x N, run every sequence whose length is listed in\n"
            "                      FILE (whitespace-separated), in order, in packed batches of B\n"
            "                      (a real length distribution: no padding is ever computed)\n"
            "  --weights W         f32 (default), f16, bf16 or i8: the projections and pooler in\n"
            "                      IEEE half, bfloat16 or int8 (model.h bert_model_use_weights)\n"
            "  --json              one JSON object: tokens_per_s, gflops_per_s, ms_median, ...\n");
}

/* One pass over all batches; adds the FLOPs of the pass to *flops when not NULL. */
static int run_batches(bert_ctx *ctx, const bert_model *m, const bert_batch *b, int n_batches, const bert_run_opts *o,
                       double *flops) {
    for (int k = 0; k < n_batches; k++) {
        const bert_result *r;
        if (bert_forward(ctx, m, &b[k], o, &r) != ADP_OK) return ADP_ERR;
        for (int s = 0; flops && s < b[k].n_seq; s++) *flops += r->flops[s];
    }
    return ADP_OK;
}

/* Median seconds per pass over the batches, over repeats filling min_time. */
static int time_forward(bert_ctx *ctx, const bert_model *m, const bert_batch *b, int n_batches,
                        const bert_run_opts *o, double min_time, double *median, double *flops_total) {
    *flops_total = 0;
    if (run_batches(ctx, m, b, n_batches, o, flops_total) != ADP_OK) return ADP_ERR;
    if (run_batches(ctx, m, b, n_batches, o, NULL) != ADP_OK) return ADP_ERR;
    double times[4096];
    int n = 0;
    double t_start = adp_now();
    while (n < 4096 && (n < 5 || adp_now() - t_start < min_time)) {
        double t0 = adp_now();
        if (run_batches(ctx, m, b, n_batches, o, NULL) != ADP_OK) return ADP_ERR;
        times[n++] = adp_now() - t0;
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) {
            double t = times[j];
            times[j] = times[j - 1], times[j - 1] = t;
        }
    *median = times[n / 2];
    return ADP_OK;
}

/* Read whitespace-separated lengths. */
static int read_lengths(const char *path, int **out, int *n, long max_len) {
    char *text = NULL;
    if (adp_read_file(path, &text, NULL) != ADP_OK) return ADP_ERR;
    int cap = 1024, k = 0;
    int *v = mallocCheck(sizeof(int) * (size_t)cap);
    char *p = text, *end;
    for (;;) {
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
        if (!*p) break;
        long x = strtol(p, &end, 10);
        if (end == p || x < 1 || x > max_len) {
            free(v), free(text);
            return adp_seterr("%s: entry %d is not a length in [1, %ld]", path, k + 1, max_len);
        }
        if (k == cap) v = reallocCheck(v, sizeof(int) * (size_t)(cap *= 2));
        v[k++] = (int)x;
        p = end;
    }
    free(text);
    if (!k) {
        free(v);
        return adp_seterr("%s: no lengths", path);
    }
    *out = v, *n = k;
    return ADP_OK;
}

int cmd_bench(int argc, char **argv) {
    long L = 12, H = 768, A = 12, I = 3072, B = 8, N = 128, threads = 0;
    double min_time = 2.0;
    int json = 0, point = PRUNE_AT_INPUT, keep_all = 0, wfmt = FMT_F32;
    const char *schedule = NULL, *lengths_path = NULL;
    static const struct option opts[] = {
        {"lengths", 1, 0, 'l'}, {"keep-all", 0, 0, 'k'}, {"weights", 1, 0, 'w'},
        {"layers", 1, 0, 'L'}, {"hidden", 1, 0, 'H'}, {"heads", 1, 0, 'A'}, {"inter", 1, 0, 'I'},
        {"batch", 1, 0, 'B'},  {"seq", 1, 0, 'N'},    {"threads", 1, 0, 't'}, {"min-time", 1, 0, 'm'},
        {"schedule", 1, 0, 's'}, {"point", 1, 0, 'p'}, {"json", 0, 0, 'j'},  {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char *c = "bench";
        switch (ch) {
        case 'L': if (!cli_parse_int(c, "--layers", optarg, 1, 127, &L)) return 2; break;
        case 'H': if (!cli_parse_int(c, "--hidden", optarg, 1, 16384, &H)) return 2; break;
        case 'A': if (!cli_parse_int(c, "--heads", optarg, 1, 1024, &A)) return 2; break;
        case 'I': if (!cli_parse_int(c, "--inter", optarg, 1, 65536, &I)) return 2; break;
        case 'B': if (!cli_parse_int(c, "--batch", optarg, 1, 100000, &B)) return 2; break;
        case 'N': if (!cli_parse_int(c, "--seq", optarg, 1, 8192, &N)) return 2; break;
        case 't': if (!cli_parse_int(c, "--threads", optarg, 0, 1024, &threads)) return 2; break;
        case 'm': if (!cli_parse_double(c, "--min-time", optarg, 0, 3600, &min_time)) return 2; break;
        case 's': schedule = optarg; break;
        case 'l': lengths_path = optarg; break;
        case 'k': keep_all = 1; break;
        case 'w': if (!cli_parse_weights(c, optarg, &wfmt)) return 2; break;
        case 'p':
            if (!strcmp(optarg, "input")) point = PRUNE_AT_INPUT;
            else if (!strcmp(optarg, "attention")) point = PRUNE_AFTER_ATTENTION;
            else {
                fprintf(stderr, "bench: --point: expected 'input' or 'attention', got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bench: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (H % A) {
        fprintf(stderr, "bench: --hidden %ld is not a multiple of --heads %ld\n", H, A);
        return 2;
    }
    int nthreads = adp_set_threads((int)threads);

    float *frac = mallocCheck(sizeof(float) * (size_t)L);
    for (int l = 0; l < L; l++) frac[l] = 1.0f;
    if (schedule) {
        char *spec = strdupCheck(schedule), *save = NULL;
        for (char *tok = strtok_r(spec, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            int layer;
            float f;
            char extra;
            if (sscanf(tok, "%d:%f%c", &layer, &f, &extra) != 2 || layer < 0 || layer >= L || !(f >= 0 && f <= 1)) {
                fprintf(stderr, "bench: --schedule: '%s' is not layer:fraction with layer in [0, %ld) and fraction in [0, 1]\n",
                        tok, L);
                free(spec);
                free(frac);
                return 2;
            }
            frac[layer] = f;
        }
        free(spec);
    }

    /* the sequences: B x N, or the listed lengths in batches of B */
    int *lens = NULL, n_seqs = 0;
    if (lengths_path) {
        if (read_lengths(lengths_path, &lens, &n_seqs, 512) != ADP_OK) {
            fprintf(stderr, "bench: %s\n", adp_errmsg());
            free(frac);
            return 1;
        }
    } else {
        n_seqs = (int)B;
        lens = mallocCheck(sizeof(int) * (size_t)n_seqs);
        for (int s = 0; s < n_seqs; s++) lens[s] = (int)N;
    }
    long T = 0;
    for (int s = 0; s < n_seqs; s++) T += lens[s];
    int n_batches = (int)((n_seqs + B - 1) / B);
    int32_t *ids = mallocCheck(sizeof(int32_t) * (size_t)T);
    int *off = mallocCheck(sizeof(int) * (size_t)(n_seqs + n_batches));
    bert_batch *batches = mallocCheck(sizeof(bert_batch) * (size_t)n_batches);
    adp_rng rng;
    rng_seed(&rng, 99);
    long at = 0;
    for (int k = 0, s = 0; k < n_batches; k++) {
        int first = s, *o = off + first + k;
        o[0] = 0;
        for (int i = 0; i < B && s < n_seqs; i++, s++) {
            o[i + 1] = o[i] + lens[s];
            for (int t = 0; t < lens[s]; t++) ids[at + o[i] + t] = t == 0 ? 2 : (int32_t)(5 + rng_below(&rng, 995));
        }
        batches[k] = (bert_batch){.n_seq = s - first, .ids = ids + at, .types = NULL, .off = o};
        at += o[s - first];
    }
    bert_config cfg;
    bert_config_init(&cfg, 1000, (int)H, (int)L, (int)A, (int)I, ADP_MAX(512, (int)N), 2);
    bert_model m;
    bert_model_alloc(&m, &cfg);
    bert_model_init_random(&m, 1234);
    bert_ctx ctx;
    bert_ctx_init(&ctx);
    int rc = bert_model_use_weights(&m, wfmt) != ADP_OK;
    double dense_t = 0, dense_f = 0, pr_t = 0, pr_f = 0;
    if (!rc && time_forward(&ctx, &m, batches, n_batches, NULL, min_time, &dense_t, &dense_f) != ADP_OK) rc = 1;
    prune_strategy ps;
    int have_ps = 0;
    if (!rc && schedule) {
        if (prune_schedule_create(&ps, (int)L, frac, (prune_point)point) != ADP_OK) rc = 1;
        else have_ps = 1;
        bert_run_opts o = {.prune = &ps};
        if (!rc && time_forward(&ctx, &m, batches, n_batches, &o, min_time, &pr_t, &pr_f) != ADP_OK) rc = 1;
    }
    double ka_t = 0, ka_f = 0;
    if (!rc && keep_all) {
        prune_strategy ka;
        prune_keepall_create(&ka, 1);
        bert_run_opts o = {.prune = &ka};
        if (time_forward(&ctx, &m, batches, n_batches, &o, min_time, &ka_t, &ka_f) != ADP_OK) rc = 1;
        /* re-time dense right after, so both see the same machine state */
        double d2, f2;
        if (!rc && time_forward(&ctx, &m, batches, n_batches, NULL, min_time, &d2, &f2) != ADP_OK) rc = 1;
        if (!rc && d2 < dense_t) dense_t = d2;
        ka.destroy(&ka);
    }
    if (rc) {
        fprintf(stderr, "bench: %s\n", adp_errmsg());
    } else if (json) {
        printf("{\"layers\": %ld, \"hidden\": %ld, \"heads\": %ld, \"inter\": %ld, \"batch\": %ld, \"seq\": %ld, "
               "\"threads\": %d, \"weights\": \"%s\", \"sequences\": %d, \"tokens\": %ld, \"ms_median\": %.4f, "
               "\"tokens_per_s\": %.1f, \"gflops_per_s\": %.2f, \"gflop\": %.4f",
               L, H, A, I, B, lengths_path ? 0L : N, nthreads, weights_fmt_name(wfmt), n_seqs, T, 1e3 * dense_t, T / dense_t,
               dense_f / dense_t * 1e-9, dense_f * 1e-9);
        if (schedule)
            printf(", \"pruned_ms_median\": %.4f, \"pruned_gflop\": %.4f, \"wall_speedup\": %.4f, \"flops_speedup\": %.4f",
                   1e3 * pr_t, pr_f * 1e-9, dense_t / pr_t, dense_f / pr_f);
        if (keep_all) printf(", \"keep_all_ms_median\": %.4f, \"keep_all_overhead\": %.4f", 1e3 * ka_t, ka_t / dense_t - 1);
        printf(", \"blas\": \"%s\"}\n", adp_blas_info());
    } else {
        printf("shape L%ld H%ld A%ld I%ld, %d sequences (%ld tokens) in batches of %ld, %d threads, %s weights (%s)\n",
               L, H, A, I, n_seqs, T, B, nthreads, weights_fmt_name(wfmt), adp_blas_info());
        printf("dense:  %.3f ms/pass  %.0f tokens/s  %.1f GFLOP/s\n", 1e3 * dense_t, T / dense_t,
               dense_f / dense_t * 1e-9);
        if (keep_all)
            printf("keep-all strategy: %.3f ms/pass, overhead %+.2f%%\n", 1e3 * ka_t, 100 * (ka_t / dense_t - 1));
        if (schedule)
            printf("pruned: %.3f ms/pass  wall speedup %.3fx  FLOPs speedup %.3fx  ratio %.3f\n", 1e3 * pr_t,
                   dense_t / pr_t, dense_f / pr_f, (dense_t / pr_t) / (dense_f / pr_f));
    }
    if (have_ps) ps.destroy(&ps);
    bert_ctx_free(&ctx);
    bert_model_free(&m);
    bert_config_free(&cfg);
    free(ids), free(off), free(frac), free(lens), free(batches);
    return rc;
}
