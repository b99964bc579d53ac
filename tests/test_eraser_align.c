/* test_eraser_align.c: WordPiece <-> word alignment and document windows, on fixtures worked
 * out by hand, plus a randomized check of the window invariants. */
#include <stdint.h>
#include <stdlib.h>

#include "common.h"
#include "eraser/align.h"
#include "test.h"

/* [CLS] w0 w0 w1 w2 w2 w2 [SEP]; word 3 has no piece. */
static const int32_t WIDS[] = {-1, 0, 0, 1, 2, 2, 2, -1};

TEST(eraser_align_pieces_to_words) {
    static const float ps[] = {9, .1f, .5f, .2f, .3f, .9f, .1f, 9};
    float ws[4];
    REQUIRE(eraser_word_scores_from_pieces(ws, 4, ps, WIDS, 8, -1.0f) == ADP_OK);
    CHECK_NEAR(ws[0], .5f, 0); /* max of its pieces */
    CHECK_NEAR(ws[1], .2f, 0);
    CHECK_NEAR(ws[2], .9f, 0);
    CHECK_NEAR(ws[3], -1.0f, 0); /* no piece: the caller's value */
    static const float neg[] = {0, -3, -2, -1, -5, -4, -6, 0};
    REQUIRE(eraser_word_scores_from_pieces(ws, 4, neg, WIDS, 8, 0) == ADP_OK);
    CHECK_NEAR(ws[0], -2, 0); /* max, not "max with 0" */
    CHECK_NEAR(ws[2], -4, 0);

    static const uint8_t keep[] = {1, 0, 1, 0, 0, 0, 1, 1};
    uint8_t wk[4];
    REQUIRE(eraser_word_keep_from_pieces(wk, 4, keep, WIDS, 8) == ADP_OK);
    CHECK(wk[0] == 1 && wk[1] == 0 && wk[2] == 1 && wk[3] == 0); /* any piece kept; [CLS]/[SEP] ignored */
    CHECK_INT(eraser_count_unaligned_words(WIDS, 8, 4), 1);

    static const uint8_t mask[] = {0, 1, 1, 0};
    int8_t lab[8];
    REQUIRE(eraser_piece_labels_from_words(lab, mask, 4, WIDS, 8) == ADP_OK);
    static const int8_t want[] = {-1, 0, 0, 1, 1, 1, 1, -1};
    for (int i = 0; i < 8; i++) CHECK_INT(lab[i], want[i]);

    static const int32_t bad[] = {-1, 0, 4};
    CHECK_INT(eraser_word_keep_from_pieces(wk, 4, keep, bad, 3), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "piece 2") != NULL);
    static const int32_t bad2[] = {-2};
    CHECK_INT(eraser_piece_labels_from_words(lab, mask, 4, bad2, 1), ADP_ERR);
}

/* 10 words in 15 pieces:  w0 [0,2) w1 [2,3) w2 [3,6) w3 [6,7) w4 [7,8) w5 [8,10) w6 [10,11)
 * w7 [11,13) w8 [13,14) w9 [14,15).  window 6, overlap 3:
 *   [0,6); next start 6-3 = 3 (a word start)          -> [3,9) cut back to w5's start: [3,8)
 *   next 8-3 = 5 -> moved to the word start 6         -> [6,12) cut back to [6,11)
 *   next 11-3 = 8 (word start)                        -> [8,14) (14 starts w9)
 *   next 14-3 = 11 (word start)                       -> [11,15), the end.
 * Owners (context = min(before, after) in the window; ties: longer window, then earlier):
 *   p3: W0 min(3,2)=2 vs W1 0 -> W0     p4: W0 1 vs W1 1, W0 longer -> W0
 *   p5: W0 0 vs W1 2 -> W1              p6: W1 1 vs W2 0 -> W1
 *   p7: W1 0 vs W2 1 -> W2              p8: W2 2 vs W3 0 -> W2
 *   p9: W2 1 vs W3 1, W3 longer -> W3   p10: W2 0 vs W3 2 -> W3
 *   p11: W3 2 vs W4 0 -> W3             p12: W3 1 vs W4 1, W3 longer -> W3
 *   p13: W3 0 vs W4 1 -> W4 */
static const int32_t DOC[] = {0, 0, 1, 2, 2, 2, 3, 4, 5, 5, 6, 7, 7, 8, 9};

TEST(eraser_windows_by_hand) {
    eraser_window *w;
    size_t n;
    REQUIRE(eraser_plan_windows(&w, &n, DOC, 15, 6, 3) == ADP_OK);
    static const size_t want[][2] = {{0, 6}, {3, 8}, {6, 11}, {8, 14}, {11, 15}};
    REQUIRE(n == 5);
    for (size_t k = 0; k < n; k++) {
        CHECK_INT(w[k].start, want[k][0]);
        CHECK_INT(w[k].end, want[k][1]);
    }
    size_t owner[15];
    REQUIRE(eraser_piece_owners(owner, w, n, 15) == ADP_OK);
    static const size_t own[] = {0, 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4};
    for (int p = 0; p < 15; p++) CHECK_MSG(owner[p] == own[p], "piece %d: owner %zu, want %zu", p, owner[p], own[p]);

    /* merge: window k reports 100k + j for its j-th piece, and keeps its even pieces */
    float *score[5];
    uint8_t *keep[5];
    for (size_t k = 0; k < n; k++) {
        size_t len = w[k].end - w[k].start;
        score[k] = malloc(len * sizeof(float));
        keep[k] = malloc(len);
        for (size_t j = 0; j < len; j++) score[k][j] = (float)(100 * k + j), keep[k][j] = (uint8_t)(j % 2 == 0);
    }
    float ps[15];
    uint8_t pk[15];
    REQUIRE(eraser_merge_windows(ps, pk, w, n, (const float *const *)score, (const uint8_t *const *)keep, 15) == ADP_OK);
    for (int p = 0; p < 15; p++) {
        size_t k = own[p], j = (size_t)p - w[k].start;
        CHECK_NEAR(ps[p], 100.0 * (double)k + (double)j, 0);
        CHECK_INT(pk[p], j % 2 == 0);
    }
    /* word 2 (pieces 3, 4, 5) takes the max over owners W0 (j 3, 4) and W1 (j 2): 102 */
    float ws[10];
    REQUIRE(eraser_word_scores_from_pieces(ws, 10, ps, DOC, 15, 0) == ADP_OK);
    CHECK_NEAR(ws[2], 102, 0);
    for (size_t k = 0; k < n; k++) free(score[k]), free(keep[k]);
    free(w);
}

TEST(eraser_windows_edge_cases) {
    eraser_window *w;
    size_t n;
    REQUIRE(eraser_plan_windows(&w, &n, DOC, 15, 510, 128) == ADP_OK); /* fits: one window */
    CHECK(n == 1 && w[0].start == 0 && w[0].end == 15);
    free(w);
    REQUIRE(eraser_plan_windows(&w, &n, DOC, 0, 510, 128) == ADP_OK); /* empty document */
    CHECK_INT(n, 0);
    free(w);
    /* one word longer than the window is cut inside the word */
    static const int32_t longw[] = {0, 0, 0, 0, 0, 0, 0, 0, 1};
    REQUIRE(eraser_plan_windows(&w, &n, longw, 9, 4, 1) == ADP_OK);
    REQUIRE(n == 3);
    CHECK(w[0].start == 0 && w[0].end == 4 && w[1].start == 4 && w[1].end == 8 && w[2].start == 8 && w[2].end == 9);
    free(w);
    CHECK_INT(eraser_plan_windows(&w, &n, DOC, 15, 4, 4), ADP_ERR); /* overlap must be < window */
    CHECK_INT(eraser_plan_windows(&w, &n, DOC, 15, 0, 0), ADP_ERR);
    static const int32_t backwards[] = {0, 1, 0};
    CHECK_INT(eraser_plan_windows(&w, &n, backwards, 3, 2, 0), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "piece 2") != NULL);
    static const int32_t special[] = {-1, 0};
    CHECK_INT(eraser_plan_windows(&w, &n, special, 2, 2, 0), ADP_ERR);
    eraser_window gap[] = {{0, 5}, {7, 15}};
    size_t owner[15];
    CHECK_INT(eraser_piece_owners(owner, gap, 2, 15), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "piece 5") != NULL);
}

/* Random documents: windows cover every piece, are at most `window` long, move forward,
 * start and end at word boundaries unless a word is longer than the window, and
 * consecutive windows share at most `overlap` pieces. */
TEST(eraser_windows_random) {
    unsigned seed = 12345;
    for (int trial = 0; trial < 500; trial++) {
        size_t n_words = 1 + test_rand(&seed) % 400, n = 0;
        int32_t *ids = malloc(n_words * 8 * sizeof *ids);
        for (size_t wd = 0; wd < n_words; wd++) {
            size_t len = 1 + (test_rand(&seed) % 10 == 0 ? test_rand(&seed) % 20 : test_rand(&seed) % 3);
            for (size_t j = 0; j < len && n < n_words * 8; j++) ids[n++] = (int32_t)wd;
        }
        size_t window = 2 + test_rand(&seed) % 64, overlap = test_rand(&seed) % window;
        eraser_window *w;
        size_t nw;
        REQUIRE(eraser_plan_windows(&w, &nw, ids, n, window, overlap) == ADP_OK);
        REQUIRE(nw > 0);
        CHECK_INT(w[0].start, 0);
        CHECK_INT(w[nw - 1].end, n);
        for (size_t k = 0; k < nw; k++) {
            size_t s = w[k].start, e = w[k].end;
            CHECK(s < e && e - s <= window);
            int s_ok = s == 0 || ids[s] != ids[s - 1], e_ok = e == n || ids[e] != ids[e - 1];
            int long_word = (s > 0 && ids[s] == ids[s - 1]) || (e < n && ids[e] == ids[e - 1]);
            CHECK_MSG((s_ok && e_ok) || long_word, "trial %d window %zu [%zu,%zu)", trial, k, s, e);
            if (k) {
                CHECK(s > w[k - 1].start);
                CHECK(s <= w[k - 1].end); /* no gap */
                CHECK(w[k - 1].end - s <= overlap);
            }
        }
        size_t *owner = malloc(n * sizeof *owner);
        CHECK(eraser_piece_owners(owner, w, nw, n) == ADP_OK);
        for (size_t p = 0; p < n; p++) CHECK(w[owner[p]].start <= p && p < w[owner[p]].end);
        free(owner);
        free(w);
        free(ids);
        if (test_failures()) return;
    }
}
