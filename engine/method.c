/* method.c: the --method table. */
#include "method.h"

#include <string.h>

#include "common.h"

const char METHOD_NAMES[] = "none, adapler, schedule";

const char METHOD_OPTS_HELP[] =
    "method options:\n"
    "  --method NAME           pruning method: none (default), adapler, schedule\n"
    "  --eta-scale S           adapler: multiply every learned threshold eta by S (default 1;\n"
    "                          larger drops more tokens, 0 keeps everything)\n"
    "  --schedule l:f,...      schedule: before layer l keep an evenly spaced fraction f of the\n"
    "                          tokens (a content-blind control)\n"
    "  --method-seed N         seed of randomised methods (default 1)\n";

void method_opts_init(method_opts *o) {
    memset(o, 0, sizeof *o);
    o->name = "none";
    o->eta_scale = 1.0;
    o->seed = 1;
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
    return 0;
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
    return adp_seterr("unknown method '%s' (expected one of: %s)", o->name, METHOD_NAMES);
}

void method_free(method *me) {
    if (me->ps && me->ps->destroy) me->ps->destroy(me->ps);
    if (me->has_adapler) adapler_weights_free(&me->adapler);
    adapler_trace_free(&me->trace);
    memset(me, 0, sizeof *me);
}
