/* vocab_learn.h: learn a WordPiece vocabulary from text.
 *
 * Algorithm (the one Hugging Face's `tokenizers` WordPieceTrainer runs, which is BPE with
 * WordPiece's "##" continuation notation):
 *   1. Pre-tokenize every text with BERT's BasicTokenizer (uncased unless lower = 0) and
 *      count the distinct words.
 *   2. Spell each word as characters: its first character as itself, the others as
 *      "##c".  Every such symbol seen is in the vocabulary (the alphabet), so any word made
 *      of characters seen in training is encodable without [UNK].
 *   3. Repeatedly merge the adjacent pair of symbols (x, y) with the largest count
 *      (counted over all words, weighted by word frequency) into one symbol x + y (with
 *      y's "##" dropped), and add it to the vocabulary; ties go to the lexicographically
 *      smallest pair.  Stop at the requested size, or when no pair occurs min_freq times.
 * Output order: [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0..4), the alphabet (sorted by bytes,
 * word-initial characters first, then "##" characters), then the merged symbols in the
 * order they were learned.  The result is deterministic. */
#ifndef ADP_VOCAB_LEARN_H
#define ADP_VOCAB_LEARN_H

#include <stddef.h>
#include <stdint.h>

#include "basic_tokenizer.h"
#include "symtab.h"

#define VOCAB_N_SPECIAL 5
extern const char *const VOCAB_SPECIALS[VOCAB_N_SPECIAL]; /* [PAD] [UNK] [CLS] [SEP] [MASK] */

typedef struct {
    int lower;
    symtab words; /* word -> index into freq */
    int64_t *freq;
    size_t cap;
    size_t n_texts, n_words;
    basic_tokenizer bt;
} vocab_learner;

void vocab_learner_init(vocab_learner *vl, int lower);
void vocab_learner_free(vocab_learner *vl);
/* Count the words of one text; ADP_ERR on invalid UTF-8 (caller adds file:line). */
int vocab_learner_add(vocab_learner *vl, const char *text, size_t len);
/* Learn a vocabulary of at most `size` entries.  *tokens receives malloc'd strings (free
 * with vocab_tokens_free).  ADP_ERR if size cannot hold the specials and the alphabet. */
int vocab_learner_build(vocab_learner *vl, size_t size, int64_t min_freq, char ***tokens, size_t *n_tokens,
                        size_t *n_alphabet);
void vocab_tokens_free(char **tokens, size_t n);
/* Write tokens one per line (atomically). */
int vocab_write(const char *path, char *const *tokens, size_t n);

#endif
