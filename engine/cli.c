/* cli.c: argument helpers shared by the subcommands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gemm.h"
#include "model.h"

int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "%s: %s: expected an integer in [%ld, %ld], got '%s'\n", cmd, opt, lo, hi,
                s ? s : "");
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out) {
    char *end = NULL;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !(v >= lo && v <= hi)) {
        fprintf(stderr, "%s: %s: expected a number in [%g, %g], got '%s'\n", cmd, opt, lo, hi,
                s ? s : "");
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_weights(const char *cmd, const char *s, int *fmt) {
    const int f = weights_fmt_from_name(s);
    if (f < 0) {
        fprintf(stderr, "%s: --weights: expected " WEIGHTS_FMT_NAMES ", got '%s'\n", cmd, s ? s : "");
        return 0;
    }
    *fmt = f;
    return 1;
}
