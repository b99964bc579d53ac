/* test_eraser_metrics.c: every ERASER metric on fixtures small enough to compute by hand
 * (the arithmetic is in the comments), plus the edge cases metrics.py leaves undefined. */
#include <math.h>
#include <stdlib.h>

#include "common.h"
#include "eraser/metrics.h"
#include "test.h"

#define EPS 1e-12

/* Fixture A, three keys:
 *   k1 (10 words): gold [0,3) [5,7)   pred [1,4) [5,7)   gold words {0,1,2,5,6}, pred {1,2,3,5,6}
 *   k2 ( 8 words): gold [2,4)         pred none
 *   k3 ( 6 words): gold none          pred [0,2)
 * token:  k1 p = r = 4/5, k2 p = r = 0, k3 p = r = 0
 *         micro: 4 shared / 7 predicted / 7 gold -> p = r = f1 = 4/7
 *         macro: p = r = f1 = (0.8 + 0 + 0) / 3
 * span:   k1 shares [5,7): p = r = f1 = 1/2; micro 1/3 each; macro (1/2)/3 = 1/6
 * IOU:    [1,4) vs [0,3) = 2/4 = 0.5, [5,7) exact = 1, [0,2) has no gold = 0
 *   at 0.5: TP k1 = 2, k3 = 0; micro r = 2/3 (3 gold spans), p = 2/3 (3 pred spans)
 *           macro r = mean(2/2, 0/1) = 0.5, p = mean(2/2, 0/1) = 0.5, f1 = 0.5
 *   at 0.6: TP k1 = 1; micro 1/3; macro r = mean(1/2, 0) = 0.25, p = 0.25 */
static const eraser_span A1_GOLD[] = {{0, 3}, {5, 7}}, A1_PRED[] = {{1, 4}, {5, 7}, {5, 7}}; /* a repeat: sets */
static const eraser_span A2_GOLD[] = {{2, 4}}, A3_PRED[] = {{0, 2}};
static const eraser_hard_key FIX_A[] = {
    {10, A1_GOLD, 2, A1_PRED, 3},
    {8, A2_GOLD, 1, NULL, 0},
    {6, NULL, 0, A3_PRED, 1},
};

static void check_prf(const eraser_prf *got, double p, double r, double f1) {
    CHECK_NEAR(got->p, p, EPS);
    CHECK_NEAR(got->r, r, EPS);
    CHECK_NEAR(got->f1, f1, EPS);
}

TEST(eraser_token_prf_by_hand) {
    eraser_prf mi, ma;
    eraser_token_prf(&mi, &ma, FIX_A, 3);
    check_prf(&mi, 4.0 / 7, 4.0 / 7, 4.0 / 7);
    check_prf(&ma, 0.8 / 3, 0.8 / 3, 0.8 / 3);
}

TEST(eraser_span_prf_by_hand) {
    eraser_prf mi, ma;
    eraser_span_prf(&mi, &ma, FIX_A, 3);
    check_prf(&mi, 1.0 / 3, 1.0 / 3, 1.0 / 3);
    check_prf(&ma, 1.0 / 6, 1.0 / 6, 1.0 / 6);
}

TEST(eraser_iou_by_hand) {
    CHECK_NEAR(eraser_span_iou((eraser_span){1, 4}, (eraser_span){0, 3}), 0.5, EPS);
    CHECK_NEAR(eraser_span_iou((eraser_span){5, 7}, (eraser_span){5, 7}), 1.0, EPS);
    CHECK_NEAR(eraser_span_iou((eraser_span){0, 2}, (eraser_span){4, 9}), 0.0, EPS);
    CHECK_NEAR(eraser_span_iou((eraser_span){3, 3}, (eraser_span){3, 3}), 0.0, EPS); /* empty: denom 0 */
    CHECK_NEAR(eraser_span_iou((eraser_span){3, 3}, (eraser_span){0, 9}), 0.0, EPS);
    eraser_prf mi, ma;
    eraser_iou_prf(&mi, &ma, FIX_A, 3, 0.5);
    check_prf(&mi, 2.0 / 3, 2.0 / 3, 2.0 / 3);
    check_prf(&ma, 0.5, 0.5, 0.5);
    eraser_iou_prf(&mi, &ma, FIX_A, 3, 0.6);
    check_prf(&mi, 1.0 / 3, 1.0 / 3, 1.0 / 3);
    check_prf(&ma, 0.25, 0.25, 0.25);
    /* threshold 0: every predicted span is a hit, even without gold (best IOU 0 >= 0) */
    eraser_iou_prf(&mi, &ma, FIX_A, 3, 0.0);
    check_prf(&mi, 1.0, 1.0, 1.0);
    /* macro F1 is the F1 of the averages: r = mean(1, 0) = 0.5, p = mean(1, 1) = 1 -> 2/3 */
    eraser_iou_prf(&mi, &ma, FIX_A, 3, 0.0);
    CHECK_NEAR(ma.r, 0.5, EPS);
    CHECK_NEAR(ma.p, 1.0, EPS);
    CHECK_NEAR(ma.f1, 2.0 / 3, EPS);
}

/* Overlapping gold groups are unioned for tokens, kept apart as spans:
 * gold [0,3) [2,5) -> words {0..4}; pred [3,6) -> {3,4,5}: p = 2/3, r = 2/5, f1 = 1/2.
 * Spans: no exact match.  IOU of [3,6) with [2,5) = |{3,4}| / |{2,3,4,5}| = 0.5. */
TEST(eraser_overlapping_gold_groups) {
    static const eraser_span g[] = {{0, 3}, {2, 5}}, p[] = {{3, 6}};
    eraser_hard_key k = {10, g, 2, p, 1};
    eraser_prf mi, ma;
    eraser_token_prf(&mi, &ma, &k, 1);
    check_prf(&mi, 2.0 / 3, 0.4, 0.5);
    check_prf(&ma, 2.0 / 3, 0.4, 0.5);
    eraser_span_prf(&mi, &ma, &k, 1);
    check_prf(&mi, 0, 0, 0);
    eraser_iou_prf(&mi, &ma, &k, 1, 0.5);
    check_prf(&mi, 1.0, 0.5, 2.0 / 3); /* 1 hit of 1 predicted, of 2 gold spans */
}

/* Empty prediction / empty gold / no keys: metrics.py divides by zero; we give 0. */
TEST(eraser_hard_edge_cases) {
    static const eraser_span g[] = {{1, 3}}, p[] = {{0, 1}};
    eraser_hard_key only_gold = {5, g, 1, NULL, 0}, only_pred = {5, NULL, 0, p, 1}, nothing = {5, NULL, 0, NULL, 0};
    eraser_prf mi, ma;
    eraser_token_prf(&mi, &ma, &only_gold, 1);
    check_prf(&mi, 0, 0, 0);
    check_prf(&ma, 0, 0, 0);
    eraser_token_prf(&mi, &ma, &only_pred, 1);
    check_prf(&mi, 0, 0, 0);
    eraser_iou_prf(&mi, &ma, &only_pred, 1, 0.5);
    check_prf(&mi, 0, 0, 0);
    check_prf(&ma, 0, 0, 0);
    eraser_token_prf(&mi, &ma, NULL, 0);
    check_prf(&ma, 0, 0, 0);
    /* a key with neither gold nor prediction is not a key: it does not dilute the macro mean */
    eraser_hard_key two[] = {{10, A1_GOLD, 2, A1_PRED, 3}, nothing};
    eraser_token_prf(&mi, &ma, two, 2);
    check_prf(&ma, 0.8, 0.8, 0.8);
    /* an empty predicted span is a span (rationale_prf, IOU) but has no tokens */
    static const eraser_span empty[] = {{2, 2}};
    eraser_hard_key k = {5, g, 1, empty, 1};
    eraser_span_prf(&mi, &ma, &k, 1);
    check_prf(&mi, 0, 0, 0);
    eraser_token_prf(&mi, &ma, &k, 1);
    CHECK_NEAR(mi.r, 0, EPS);
    CHECK_NEAR(ma.p, 0, EPS);
    CHECK_NEAR(eraser_f1(0.5, 0), 0, EPS);
    CHECK_NEAR(eraser_f1(0.5, 1.0), 2.0 / 3, EPS);
}

/* Curves.  truth [1,0,1,0], scores [.9,.8,.7,.1]:
 *   tps = [1,1,2,2], fps = [0,1,1,2]; precision [1,1/2,2/3,1/2], recall [1/2,1/2,1,1]
 *   sklearn order + (P=1, R=0): P = [1/2,2/3,1/2,1,1], R = [1,1,1/2,1/2,0]
 *   AUPRC = 0.5*(2/3+1/2)/2 + 0.5*(1+1)/2 = 7/24 + 1/2 = 19/24
 *   AP = 0.5*(2/3) + 0.5*1 = 5/6;  ROC AUC = 3 of 4 (pos, neg) pairs ordered = 3/4
 * Ties, truth [1,0,1,0], scores [.5,.5,.5,.2]: one threshold for the three .5s
 *   tps = [2,2], fps = [1,2]; P = [1/2,2/3,1], R = [1,1,0]
 *   AUPRC = (2/3+1)/2 = 5/6, AP = 2/3, ROC AUC = (tie counts 1/2) 3/4
 * All-one scores, truth [1,0,0]: P = [1/3,1], R = [1,0]: AUPRC 2/3, AP 1/3, ROC 1/2.
 * No positives, truth [0,0,0]: recall is 1 everywhere (sklearn >= 1.1): P = [0,0,0,1],
 *   R = [1,1,1,0] -> AUPRC 1/2; AP/ROC skipped.  All positives [1,1]: AUPRC 1. */
TEST(eraser_curves_by_hand) {
    static const uint8_t t1[] = {1, 0, 1, 0}, t3[] = {1, 0, 0}, t4[] = {0, 0, 0}, t5[] = {1, 1};
    static const double s1[] = {.9, .8, .7, .1}, s2[] = {.5, .5, .5, .2}, s3[] = {1, 1, 1}, s4[] = {.3, .2, .1},
                        s5[] = {.2, .4};
    CHECK_NEAR(eraser_auprc(t1, s1, 4), 19.0 / 24, EPS);
    CHECK_NEAR(eraser_average_precision(t1, s1, 4), 5.0 / 6, EPS);
    CHECK_NEAR(eraser_roc_auc(t1, s1, 4), 0.75, EPS);
    CHECK_NEAR(eraser_auprc(t1, s2, 4), 5.0 / 6, EPS);
    CHECK_NEAR(eraser_average_precision(t1, s2, 4), 2.0 / 3, EPS);
    CHECK_NEAR(eraser_roc_auc(t1, s2, 4), 0.75, EPS);
    CHECK_NEAR(eraser_auprc(t3, s3, 3), 2.0 / 3, EPS);
    CHECK_NEAR(eraser_average_precision(t3, s3, 3), 1.0 / 3, EPS);
    CHECK_NEAR(eraser_roc_auc(t3, s3, 3), 0.5, EPS);
    CHECK_NEAR(eraser_auprc(t4, s4, 3), 0.5, EPS);
    CHECK(isnan(eraser_roc_auc(t4, s4, 3)));
    CHECK_NEAR(eraser_auprc(t5, s5, 2), 1.0, EPS);
    /* -0.0 and 0.0 are one threshold, as np.diff sees them */
    static const uint8_t t6[] = {1, 0};
    static const double s6[] = {0.0, -0.0};
    CHECK_NEAR(eraser_auprc(t6, s6, 2), 0.75, EPS); /* P = [1/2, 1], R = [1, 0] */

    /* the mean over keys: AUPRC over all keys, AP and ROC only over two-class keys */
    eraser_soft_key keys[] = {{4, t1, s1}, {3, t4, s4}};
    eraser_soft_scores s;
    eraser_soft_metrics(&s, keys, 2);
    CHECK_NEAR(s.auprc, (19.0 / 24 + 0.5) / 2, EPS);
    CHECK_NEAR(s.average_precision, 5.0 / 6, EPS);
    CHECK_NEAR(s.roc_auc, 0.75, EPS);
    CHECK_INT(s.n_two_class, 1);
    eraser_soft_metrics(&s, keys + 1, 1); /* only single-class keys: np.average([]) = NaN */
    CHECK(isnan(s.average_precision) && isnan(s.roc_auc));
    CHECK_NEAR(s.auprc, 0.5, EPS);
    eraser_soft_metrics(&s, NULL, 0); /* no soft predictions at all: 0.0 as upstream */
    CHECK_NEAR(s.auprc, 0, EPS);
    CHECK_NEAR(s.average_precision, 0, EPS);
}

/* ROC drop_intermediate removes collinear points only; the area is unchanged:
 * truth [1,1,0,0,1,0], scores 6..1 -> pairs ordered: pos at ranks 1,2,5 vs neg 3,4,6:
 * 3 + 3 + 1 = 7 of 9. */
TEST(eraser_roc_collinear) {
    static const uint8_t t[] = {1, 1, 0, 0, 1, 0};
    static const double s[] = {6, 5, 4, 3, 2, 1};
    CHECK_NEAR(eraser_roc_auc(t, s, 6), 7.0 / 9, EPS);
}

TEST(eraser_entropy_and_kl) {
    static const double p[] = {0.25, 0.75}, p3[] = {1, 3}, one[] = {1, 0}, u[] = {0.5, 0.5};
    double h = -(0.25 * log(0.25) + 0.75 * log(0.75));
    CHECK_NEAR(eraser_entropy(p, 2), h, EPS);
    CHECK_NEAR(eraser_entropy(p3, 2), h, EPS); /* normalised first */
    CHECK_NEAR(eraser_entropy(one, 2), 0, EPS);
    CHECK_NEAR(eraser_kl(u, p, 2), 0.5 * log(4.0 / 3), EPS);
    CHECK_NEAR(eraser_kl(one, u, 2), log(2.0), EPS); /* 0 log 0 = 0 */
    CHECK(isinf(eraser_kl(u, one, 2)));             /* q = 0 < p */
}

/* Two instances, labels (A, B):
 *   i1 full (.8,.2) pred A, comp (.3,.7), suff (.6,.4), bins comp (.7,.3) (.5,.5), suff (.9,.1) (.8,.2)
 *   i2 full (.4,.6) pred B, comp (.5,.5), suff (.2,.8), bins comp (.3,.7) (.6,.4), suff (.5,.5) (.1,.9)
 * comprehensiveness = mean(.8-.3, .6-.5) = .3; sufficiency = mean(.8-.6, .6-.8) = 0
 * comp AOPC deltas: i1 .1 .3, i2 -.1 .2 -> .125, points (0, .25)
 * suff AOPC deltas: i1 -.1 0, i2 .1 -.3 -> -.075, points (0, -.15) */
TEST(eraser_faithfulness_by_hand) {
    static const double f1[] = {.8, .2}, c1[] = {.3, .7}, s1[] = {.6, .4}, tc1[] = {.7, .3, .5, .5}, ts1[] = {.9, .1, .8, .2};
    static const double f2[] = {.4, .6}, c2[] = {.5, .5}, s2[] = {.2, .8}, tc2[] = {.3, .7, .6, .4}, ts2[] = {.5, .5, .1, .9};
    eraser_faith_instance in[] = {{2, 0, f1, c1, s1, tc1, ts1}, {2, 1, f2, c2, s2, tc2, ts2}};
    eraser_faith f;
    double cp[2], sp[2];
    eraser_faithfulness(&f, cp, sp, in, 2, 2);
    CHECK_NEAR(f.comprehensiveness, 0.3, EPS);
    CHECK_NEAR(f.sufficiency, 0.0, EPS);
    CHECK_NEAR(f.comprehensiveness_aopc, 0.125, EPS);
    CHECK_NEAR(cp[0], 0.0, EPS);
    CHECK_NEAR(cp[1], 0.25, EPS);
    CHECK_NEAR(f.sufficiency_aopc, -0.075, EPS);
    CHECK_NEAR(sp[0], 0.0, EPS);
    CHECK_NEAR(sp[1], -0.15, EPS);
#define H2(a, b) (-((a) * log(a) + (b) * log(b)))
    CHECK_NEAR(f.comprehensiveness_entropy, ((H2(.8, .2) - H2(.3, .7)) + (H2(.4, .6) - H2(.5, .5))) / 2, EPS);
    CHECK_NEAR(f.sufficiency_entropy, ((H2(.8, .2) - H2(.6, .4)) + (H2(.4, .6) - H2(.2, .8))) / 2, EPS);
    double kl1 = .3 * log(.3 / .8) + .7 * log(.7 / .2), kl2 = .5 * log(.5 / .4) + .5 * log(.5 / .6);
    CHECK_NEAR(f.comprehensiveness_kl, (kl1 + kl2) / 2, EPS);
    double ks1 = .6 * log(.6 / .8) + .4 * log(.4 / .2), ks2 = .2 * log(.2 / .4) + .8 * log(.8 / .6);
    CHECK_NEAR(f.sufficiency_kl, (ks1 + ks2) / 2, EPS);
    /* without the tables the quantities are undefined (null in the score file) */
    eraser_faith_instance bare[] = {{2, 0, f1, NULL, NULL, NULL, NULL}};
    eraser_faithfulness(&f, NULL, NULL, bare, 1, 0);
    CHECK(isnan(f.comprehensiveness) && isnan(f.sufficiency_kl) && isnan(f.comprehensiveness_aopc));
}

/* gold A A B B C, pred A B B B A:
 *   A: tp 1, predicted 2, support 2 -> p 1/2, r 1/2, f1 1/2
 *   B: tp 2, predicted 3, support 2 -> p 2/3, r 1, f1 4/5
 *   C: tp 0, predicted 0, support 1 -> p 0 (zero division), r 0, f1 0
 *   accuracy 3/5; macro p 7/18, r 1/2, f1 13/30; weighted p 7/15, r 3/5, f1 13/25 */
TEST(eraser_classification_report_by_hand) {
    const char *gold[] = {"A", "A", "B", "B", "C"}, *pred[] = {"A", "B", "B", "B", "A"};
    eraser_class_report r;
    REQUIRE(eraser_class_report_compute(&r, gold, pred, 5) == ADP_OK);
    CHECK_INT(r.n_labels, 3);
    CHECK_STR(r.labels[2], "C");
    CHECK_NEAR(r.per_label[0].precision, 0.5, EPS);
    CHECK_NEAR(r.per_label[1].precision, 2.0 / 3, EPS);
    CHECK_NEAR(r.per_label[1].recall, 1.0, EPS);
    CHECK_NEAR(r.per_label[1].f1, 0.8, EPS);
    CHECK_NEAR(r.per_label[2].precision, 0, EPS);
    CHECK_NEAR(r.per_label[2].f1, 0, EPS);
    CHECK_INT(r.per_label[2].support, 1);
    CHECK_NEAR(r.accuracy, 0.6, EPS);
    CHECK_NEAR(r.macro.precision, 7.0 / 18, EPS);
    CHECK_NEAR(r.macro.recall, 0.5, EPS);
    CHECK_NEAR(r.macro.f1, 13.0 / 30, EPS);
    CHECK_NEAR(r.weighted.precision, 7.0 / 15, EPS);
    CHECK_NEAR(r.weighted.recall, 0.6, EPS);
    CHECK_NEAR(r.weighted.f1, 13.0 / 25, EPS);
    CHECK_INT(r.weighted.support, 5);
    eraser_class_report_free(&r);
    const char *bad[] = {"A", "D", "B", "B", "C"};
    CHECK_INT(eraser_class_report_compute(&r, gold, bad, 5), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "'D'") != NULL);
}

/* key 1: gold 11000, kept 10100 -> tp 1, fp 1, pos 2, neg 3
 * key 2: gold 0000,  kept 1100  -> tp 0, fp 2, pos 0, neg 4
 * micro FPR 3/7, TPR 1/2; macro FPR mean(1/3, 2/4) = 5/12, TPR 1/2 (key 2 has no gold). */
TEST(eraser_keep_rates_by_hand) {
    static const uint8_t g1[] = {1, 1, 0, 0, 0}, k1[] = {1, 0, 1, 0, 0}, g2[] = {0, 0, 0, 0}, k2[] = {1, 1, 0, 0};
    static const uint8_t none[5] = {0}, all[5] = {1, 1, 1, 1, 1};
    eraser_keep_rates kr;
    eraser_keep_rates_init(&kr, 3);
    REQUIRE(eraser_keep_rates_add(&kr, 0, g1, k1, 5) == ADP_OK);
    REQUIRE(eraser_keep_rates_add(&kr, 0, g2, k2, 4) == ADP_OK);
    REQUIRE(eraser_keep_rates_add(&kr, 1, g1, none, 5) == ADP_OK);
    REQUIRE(eraser_keep_rates_add(&kr, 2, g1, all, 5) == ADP_OK);
    CHECK_INT(eraser_keep_rates_add(&kr, 3, g1, all, 5), ADP_ERR);
    eraser_rates r;
    eraser_keep_rates_get(&r, &kr, 0);
    CHECK_NEAR(r.fpr_micro, 3.0 / 7, EPS);
    CHECK_NEAR(r.tpr_micro, 0.5, EPS);
    CHECK_NEAR(r.fpr_macro, 5.0 / 12, EPS);
    CHECK_NEAR(r.tpr_macro, 0.5, EPS);
    CHECK_INT(r.n_keys, 2);
    eraser_keep_rates_get(&r, &kr, 1); /* nothing kept */
    CHECK_NEAR(r.fpr_micro, 0, EPS);
    CHECK_NEAR(r.tpr_micro, 0, EPS);
    eraser_keep_rates_get(&r, &kr, 2); /* everything kept */
    CHECK_NEAR(r.fpr_micro, 1, EPS);
    CHECK_NEAR(r.tpr_macro, 1, EPS);
    eraser_keep_rates_free(&kr);
    eraser_keep_rates_init(&kr, 1); /* no keys: undefined */
    eraser_keep_rates_get(&r, &kr, 0);
    CHECK(isnan(r.fpr_micro) && isnan(r.tpr_macro));
    eraser_keep_rates_free(&kr);
}

/* Per-layer rates from piece masks: [CLS] w0 w0 w1 w2 [SEP], gold words {0, 2} of 3.
 * layer 0 keeps every piece; layer 1 keeps one piece of w0 and w1; layer 2 keeps [CLS] only. */
TEST(eraser_keep_rates_from_pieces) {
    static const int32_t wid[] = {-1, 0, 0, 1, 2, -1};
    static const uint8_t gold[] = {1, 0, 1};
    static const uint8_t l0[] = {1, 1, 1, 1, 1, 1}, l1[] = {1, 0, 1, 1, 0, 1}, l2[] = {1, 0, 0, 0, 0, 0};
    eraser_keep_rates kr;
    eraser_keep_rates_init(&kr, 3);
    REQUIRE(eraser_keep_rates_add_pieces(&kr, 0, gold, 3, l0, wid, 6) == ADP_OK);
    REQUIRE(eraser_keep_rates_add_pieces(&kr, 1, gold, 3, l1, wid, 6) == ADP_OK);
    REQUIRE(eraser_keep_rates_add_pieces(&kr, 2, gold, 3, l2, wid, 6) == ADP_OK);
    eraser_rates r;
    eraser_keep_rates_get(&r, &kr, 0);
    CHECK(r.fpr_micro == 1 && r.tpr_micro == 1);
    eraser_keep_rates_get(&r, &kr, 1); /* w0 kept (gold), w1 kept (not gold), w2 dropped */
    CHECK_NEAR(r.fpr_micro, 1, EPS);
    CHECK_NEAR(r.tpr_micro, 0.5, EPS);
    eraser_keep_rates_get(&r, &kr, 2); /* specials are not words */
    CHECK(r.fpr_micro == 0 && r.tpr_micro == 0);
    static const int32_t bad[] = {-1, 7};
    CHECK_INT(eraser_keep_rates_add_pieces(&kr, 0, gold, 3, l0, bad, 2), ADP_ERR);
    eraser_keep_rates_free(&kr);
}

TEST(eraser_tokens_to_flip_by_hand) {
    static const double t[] = {10, 5};
    static const size_t n[] = {100, 20};
    CHECK_NEAR(eraser_tokens_to_flip(t, n, 2), (0.1 + 0.25) / 2, EPS);
}
