/* planted_words.h: the filler vocabulary of the planted-rationale task (generated). */
#ifndef ADP_PLANTED_WORDS_H
#define ADP_PLANTED_WORDS_H

typedef struct {
    const char *word;
    int count; /* frequency in SST-2 train: the generator's sampling weight */
} planted_word;

#define PLANTED_N_FILLER 3000
extern const planted_word PLANTED_FILLER[PLANTED_N_FILLER];

#endif
