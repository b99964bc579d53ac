/* data_internal.h: helpers shared by the dataset loaders (engine/data_*.c). */
#ifndef ADP_DATA_INTERNAL_H
#define ADP_DATA_INTERNAL_H

#include "dataset.h"

/* Arena allocation owned by ds (freed by dataset_free). */
void *ds_alloc(dataset *ds, size_t n);
char *ds_strndup(dataset *ds, const char *s, size_t n);
/* A new zeroed example at the end of ds->ex (label -1). */
example *ds_add(dataset *ds);
void ds_set_labels(dataset *ds, const char *const *names, int n);
/* Validate an example's text and pair as UTF-8 and count text's words; "file:line: ..."
 * on error.  Checks that a rationale, if any, was built for that word count. */
int ds_finish(dataset *ds, example *ex, const char *file, size_t line);
/* Build text = tokens joined by single spaces, and turn per-token flags
 * (n_vec vectors of n_tok flags) into per-word flags of that text: a token holding k
 * whitespace words passes its flag to each of them, a token with none drops it. */
int ds_text_from_tokens(dataset *ds, example *ex, const char *const *tok, const size_t *tok_len, size_t n_tok,
                        const uint8_t *flags, size_t n_vec, uint8_t **word_flags);
/* DATA/<sub>/<file> into out. */
void ds_path(char *out, size_t cap, const dataset_opts *o, const char *sub, const char *file);
/* Stratified seeded dev split: marks is_dev[i] for round(10%) of the examples of each label
 * (Fisher-Yates shuffle per label with splitmix64 seeded from seed and the label). */
void ds_seeded_dev(const int32_t *labels, size_t n, int n_labels, uint64_t seed, uint8_t *is_dev);
/* Keep only examples with keep[i] (order preserved). */
void ds_filter(dataset *ds, const uint8_t *keep);
/* splitmix64 step */
uint64_t ds_rand(uint64_t *state);
/* Python's str.isspace() (Unicode 14), for data defined by str.split(). */
int py_isspace(int32_t cp);
/* Trim ASCII spaces at both ends of s[0..*len) in place (returns the new start). */
char *ds_trim(char *s, size_t *len);

int data_load_sst2(dataset *ds, const dataset_opts *o, split_id split);
int data_load_tsv(dataset *ds, const dataset_opts *o, const char *dir, split_id split);
int data_load_agnews(dataset *ds, const dataset_opts *o, split_id split);
int data_load_hatexplain(dataset *ds, const dataset_opts *o, split_id split);
int data_load_eraser_movies(dataset *ds, const dataset_opts *o, split_id split);
int data_load_imdb(dataset *ds, const dataset_opts *o, split_id split);
int data_load_planted(dataset *ds, const dataset_opts *o, split_id split);

#endif
