/* basic_tokenizer.h: BERT's BasicTokenizer (google-research/bert tokenization.py,
 * Hugging Face BertTokenizer / BertTokenizerFast), the step before WordPiece.
 *
 * For an input string, in this order:
 *   1. drop U+0000, U+FFFD and control characters (general category C*, except \t \n \r);
 *   2. whitespace (\t \n \r, space, category Zs, and U+2028/U+2029 which Python's
 *      str.split() also splits on) separates words;
 *   3. every CJK ideograph (the fixed ranges of tokenization.py) becomes its own word;
 *   4. uncased mode: Python str.lower() of each word (simple lower-case mapping, plus the two
 *      context rules Python applies: U+0130 -> "i" U+0307 and the Greek final sigma), then
 *      NFD and removal of non-spacing marks (category Mn);
 *   5. every punctuation character (ASCII 33-47, 58-64, 91-96, 123-126, or category P*) is
 *      split off as a token of its own.
 * Character properties come from utf8proc (Unicode 15 in utf8proc 2.8).
 *
 * Not done, as in tokenization.py: Hugging Face's slow BertTokenizer (transformers >= 4.3x)
 * additionally NFC-composes the text; that changes nothing in uncased mode and only
 * composed-vs-decomposed accents in cased mode.  Special-token strings such as "[SEP]" in the
 * input are ordinary text here, so user text cannot inject control tokens.
 *
 * Besides the tokens, the tokenizer reports for each token the index of the input's
 * whitespace word it comes from (words = maximal runs of non-whitespace characters in the
 * input, step 2; a word made only of dropped characters still counts and yields no token),
 * and for every normalised character the byte span of the input character it comes from. */
#ifndef ADP_BASIC_TOKENIZER_H
#define ADP_BASIC_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t cp_off; /* first normalised character, index into the bt->cp_* arrays */
    uint32_t n_cp;   /* normalised characters (code points) */
    uint32_t off;    /* UTF-8 bytes in bt->buf: [off, off + len) */
    uint32_t len;
    int32_t word; /* index of the input's whitespace word */
} basic_token;

typedef struct {
    int lower; /* 1: uncased (lower-case + strip accents), 0: cased */
    /* Output of the last basic_tokenize(). */
    basic_token *tok;
    size_t n_tok, cap_tok;
    char *buf; /* normalised UTF-8 of all tokens, back to back (not NUL-separated) */
    size_t buf_len, buf_cap;
    /* Per normalised character (n_cp of them): byte offset in buf, and the byte span
     * [src_start, src_end) of the input character it came from.  cp_byte has one more
     * entry, so a token's characters are cp_byte[cp_off .. cp_off + n_cp]. */
    uint32_t *cp_byte, *cp_src_start, *cp_src_end;
    size_t n_cp, cap_cp;
    size_t n_words; /* whitespace words in the input */
    /* Scratch for one segment (run of characters between separators). */
    int32_t *seg_cp, *norm_cp;
    uint32_t *seg_s, *seg_e, *norm_s, *norm_e;
    size_t cap_seg, cap_norm;
} basic_tokenizer;

void basic_tokenizer_init(basic_tokenizer *bt, int lower);
void basic_tokenizer_free(basic_tokenizer *bt);
/* Tokenize text[0..len).  Returns ADP_ERR with "invalid UTF-8 at byte N" (the caller adds
 * file and line) on malformed input, or if len >= 4 GiB. */
int basic_tokenize(basic_tokenizer *bt, const char *text, size_t len);

/* Character classes used above, exposed for the dataset code and the tests. */
int basic_is_separator(int32_t cp); /* step 2 */
int basic_is_dropped(int32_t cp);   /* step 1 */
int basic_is_punct(int32_t cp);     /* step 5 */
int basic_is_cjk(int32_t cp);       /* step 3 */

/* Number of whitespace words (step 2) in text[0..len); ADP_ERR on invalid UTF-8.  This is
 * the word numbering that human rationales and word_ids use. */
int basic_count_words(const char *text, size_t len, size_t *n_words);
/* Check that text[0..len) is valid UTF-8; ADP_ERR naming the byte offset otherwise. */
int utf8_validate(const char *text, size_t len);

#endif
