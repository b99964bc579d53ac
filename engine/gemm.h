/* gemm.h: the token-wise projections Y = X W^T + b with weights packed once at load.
 *
 * OpenBLAS re-packs the whole weight matrix on every sgemm call.  At the token counts
 * pruning produces (a few to a few dozen rows) that packing costs more than the
 * arithmetic: on BERT-base shapes with 12-24 rows, 40% of the time went to
 * sgemm_incopy.  Weights never change at inference, so we pack each linear layer once into
 * 64-column panels and run an AVX-512 kernel straight from them (gemm.c).  Measured on
 * this machine (2 threads, best of 60): 2-4x OpenBLAS at 12-48 rows, and 1.0-1.1x at 1020
 * rows, so it is used at every size.  On CPUs without AVX-512, or with ADAPLER_GEMM=blas
 * in the environment, every projection goes to cblas_sgemm instead. */
#ifndef ADP_GEMM_H
#define ADP_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "barrier.h"

#define GEMM_PANEL 64 /* output columns per packed panel */

/* How the projections' weights are held for inference (`--weights`). */
enum { FMT_F32 = 0, FMT_F16 = 1, FMT_I8 = 2, FMT_BF16 = 3 };

/* A linear layer: weight (out, in) in Hugging Face layout, optional bias (out), and its
 * packed panels (NULL until packed). */
typedef struct {
    const float *w;       /* (out, in) */
    const float *b;       /* (out) or NULL */
    const void *panels;   /* (ceil(out / 64), in, 64) elements, zero-padded, in format fmt; not owned */
    int fmt;              /* FMT_F32: floats (gemm_pack); FMT_F16: IEEE halves (gemm_pack16);
                             FMT_BF16: bfloat16 column pairs (gemm_pack_bf16); FMT_I8: int8
                             (gemm_pack8) with scale8 */
    const float *scale8;  /* FMT_I8: one scale per output column (ceil(out / 64) * 64); not owned */
    int in, out;
    int k_split; /* 0, or 0 < k_split < in: the packed kernel sums k < k_split (from the
                    bias) and k >= k_split (from zero) apart and adds the two, so that two
                    threads can each form one part (linear_forward_part) with the same
                    result.  The attention output and second FFN projections have it at
                    in / 2 (bert_model_alloc; engine/bert.c layer_pair) */
} linear_w;

/* 1 if the packed kernel runs on this CPU and is not disabled by ADAPLER_GEMM=blas. */
int gemm_packed_enabled(void);
/* Floats needed for the packed panels of an (out, in) weight. */
size_t gemm_packed_size(int out, int in);
/* Pack w (out, in) into dst (gemm_packed_size floats). */
void gemm_pack(float *dst, const float *w, int out, int in);

/* Half-precision weights ("--weights f16").  A layer with few rows streams its weights
 * once and does little arithmetic on them, so its time is the bytes it reads: on this
 * machine a layer of the small shape on one token took 25 us from fp32 panels and 13 from
 * half ones, BERT-base's 637 and 241 us (two tokens; its 340 MB do not fit any cache).
 * The kernel converts each panel row to fp32 as it loads it (vcvtph2ps) and accumulates in
 * fp32 exactly as from fp32 panels, so a product with half panels equals, bit for bit, the
 * product with fp32 panels of the weights rounded to half (gemm_round_f16).  Blocks of
 * more than 6 rows run 32 columns at a time (gemm.c gemm_tile_wide), each converting the
 * panel rows it reads.  Needs AVX-512 (gemm_packed_enabled). */
/* w[0..n) = w rounded to the nearest IEEE half (ties to even), kept as float.  Values
 * beyond the half range (65504) become infinite.  Returns the count of those. */
size_t gemm_round_f16(float *w, size_t n);
/* Pack w (out, in) into dst (gemm_packed_size halves) as half precision; w should hold
 * half values already (gemm_round_f16) so that both layouts hold the same numbers. */
void gemm_pack16(uint16_t *dst, const float *w, int out, int in);

/* Bfloat16 weights ("--weights bf16"): the same bytes as half ones, with fp32's exponent
 * and 8 significant bits (half: 11).  Each 32-column group of a panel row holds columns i
 * and 16 + i in one 32-bit word, so the kernel makes fp32 vectors of them with one shift
 * and one AND a 64-byte line, where half weights take a conversion per 16 (at AdapLeR's
 * kept points, batch 1, no faster than f16 beyond this host's noise: README).  As with
 * half weights, a product with bf16 panels equals, bit for bit,
 * the product with fp32 panels of the weights rounded to bfloat16 (gemm_round_bf16). */
/* w[0..n) = w rounded to the nearest bfloat16 (ties to even), kept as float.  Finite
 * values that round beyond the largest bfloat16 become infinite.  Returns the count of
 * those. */
size_t gemm_round_bf16(float *w, size_t n);
/* Pack w (out, in), already rounded (gemm_round_bf16), into dst (gemm_packed_size
 * uint16_t) as bfloat16 column pairs. */
void gemm_pack_bf16(uint16_t *dst, const float *w, int out, int in);

/* Int8 weights ("--weights i8"): a quarter of fp32's bytes.  Each output row o of W gets
 * a scale s_o = max_k |W[o][k]| / 127 and W[o][k] = q * s_o with q = round(W[o][k] / s_o)
 * in [-127, 127] (symmetric, per output channel; a row of zeros keeps s_o = 0).  The kernel
 * converts each int8 vector to fp32 and multiplies it by its columns' scales as it loads
 * it, so it sees exactly the floats q * s_o and accumulates them in fp32 as from fp32
 * panels: a product with int8 panels equals, bit for bit, the product with fp32 panels of
 * the quantized weights (gemm_quant_i8).  Activations stay fp32.  Needs AVX-512. */
/* Quantize w (out, in) in place to q * s per row as above, writing the scales to
 * scale[0..out).  Returns the count of non-finite weights, left as they are (and packed as
 * 0: callers reject such weights first, as bert_model_use_i8 does). */
size_t gemm_quant_i8(float *scale, float *w, int out, int in);
/* Pack quantized w (out, in) and its row scales into dst (gemm_packed_size bytes) and
 * dst_scale (ceil(out / 64) * 64 floats, zero past out). */
void gemm_pack8(int8_t *dst, float *dst_scale, const float *w, const float *scale, int out, int in);

typedef enum { ACT_NONE = 0, ACT_GELU = 1 } linear_act;

/* out (n, lw->out) = act(inp (n, lw->in) @ w^T + b).  Uses the packed panels (any format)
 * when present and enabled (the activation is applied to each block while it is in L1),
 * else cblas_sgemm on the fp32 weights plus one pass for bias and activation.
 * Multithreaded over panels (OpenMP) or by OpenBLAS; call outside parallel regions. */
void linear_forward(float *out, const float *inp, const linear_w *lw, int n, linear_act act);

/* Serial variant, for one thread's share of the rows inside a parallel region (a pruning
 * strategy's scoring, prune.h score_rows): runs on the calling thread only.  The same
 * result as linear_forward's, bit for bit. */
void linear_forward_serial(float *out, const float *inp, const linear_w *lw, int n, linear_act act);

/* Team variant, for a sequence of ops inside one parallel region (bert_forward runs a layer
 * that way: one fork/join instead of one per op): every thread of the region calls it with
 * the same arguments; it splits the work and returns after a barrier (bar, see barrier.h, or
 * OpenMP's when NULL).  Only for packed
 * layers (linear_team_ok); the result is the same as linear_forward's, bit for bit. */
int linear_team_ok(const linear_w *lw);
void linear_forward_team(float *out, const float *inp, const linear_w *lw, int n, linear_act act, adp_barrier *bar);

/* Part of a product on the calling thread, for packed layers only (linear_team_ok): output
 * panels [p0, p1) (columns [64 p0, 64 p1)) of all n rows, over the k of `part`:
 * GEMM_K_ALL every k, as linear_forward; GEMM_K_LOW k < lw->k_split, bias included;
 * GEMM_K_HIGH k >= lw->k_split, no bias (both need lw->k_split > 0, and act ACT_NONE).
 * Each output element of GEMM_K_ALL equals, bit for bit, its GEMM_K_LOW value plus its
 * GEMM_K_HIGH value (one float addition, in that order). */
enum { GEMM_K_ALL = 0, GEMM_K_LOW = 1, GEMM_K_HIGH = 2 };
void linear_forward_part(float *out, const float *inp, const linear_w *lw, int n, int p0, int p1, linear_act act,
                         int part);

#endif
