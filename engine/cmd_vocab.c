/* cmd_vocab.c: `adapler vocab`: learn a WordPiece vocabulary (engine/vocab_learn.h). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "dataset.h"
#include "vocab_learn.h"

static void usage(FILE *f) {
    fprintf(f, "usage: adapler vocab (--corpus FILES | --dataset NAME [dataset options]) --size N --out vocab.txt\n"
               "                     [--no-lower] [--min-freq N]\n\n"
               "Learn a WordPiece vocabulary: BERT's basic tokenization, then the most frequent adjacent pairs\n"
               "of pieces are merged until N entries (\"##\" marks a piece that continues a word).  Output:\n"
               "[PAD] [UNK] [CLS] [SEP] [MASK] (ids 0..4), every character seen (word-initial and \"##\" forms),\n"
               "then the merges in the order learned.\n\n"
               "  --corpus FILES   text files, one text per line (comma-separated; the option may repeat)\n"
               "  --dataset NAME   learn from the train split's texts (and text pairs) instead\n"
               "  --size N         vocabulary size, special tokens included\n"
               "  --out FILE       where to write vocab.txt (written atomically)\n"
               "  --no-lower       cased vocabulary (no lower-casing or accent stripping)\n"
               "  --min-freq N     stop when the best pair occurs fewer than N times (default 2)\n\n%s",
            DATASET_OPTS_HELP);
}

static int add_corpus_file(vocab_learner *vl, const char *path) {
    char *data = NULL;
    size_t len = 0;
    if (adp_read_file(path, &data, &len) != ADP_OK) return ADP_ERR;
    size_t line = 0;
    for (char *p = data, *end = data + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        line++;
        if (vocab_learner_add(vl, p, (size_t)(e - p)) != ADP_OK) {
            free(data);
            return adp_preferr("%s:%zu: ", path, line);
        }
        p = e + 1;
    }
    free(data);
    return ADP_OK;
}

int cmd_vocab(int argc, char **argv) {
    dataset_opts o;
    dataset_opts_init(&o);
    const char *out = NULL;
    char *corpus[256];
    int n_corpus = 0, lower = 1;
    long size = 0, min_freq = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = dataset_opts_parse(&o, argc, argv, &i);
        if (r < 0) {
            fprintf(stderr, "vocab: %s\n", adp_errmsg());
            return 2;
        }
        if (r) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--no-lower")) {
            lower = 0;
        } else if (i + 1 < argc && !strcmp(a, "--corpus")) {
            char *list = argv[++i];
            for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
                if (n_corpus == (int)(sizeof corpus / sizeof *corpus)) {
                    fprintf(stderr, "vocab: too many corpus files\n");
                    return 2;
                }
                corpus[n_corpus++] = tok;
            }
        } else if (i + 1 < argc && !strcmp(a, "--out")) {
            out = argv[++i];
        } else if (i + 1 < argc && !strcmp(a, "--size")) {
            if (!cli_parse_int("vocab", "--size", argv[++i], VOCAB_N_SPECIAL, 10000000, &size)) return 2;
        } else if (i + 1 < argc && !strcmp(a, "--min-freq")) {
            if (!cli_parse_int("vocab", "--min-freq", argv[++i], 1, 1L << 40, &min_freq)) return 2;
        } else {
            fprintf(stderr, "vocab: unknown or incomplete option '%s' (try --help)\n", a);
            return 2;
        }
    }
    if (!out || !size || (!n_corpus && !o.name)) {
        fprintf(stderr, "vocab: --size N, --out FILE and --corpus FILES or --dataset NAME are required (try --help)\n");
        return 2;
    }
    vocab_learner vl;
    vocab_learner_init(&vl, lower);
    int rc = 0;
    double t0 = adp_now();
    for (int k = 0; k < n_corpus && !rc; k++)
        if (add_corpus_file(&vl, corpus[k]) != ADP_OK) {
            fprintf(stderr, "vocab: %s\n", adp_errmsg());
            rc = 1;
        }
    if (!rc && o.name) {
        dataset ds;
        if (dataset_load(&ds, &o, SPLIT_TRAIN) != ADP_OK) {
            fprintf(stderr, "vocab: %s\n", adp_errmsg());
            rc = 1;
        } else {
            for (size_t i = 0; i < ds.n && !rc; i++) {
                const example *ex = &ds.ex[i];
                if (vocab_learner_add(&vl, ex->text, strlen(ex->text)) != ADP_OK ||
                    (ex->pair && vocab_learner_add(&vl, ex->pair, strlen(ex->pair)) != ADP_OK)) {
                    fprintf(stderr, "vocab: %s train %s: %s\n", o.name, ex->id, adp_errmsg());
                    rc = 1;
                }
            }
            dataset_free(&ds);
        }
    }
    char **tokens = NULL;
    size_t n_tokens = 0, n_alpha = 0;
    if (!rc && vocab_learner_build(&vl, (size_t)size, min_freq, &tokens, &n_tokens, &n_alpha) != ADP_OK) {
        fprintf(stderr, "vocab: %s\n", adp_errmsg());
        rc = 1;
    }
    if (!rc && vocab_write(out, tokens, n_tokens) != ADP_OK) {
        fprintf(stderr, "vocab: %s\n", adp_errmsg());
        rc = 1;
    }
    if (!rc)
        fprintf(stderr,
                "vocab: %zu entries (%d special, %zu characters, %zu merged) from %zu texts, %zu words (%zu distinct), "
                "%s, %.2f s -> %s\n",
                n_tokens, VOCAB_N_SPECIAL, n_alpha, n_tokens - VOCAB_N_SPECIAL - n_alpha, vl.n_texts, vl.n_words,
                vl.words.n, lower ? "uncased" : "cased", adp_now() - t0, out);
    if (tokens) vocab_tokens_free(tokens, n_tokens);
    vocab_learner_free(&vl);
    return rc;
}
