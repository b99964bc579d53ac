/* align.h: alignment between WordPieces and ERASER words, and windows over long documents.
 *
 * The tokenizer gives, for every piece i of an encoding, word_ids[i] = the index of the
 * whitespace word (ERASER token) the piece came from, or -1 for [CLS], [SEP] and padding.
 * These functions take only that array, never the tokenizer.  For the mapping to be right
 * the words given to the tokenizer must be the ERASER words of the document in order
 * (eraser_doc.words), so that word index w means ERASER word w.
 *
 * Rules (README.md, "ERASER alignment"):
 *   - a word's score is the MAX of its pieces' scores.  Max does not depend on how many
 *     pieces the vocabulary cuts a word into (a sum would favour long, rare words, and
 *     AdapLeR's scores are a softmax over pieces, so a sum would also move mass between
 *     words), and it agrees with the keep rule: with a threshold t, word score >= t exactly
 *     when some piece has score >= t.
 *   - a word is kept if ANY of its pieces is kept (it still reaches the classifier).
 *   - a word without pieces (the tokenizer dropped all its characters) gets the caller's
 *     `missing` score and is never kept.
 *   - word -> piece: every piece carries its word's label; special pieces get -1.
 *
 * Windows: a document longer than the model's maximum length is cut into windows of at
 * most `window` pieces (max_len - 2, leaving room for [CLS] and [SEP]) that start and end
 * at word boundaries (a single word longer than a window is cut, the only exception),
 * consecutive windows sharing about `overlap` pieces (we use max_len / 4, i.e. 128 for 512).
 * A piece that lies in several windows takes its score and its keep decision from the
 * window where it has the most context, min(pieces before it, pieces after it) in that
 * window; ties go to the longer window, then the earlier one (BERT's "max context" rule
 * for SQuAD document strides).  Every piece thus has exactly one owner window; words then
 * follow the max/any rules above over the merged pieces. */
#ifndef ERASER_ALIGN_H
#define ERASER_ALIGN_H

#include <stddef.h>
#include <stdint.h>

/* piece -> word.  Pieces with word_ids[i] == -1 are ignored; any other id outside
 * [0, n_words) is an error. */
int eraser_word_scores_from_pieces(float *word_score, size_t n_words, const float *piece_score,
                                   const int32_t *word_ids, size_t n_pieces, float missing);
int eraser_word_keep_from_pieces(uint8_t *word_keep, size_t n_words, const uint8_t *piece_keep,
                                 const int32_t *word_ids, size_t n_pieces);
/* word -> piece: piece_label[i] = word_mask[word_ids[i]] (0/1), or -1 for special pieces. */
int eraser_piece_labels_from_words(int8_t *piece_label, const uint8_t *word_mask, size_t n_words,
                                   const int32_t *word_ids, size_t n_pieces);
/* Number of words in [0, n_words) that no piece maps to. */
size_t eraser_count_unaligned_words(const int32_t *word_ids, size_t n_pieces, size_t n_words);

/* A window: document pieces [start, end) (document pieces = the encoding of the whole
 * document without special tokens). */
typedef struct {
    size_t start, end;
} eraser_window;

/* Plan windows over a document of n_pieces pieces.  word_ids are those of the document
 * pieces (all >= 0, non-decreasing).  Requires 0 <= overlap < window.  *win is malloc'd.
 * A document that fits gets one window; an empty one gets none. */
int eraser_plan_windows(eraser_window **win, size_t *n_win, const int32_t *word_ids, size_t n_pieces,
                        size_t window, size_t overlap);
/* owner[p] = the window piece p takes its results from (the max-context rule above).
 * The windows must cover [0, n_pieces). */
int eraser_piece_owners(size_t *owner, const eraser_window *win, size_t n_win, size_t n_pieces);
/* Merge per-window results into document pieces: win_score[k][j] (and win_keep[k][j])
 * belong to document piece win[k].start + j.  Either output (with its input) may be NULL. */
int eraser_merge_windows(float *piece_score, uint8_t *piece_keep, const eraser_window *win, size_t n_win,
                         const float *const *win_score, const uint8_t *const *win_keep, size_t n_pieces);

#endif
