/* wordpiece.h: BERT's WordPiece tokenizer: vocabulary, encoding of a text or a text pair
 * into input ids, token types and word ids, with truncation.
 *
 * Encoding = BasicTokenizer (basic_tokenizer.h), then for each basic token greedy
 * longest-match-first WordPiece: the longest vocabulary entry that is a prefix of the rest
 * of the token, written "##piece" when it does not start the token.  A token longer than
 * 100 characters, or with any remainder that matches no entry, becomes a single [UNK].
 * Single text: [CLS] A [SEP], token types 0.  Pair: [CLS] A [SEP] B [SEP], types 0 for
 * [CLS] A [SEP] and 1 for B [SEP].  Truncation to max_len (specials included) removes
 * pieces from the end of the longer of A and B, one at a time, B first on ties
 * (longest-first, as tokenization.py's _truncate_seq_pair and Hugging Face do).
 *
 * Thread safety: a loaded wordpiece is read-only; give each thread its own wp_encoding.
 *
 *   wordpiece wp;  wp_encoding enc = {0};
 *   if (wordpiece_load(&wp, "vocab.txt", 1) != ADP_OK) ... adp_errmsg() ...
 *   if (wordpiece_encode(&wp, &enc, text, strlen(text), NULL, 0, 512) != ADP_OK) ...
 *   for (size_t i = 0; i < enc.n; i++) use(enc.ids[i], enc.type_ids[i], enc.word_ids[i]);
 *   wp_encoding_free(&enc);  wordpiece_free(&wp); */
#ifndef ADP_WORDPIECE_H
#define ADP_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

#include "basic_tokenizer.h"
#include "symtab.h"

#define WP_MAX_WORD_CHARS 100 /* longer basic tokens become [UNK] */

typedef struct {
    symtab map;    /* token -> id (a token listed twice maps to its last line, as in BERT) */
    char **tokens; /* (n) id -> token, NUL-terminated */
    size_t n;
    int32_t unk_id, cls_id, sep_id, pad_id, mask_id; /* -1 when absent ([PAD], [MASK]) */
    size_t max_bytes;                               /* longest entry, in bytes, "##" excluded */
    int lower;                                      /* uncased basic tokenization */
} wordpiece;

/* vocab.txt: UTF-8, one token per line, id = line number (0-based); a trailing "\r" is
 * stripped; the last line may lack its "\n".  [UNK], [CLS] and [SEP] must be present.
 * lower = 1 for uncased models (the usual bert-*-uncased and our own vocabularies). */
int wordpiece_load(wordpiece *wp, const char *path, int lower);
/* The same from an in-memory list (tokens[i] has id i). */
int wordpiece_from_list(wordpiece *wp, const char *const *tokens, size_t n, int lower);
void wordpiece_free(wordpiece *wp);
int32_t wordpiece_id(const wordpiece *wp, const char *token); /* -1 if absent */
const char *wordpiece_token(const wordpiece *wp, int32_t id); /* NULL if out of range */

/* The encoder's output (and its scratch space); zero-initialise, reuse across calls. */
typedef struct {
    int32_t *ids;      /* (n) vocabulary ids */
    int32_t *type_ids; /* (n) 0 for [CLS] A [SEP], 1 for B [SEP] */
    int32_t *word_ids; /* (n) whitespace word of A (type 0) or of B (type 1); -1 for specials */
    int32_t *start;    /* (n) byte span of the piece in its own input text; -1 for specials */
    int32_t *end;
    size_t n, cap;
    size_t n_a, n_b;       /* pieces of A and of B kept */
    size_t n_truncated;    /* pieces removed by truncation */
    size_t n_words_a, n_words_b;
    basic_tokenizer bt;    /* scratch */
    struct wp_pieces { int32_t *id, *word, *start, *end; size_t n, cap; } a, b;
} wp_encoding;

/* Encode text (and pair, if not NULL) with [CLS]/[SEP] and truncation to max_len pieces in
 * total (0: no limit; otherwise at least 2, or 3 with a pair).  ADP_ERR on invalid UTF-8
 * ("text: invalid UTF-8 at byte N" / "text_pair: ..."); the caller adds file and line. */
int wordpiece_encode(const wordpiece *wp, wp_encoding *enc, const char *text, size_t len,
                     const char *pair, size_t pair_len, size_t max_len);
/* Only the pieces of text, no special tokens, no truncation (into enc->ids etc.). */
int wordpiece_tokenize(const wordpiece *wp, wp_encoding *enc, const char *text, size_t len);
void wp_encoding_free(wp_encoding *enc);

#endif
