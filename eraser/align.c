/* align.c: WordPiece <-> ERASER word alignment and document windows (rules in align.h). */
#include "align.h"

#include <string.h>

#include "common.h"

static int check_word_id(int id, size_t i, size_t n_words) {
    if (id < -1 || (id >= 0 && (size_t)id >= n_words))
        return adp_seterr("piece %zu: word id %d outside [-1, %zu)", i, id, n_words);
    return ADP_OK;
}

int eraser_word_scores_from_pieces(float *word_score, size_t n_words, const float *piece_score,
                                   const int32_t *word_ids, size_t n_pieces, float missing) {
    uint8_t *seen = callocCheck(n_words, 1);
    for (size_t i = 0; i < n_pieces; i++) {
        if (check_word_id(word_ids[i], i, n_words) != ADP_OK) {
            free(seen);
            return ADP_ERR;
        }
        if (word_ids[i] < 0) continue;
        size_t w = (size_t)word_ids[i];
        if (!seen[w] || piece_score[i] > word_score[w]) word_score[w] = piece_score[i];
        seen[w] = 1;
    }
    for (size_t w = 0; w < n_words; w++)
        if (!seen[w]) word_score[w] = missing;
    free(seen);
    return ADP_OK;
}

int eraser_word_keep_from_pieces(uint8_t *word_keep, size_t n_words, const uint8_t *piece_keep,
                                 const int32_t *word_ids, size_t n_pieces) {
    memset(word_keep, 0, n_words);
    for (size_t i = 0; i < n_pieces; i++) {
        if (check_word_id(word_ids[i], i, n_words) != ADP_OK) return ADP_ERR;
        if (word_ids[i] >= 0 && piece_keep[i]) word_keep[word_ids[i]] = 1;
    }
    return ADP_OK;
}

int eraser_piece_labels_from_words(int8_t *piece_label, const uint8_t *word_mask, size_t n_words,
                                   const int32_t *word_ids, size_t n_pieces) {
    for (size_t i = 0; i < n_pieces; i++) {
        if (check_word_id(word_ids[i], i, n_words) != ADP_OK) return ADP_ERR;
        piece_label[i] = word_ids[i] < 0 ? -1 : (int8_t)(word_mask[word_ids[i]] != 0);
    }
    return ADP_OK;
}

size_t eraser_count_unaligned_words(const int32_t *word_ids, size_t n_pieces, size_t n_words) {
    uint8_t *seen = callocCheck(n_words, 1);
    for (size_t i = 0; i < n_pieces; i++)
        if (word_ids[i] >= 0 && (size_t)word_ids[i] < n_words) seen[word_ids[i]] = 1;
    size_t missing = 0;
    for (size_t w = 0; w < n_words; w++) missing += !seen[w];
    free(seen);
    return missing;
}

/* Piece p starts a word (a window may begin before it / end after p - 1). */
static int word_start(const int32_t *word_ids, size_t p) { return p == 0 || word_ids[p] != word_ids[p - 1]; }

int eraser_plan_windows(eraser_window **win, size_t *n_win, const int32_t *word_ids, size_t n_pieces,
                        size_t window, size_t overlap) {
    *win = NULL;
    *n_win = 0;
    if (window == 0 || overlap >= window)
        return adp_seterr("windows: need 0 <= overlap < window, got window %zu, overlap %zu", window, overlap);
    for (size_t i = 0; i < n_pieces; i++)
        if (word_ids[i] < 0 || (i && word_ids[i] < word_ids[i - 1]))
            return adp_seterr("windows: document piece %zu has word id %d (ids must be >= 0 and non-decreasing)", i,
                              word_ids[i]);
    size_t cap = 4, n = 0;
    eraser_window *w = mallocCheck(cap * sizeof *w);
    for (size_t start = 0; start < n_pieces;) {
        size_t end = ADP_MIN(start + window, n_pieces);
        if (end < n_pieces) { /* end at a word boundary unless one word fills the window */
            size_t e = end;
            while (e > start && !word_start(word_ids, e)) e--;
            if (e > start) end = e;
        }
        if (n == cap) w = reallocCheck(w, (cap *= 2) * sizeof *w);
        w[n++] = (eraser_window){start, end};
        if (end == n_pieces) break;
        /* the next window starts `overlap` pieces back, moved forward to a word start,
         * and always after this window's start */
        size_t next = end > overlap ? end - overlap : 0;
        if (next <= start) next = start + 1;
        while (next < end && !word_start(word_ids, next)) next++;
        start = next;
    }
    *win = w;
    *n_win = n;
    return ADP_OK;
}

int eraser_piece_owners(size_t *owner, const eraser_window *win, size_t n_win, size_t n_pieces) {
    size_t *ctx = mallocCheck((n_pieces ? n_pieces : 1) * sizeof *ctx);
    for (size_t p = 0; p < n_pieces; p++) owner[p] = (size_t)-1;
    for (size_t k = 0; k < n_win; k++) {
        if (win[k].start >= win[k].end || win[k].end > n_pieces) {
            free(ctx);
            return adp_seterr("window %zu: [%zu, %zu) is empty or outside %zu pieces", k, win[k].start, win[k].end,
                              n_pieces);
        }
        for (size_t p = win[k].start; p < win[k].end; p++) {
            size_t c = ADP_MIN(p - win[k].start, win[k].end - 1 - p);
            size_t o = owner[p];
            int better = o == (size_t)-1 || c > ctx[p] ||
                         (c == ctx[p] && win[k].end - win[k].start > win[o].end - win[o].start);
            if (better) owner[p] = k, ctx[p] = c;
        }
    }
    free(ctx);
    for (size_t p = 0; p < n_pieces; p++)
        if (owner[p] == (size_t)-1) return adp_seterr("windows do not cover piece %zu", p);
    return ADP_OK;
}

int eraser_merge_windows(float *piece_score, uint8_t *piece_keep, const eraser_window *win, size_t n_win,
                         const float *const *win_score, const uint8_t *const *win_keep, size_t n_pieces) {
    size_t *owner = mallocCheck((n_pieces ? n_pieces : 1) * sizeof *owner);
    if (eraser_piece_owners(owner, win, n_win, n_pieces) != ADP_OK) {
        free(owner);
        return ADP_ERR;
    }
    for (size_t p = 0; p < n_pieces; p++) {
        size_t k = owner[p], j = p - win[k].start;
        if (piece_score && win_score) piece_score[p] = win_score[k][j];
        if (piece_keep && win_keep) piece_keep[p] = win_keep[k][j];
    }
    free(owner);
    return ADP_OK;
}
