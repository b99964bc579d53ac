/* flops.h: exact FLOP counts of the encoder (formula documented in flops.c). */
#ifndef ADP_FLOPS_H
#define ADP_FLOPS_H

#include "config.h"

/* FLOPs of layer with n tokens entering its attention and m entering its FFN. */
double flops_layer(const bert_config *c, double n, double m);
/* FLOPs of pooler + classifier for one sequence. */
double flops_head(const bert_config *c);
/* FLOPs of one sequence given per-layer counts n[l], m[l] (no strategy overhead). */
double flops_sequence(const bert_config *c, const int *n, const int *m);
/* FLOPs of the unpruned model on a sequence of n tokens. */
double flops_dense(const bert_config *c, int n);

#endif
