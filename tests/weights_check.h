/* weights_check.h: what test_weights_f16.c, test_weights_bf16.c and test_weights_i8.c all
 * assert of a model whose projections were converted for inference (model.h
 * bert_model_use_f16 / _bf16 / _i8). */
#ifndef ADP_WEIGHTS_CHECK_H
#define ADP_WEIGHTS_CHECK_H

#include "model.h"

/* A random model (vocabulary 300, H 128, 3 layers, 3 labels) converted by convert, the
 * same model with its fp32 weights changed by reference (then repacked), and the model as
 * drawn: forward passes over five sequences of 1-100 tokens, dense and pruned, on 1 and 2
 * threads.  The converted and reference models give the same logits bit for bit; the
 * drawn one differs from them by more than 0 and less than max_diff.  The converted model
 * holds format fmt and, with the packed kernel, panels in fmt for the projections and the
 * pooler (int8: with scales) and fp32 ones for the classifier.  inspect, if not NULL, runs
 * once on the converted model, for the format's own checks.  what names the format in
 * messages. */
void check_converted_model(const char *what, int fmt, int (*convert)(bert_model *), void (*reference)(bert_model *),
                           void (*inspect)(bert_model *), double max_diff);

/* Round in place what the 2-byte conversions round: the four projections of every layer
 * and the pooler (round: gemm_round_f16 or gemm_round_bf16). */
void round_projections(bert_model *m, size_t (*round)(float *, size_t));

/* y = x W^T + b through panels of format fmt (FMT_F16, FMT_BF16, FMT_I8) against fp32
 * panels of the same rounded or quantized weights: equal bits for each (rows, in, out) of
 * shapes, with and without bias and GELU, on one thread and on all; and both are the
 * product (against the naive one).  int8 weights get rows of different scales and one row
 * of zeros.  what names the format in messages. */
void check_packed_linear(const char *what, int fmt, const int (*shapes)[3], size_t n_shapes, unsigned seed);

#endif
