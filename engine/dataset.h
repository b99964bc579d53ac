/* dataset.h: every dataset the harness trains and evaluates on, in one in-memory form,
 * and its conversion to packed WordPiece ids.
 *
 * Names (--dataset NAME): sst2, agnews, hatexplain, eraser_movies, imdb, planted, tsv:DIR.
 * Files are read from DATA/<name>/, DATA = --data-dir, else $ADAPLER_DATA, else "data"
 * (filled by `make data`).  The splits and how each file is read are described in
 * README.md ("Datasets") and above each loader (engine/data_*.c).
 *
 *   dataset_opts o;  dataset ds;  wordpiece wp;  packed_tokens pk;
 *   dataset_opts_init(&o);  o.name = "sst2";
 *   if (dataset_load(&ds, &o, SPLIT_DEV) != ADP_OK) ... adp_errmsg() ...
 *   wordpiece_load(&wp, "vocab.txt", 1);
 *   dataset_pack(&pk, &ds, &wp, 512);     // all examples, packed back to back
 *   // example i = tokens [pk.seq_off[i], pk.seq_off[i+1]) of pk.ids, label pk.labels[i]
 *   packed_tokens_free(&pk);  dataset_free(&ds);  wordpiece_free(&wp); */
#ifndef ADP_DATASET_H
#define ADP_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "wordpiece.h"

typedef enum { SPLIT_TRAIN = 0, SPLIT_DEV = 1, SPLIT_TEST = 2 } split_id;
#define N_SPLITS 3
const char *split_name(split_id s); /* "train", "dev", "test" */
/* "train"; "dev", "val" or "validation"; "test".  ADP_ERR otherwise. */
int split_parse(const char *s, split_id *out);

typedef struct {
    const char *id;   /* stable example id (post id, review file name, "train-17", ...) */
    const char *text; /* UTF-8 */
    const char *pair; /* second text of a pair task, or NULL */
    int32_t label;    /* 0 .. n_labels-1; -1 when the split is unlabelled (SST-2 test) */
    uint32_t n_words; /* whitespace words of text (basic_count_words: BERT's whitespace) */
    /* Human rationale, one flag per whitespace word of text (1 = marked), or NULL when the
     * example has none (HateXplain normal posts, datasets without rationales). */
    const uint8_t *rationale;
    /* HateXplain only: the annotators' rationale vectors, n_annot x n_words. */
    uint32_t n_annot;
    const uint8_t *annot_rationale;
} example;

typedef struct ds_block ds_block;

typedef struct {
    char name[256];   /* as given to --dataset */
    split_id split;
    example *ex;      /* (n) in file order */
    size_t n, cap;
    int n_labels;
    char **label_names; /* (n_labels) */
    int has_rationales; /* 1 if some examples carry a rationale */
    ds_block *mem;      /* arena holding every string and array above */
} dataset;

enum { HX_RATIONALE_UNION = 0, HX_RATIONALE_MAJORITY = 1 };

typedef struct {
    const char *name;     /* --dataset */
    const char *data_dir; /* --data-dir; NULL: $ADAPLER_DATA, else "data" */
    /* tsv:DIR columns (header names) */
    const char *text_col, *pair_col, *label_col;
    uint64_t split_seed; /* seeded dev split of agnews and imdb (--split-seed, default 13) */
    /* planted task */
    uint64_t planted_seed;        /* --planted-seed, default 1 */
    int planted_min, planted_max; /* words per document, 16..512 (--planted-len, default 16:64) */
    size_t planted_n[N_SPLITS];   /* documents per split (--planted-n N: N, N/4, N/4; default 2000) */
    int hatexplain_rationale;     /* HX_RATIONALE_UNION (default) or _MAJORITY */
} dataset_opts;

void dataset_opts_init(dataset_opts *o);
/* If argv[*i] is a dataset option, consume it (and its value; *i is advanced past it)
 * and return 1; return 0 if it is not one; ADP_ERR with a message for a bad value. */
int dataset_opts_parse(dataset_opts *o, int argc, char **argv, int *i);
/* Help text for the options above, for the subcommands' --help. */
extern const char DATASET_OPTS_HELP[];
/* The list of dataset names, for messages. */
extern const char DATASET_NAMES[];
/* Root folder datasets are read from (see above). */
const char *dataset_data_root(const dataset_opts *o);

/* Load one split.  ADP_ERR with a one-line message naming the file and line of the first
 * problem.  On success free with dataset_free(). */
int dataset_load(dataset *ds, const dataset_opts *o, split_id split);
void dataset_free(dataset *ds);

/* A split tokenized into one packed stream of pieces, sequences back to back. */
typedef struct {
    size_t n_seq, n_tok;
    int32_t *ids;      /* (n_tok) */
    int32_t *type_ids; /* (n_tok) */
    int32_t *word_ids; /* (n_tok) word of text or pair (see type_ids); -1 for specials */
    int8_t *rationale; /* (n_tok) 1/0 = piece of a (non-)rationale word; -1 for specials
                        * and for examples without a rationale */
    size_t *seq_off;   /* (n_seq + 1) sequence i is [seq_off[i], seq_off[i+1]) */
    int32_t *labels;   /* (n_seq) */
    size_t n_truncated;     /* sequences cut at max_len */
    size_t n_bytes;         /* bytes of text tokenized */
} packed_tokens;

/* Tokenize examples [first, first + count) of ds ([CLS] text [SEP] (pair [SEP])), each
 * truncated to max_len pieces (0: no limit).  ADP_ERR on invalid UTF-8 (impossible for a
 * loaded dataset, which is validated) or bad max_len. */
int dataset_pack_range(packed_tokens *pk, const dataset *ds, const wordpiece *wp, size_t max_len, size_t first,
                       size_t count);
int dataset_pack(packed_tokens *pk, const dataset *ds, const wordpiece *wp, size_t max_len);
void packed_tokens_free(packed_tokens *pk);

#endif
