/* main.c: bin/adapler, a git-style front end.  `adapler <command> [options]`; every
 * command answers --help.  Only this file and the cmd_*.c files print and exit. */
#include <stdio.h>
#include <malloc.h>
#include <string.h>

#include "cli.h"
#include "common.h"

typedef struct {
    const char *name;
    cli_cmd_fn fn;
    const char *summary;
} command;

static const command COMMANDS[] = {
    {"predict", cmd_predict, "run a classifier on JSONL input, JSONL out"},
    {"eval", cmd_eval, "accuracy, FLOPs and measured wall-clock speedup of a pruning method"},
    {"saliency", cmd_saliency, "gradient x input saliency targets of a split, cached by the model"},
    {"bench", cmd_bench, "time the forward pass of a random model of a given shape"},
    {"tokenize", cmd_tokenize, "WordPiece-encode JSON lines of text (BERT's tokenizer)"},
    {"vocab", cmd_vocab, "learn a WordPiece vocabulary from text"},
    {"data", cmd_data, "dataset statistics, tokenizer benchmark, JSON-lines export"},
    {"eraser", cmd_eraser, "ERASER rationale data: validate it, score results as metrics.py"},
    {"train", cmd_train, "fine-tune a sequence classifier on a dataset (or time training steps)"},
    {"pretrain", cmd_pretrain, "masked-language-model pretraining of a BERT on the datasets' text"},
    {"sweep", cmd_sweep, "run a sweep file's cells in parallel into the results database (resumable)"},
    {"results", cmd_results, "results database: merge shards, create or migrate, print the schema"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: adapler <command> [options]   (adapler <command> --help for details)\n\n"
               "Adaptive length reduction for BERT encoders, in C.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
}

int main(int argc, char **argv) {
    adp_blas_fix_coretype(argv);
    /* Keep freed memory in the process: the training step frees and re-allocates partial-sum
     * buffers of 64 KB-1 MB, and glibc returned them to the kernel each time, which then
     * zeroed fresh pages on every step (clear_page was 3.6% of a training step's time). */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (COMMANDS[i].fn && !strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "adapler: unknown command '%s' (try adapler --help)\n", argv[1]);
    return 2;
}
