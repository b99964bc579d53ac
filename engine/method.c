/* method.c: the --method table. */
#include "method.h"

#include <string.h>

#include "baselines/baselines.h"
#include "common.h"

const char METHOD_NAMES[] = "none, adapler, schedule, cascade, ltp, power, random, saliency, truncate";

const char METHOD_OPTS_HELP[] =
    "method options:\n"
    "  --method NAME           pruning method: none (default), adapler, schedule, cascade, ltp,\n"
    "                          power, random, saliency, truncate (baselines: README.md)\n"
    "  --eta-scale S           adapler: multiply every learned threshold eta by S (default 1;\n"
    "                          larger drops more tokens, 0 keeps everything)\n"
    "  --schedule l:f,...      schedule: before layer l keep an evenly spaced fraction f of the\n"
    "                          tokens (a content-blind control)\n"
    "  --method-seed N         seed of randomised methods (default 1)\n"
    "  --keep-rate R           cascade: the keep-rate reached at the last layer (SpAtten's schedule\n"
    "                          as in LTP: the first max(3, ceil(0.15 L)) layers keep every token,\n"
    "                          then the rate falls linearly; after layer l's attention keep\n"
    "                          round(rate_l * length) tokens by attention received)\n"
    "                          random: before every layer keep round(R * live tokens) at random\n"
    "                          (rates compound), or R_0,...,R_{L-1}: one rate per layer\n"
    "                          saliency: before every layer keep the round(R * live tokens)\n"
    "                          with the highest saliency (rates compound), or one rate per layer\n"
    "  --final-threshold T     ltp: after layer l's attention drop tokens whose mean attention\n"
    "                          received is below T * l / L (training-free LTP, e.g. 0.01);\n"
    "                          without it, the thresholds learned in the checkpoint (ltp.threshold,\n"
    "                          from `adapler train --method ltp`)\n"
    "  --retention K_0,...     power: tokens kept after each layer's attention, L non-increasing\n"
    "                          counts (64,64,48,...) or fractions of each sequence's length\n"
    "                          (0.9,0.8,...); without it, the checkpoint's power.retention (from\n"
    "                          `adapler train --method power`)\n"
    "  --eta E                 saliency: AdapLeR's rule on gradient x input scores: before every\n"
    "                          layer keep the tokens whose score, normalised over the live\n"
    "                          tokens, is >= E / (live tokens) (E in (0, 1), e.g. 0.5; larger\n"
    "                          drops more; E >= 1 leaves only [CLS] after a few layers).\n"
    "                          The scores come from a forward and backward pass of the unpruned\n"
    "                          model (predicted class), counted in the FLOPs: a quality\n"
    "                          reference, slower than the dense model (quality_reference: true)\n"
    "  --saliency-layer W      saliency: input (default: the embedding output's scores at every\n"
    "                          layer) or each (layer l's input in the unpruned model for layer l)\n"
    "  --keep K                truncate: keep the first K tokens (a count, or a fraction like 0.5)\n"
    "  --match FILE            random, cascade, power, saliency: keep exactly as many tokens per\n"
    "                          layer and example as the run that wrote FILE (`adapler eval\n"
    "                          --examples`); replaces --keep-rate / --retention / --eta\n";

void method_opts_init(method_opts *o) {
    memset(o, 0, sizeof *o);
    o->name = "none";
    o->eta_scale = 1.0;
    o->seed = 1;
    o->final_threshold = -1.0;
    o->eta = -1.0;
}

static int need_value(int argc, char **argv, int i) {
    if (i + 1 >= argc) return adp_seterr("%s needs a value", argv[i]);
    return ADP_OK;
}

int method_opts_parse(method_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (!strcmp(a, "--method")) {
        if (need_value(argc, argv, *i)) return ADP_ERR;
        o->name = argv[++*i];
        return 1;
    }
    if (!strcmp(a, "--eta-scale")) {
        if (need_value(argc, argv, *i)) return ADP_ERR;
        char *end;
        double v = strtod(argv[++*i], &end);
        if (*end || !(v >= 0 && v <= 1e6))
            return adp_seterr("--eta-scale: expected a number in [0, 1e6], got '%s'", argv[*i]);
        o->eta_scale = v;
        return 1;
    }
    if (!strcmp(a, "--schedule")) {
        if (need_value(argc, argv, *i)) return ADP_ERR;
        o->schedule = argv[++*i];
        return 1;
    }
    if (!strcmp(a, "--method-seed")) {
        if (need_value(argc, argv, *i)) return ADP_ERR;
        char *end;
        unsigned long long v = strtoull(argv[++*i], &end, 10);
        if (*end || argv[*i][0] == '-') return adp_seterr("--method-seed: expected a non-negative integer, got '%s'", argv[*i]);
        o->seed = v;
        return 1;
    }
    /* per-layer lists are one value (--keep-rate, --retention): sweep those with ';' */
    const char **str_opt = !strcmp(a, "--keep-rate")   ? &o->keep_rate
                           : !strcmp(a, "--retention") ? &o->retention
                           : !strcmp(a, "--keep")      ? &o->keep
                           : !strcmp(a, "--match")     ? &o->match
                           : !strcmp(a, "--saliency-layer") ? &o->saliency_layer
                                                       : NULL;
    if (str_opt) {
        if (need_value(argc, argv, *i)) return ADP_ERR;
        *str_opt = argv[++*i];
        char *end;
        if (str_opt == &o->keep && (strtod(*str_opt, &end), *end || end == *str_opt))
            return adp_seterr("--keep: expected one number (a count or a fraction), got '%s'", *str_opt);
        return 1;
    }
    if (!strcmp(a, "--eta")) {
        if (need_value(argc, argv, *i)) return ADP_ERR;
        char *end;
        double v = strtod(argv[++*i], &end);
        if (*end || end == argv[*i] || !(v >= 0 && v <= 1e6))
            return adp_seterr("--eta: expected a number in [0, 1e6], got '%s'", argv[*i]);
        o->eta = v;
        return 1;
    }
    if (!strcmp(a, "--final-threshold")) {
        if (need_value(argc, argv, *i)) return ADP_ERR;
        char *end;
        double v = strtod(argv[++*i], &end);
        if (*end || !(v >= 0 && v <= 1))
            return adp_seterr("--final-threshold: expected a number in [0, 1], got '%s'", argv[*i]);
        o->final_threshold = v;
        return 1;
    }
    return 0;
}

/* The baselines' knobs and the methods each applies to: a knob given to any other method
 * is an error rather than silently ignored. */
static int check_knobs(const method_opts *o) {
    const struct {
        const char *opt;
        int given;
        const char *methods;
    } k[] = {
        {"--keep-rate", o->keep_rate != NULL, "cascade random saliency"},
        {"--final-threshold", o->final_threshold >= 0, "ltp"},
        {"--retention", o->retention != NULL, "power"},
        {"--keep", o->keep != NULL, "truncate"},
        {"--match", o->match != NULL, "cascade power random saliency"},
        {"--eta", o->eta >= 0, "saliency"},
        {"--saliency-layer", o->saliency_layer != NULL, "saliency"},
    };
    char name[64], names[sizeof METHOD_NAMES + 2], applies[64];
    snprintf(name, sizeof name, " %s ", o->name);
    snprintf(names, sizeof names, " %s ", METHOD_NAMES);
    for (char *c = names; *c; c++) *c = *c == ',' ? ' ' : *c;
    if (!strstr(names, name)) return ADP_OK; /* an unknown method: method_create says so */
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        snprintf(applies, sizeof applies, " %s ", k[i].methods);
        if (k[i].given && !strstr(applies, name))
            return adp_seterr("%s does not apply to --method %s (only to: %s)", k[i].opt, o->name, k[i].methods);
    }
    return ADP_OK;
}

static int make_schedule(method *me, const method_opts *o, const bert_model *m) {
    if (!o->schedule) return adp_seterr("--method schedule needs --schedule l:f,...");
    int L = m->cfg.layers;
    float *frac = mallocCheck(sizeof(float) * (size_t)L);
    for (int l = 0; l < L; l++) frac[l] = 1.0f;
    char *spec = strdupCheck(o->schedule), *save = NULL;
    int rc = ADP_OK;
    for (char *tok = strtok_r(spec, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        int layer;
        float f;
        char extra;
        if (sscanf(tok, "%d:%f%c", &layer, &f, &extra) != 2 || layer < 0 || layer >= L || !(f >= 0 && f <= 1))
            rc = adp_seterr("--schedule: '%s' is not layer:fraction with layer in [0, %d) and fraction in [0, 1]", tok, L);
        else
            frac[layer] = f;
    }
    if (!rc) rc = prune_schedule_create(&me->strategy, L, frac, PRUNE_AT_INPUT);
    free(spec);
    free(frac);
    if (!rc) me->ps = &me->strategy;
    snprintf(me->label, sizeof me->label, "schedule %s", o->schedule);
    return rc;
}

int method_create(method *me, const method_opts *o, const bert_model *m, const st_file *st) {
    memset(me, 0, sizeof *me);
    if (check_knobs(o) != ADP_OK) return ADP_ERR;
    if (!strcmp(o->name, "none")) {
        snprintf(me->label, sizeof me->label, "none");
        return ADP_OK;
    }
    if (!strcmp(o->name, "adapler")) {
        if (!st) return adp_seterr("adapler: the model's checkpoint is needed for its predictors");
        if (adapler_weights_load(&me->adapler, st, m->cfg.layers, m->cfg.hidden) != ADP_OK) return ADP_ERR;
        me->has_adapler = 1;
        if (adapler_strategy_create(&me->strategy, &me->adapler, o->eta_scale, &me->trace) != ADP_OK) {
            method_free(me);
            return ADP_ERR;
        }
        me->ps = &me->strategy;
        snprintf(me->label, sizeof me->label, "adapler eta_scale=%g", o->eta_scale);
        return ADP_OK;
    }
    if (!strcmp(o->name, "schedule")) return make_schedule(me, o, m);
    if (!strcmp(o->name, "cascade")) return cascade_method_create(me, o, m, st);
    if (!strcmp(o->name, "ltp")) return ltp_method_create(me, o, m, st);
    if (!strcmp(o->name, "power")) return power_method_create(me, o, m, st);
    if (!strcmp(o->name, "random")) return random_method_create(me, o, m, st);
    if (!strcmp(o->name, "saliency")) return saliency_method_create(me, o, m, st);
    if (!strcmp(o->name, "truncate")) return truncate_method_create(me, o, m, st);
    return adp_seterr("unknown method '%s' (expected one of: %s)", o->name, METHOD_NAMES);
}

void method_free(method *me) {
    if (me->ps && me->ps->destroy) me->ps->destroy(me->ps);
    if (me->has_adapler) adapler_weights_free(&me->adapler);
    adapler_trace_free(&me->trace);
    if (me->has_match) match_counts_free(&me->match);
    baseline_trace_free(&me->scores);
    memset(me, 0, sizeof *me);
}

int method_check_examples(const method *me, size_t n, const char *const *ids) {
    return me->has_match ? match_counts_check(&me->match, n, ids) : ADP_OK;
}
