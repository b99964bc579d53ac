/* cli.h: the subcommands of bin/adapler.  Each takes (argc, argv) with argv[0] = the
 * subcommand name, handles --help itself, and returns the process exit status.  To add a
 * subcommand: write cmd_<name>() in the folder it belongs to and add one row to the table
 * in engine/main.c. */
#ifndef ADP_CLI_H
#define ADP_CLI_H

typedef int (*cli_cmd_fn)(int argc, char **argv);

int cmd_predict(int argc, char **argv);  /* engine/cmd_predict.c */
int cmd_bench(int argc, char **argv);    /* engine/cmd_bench.c */
int cmd_eval(int argc, char **argv);     /* engine/cmd_eval.c */
int cmd_saliency(int argc, char **argv); /* engine/cmd_saliency.c */
int cmd_tokenize(int argc, char **argv); /* engine/cmd_tokenize.c */
int cmd_vocab(int argc, char **argv);    /* engine/cmd_vocab.c */
int cmd_data(int argc, char **argv);     /* engine/cmd_data.c */
int cmd_eraser(int argc, char **argv);   /* eraser/cmd_eraser.c */
int cmd_train(int argc, char **argv);    /* engine/cmd_train.c */
int cmd_train_adapler(int argc, char **argv); /* engine/adapler_fit.c (train --method adapler) */
int cmd_pretrain(int argc, char **argv); /* engine/cmd_pretrain.c */
int cmd_sweep(int argc, char **argv);    /* experiments/cmd_sweep.c */
int cmd_results(int argc, char **argv);  /* experiments/cmd_results.c */

/* Helpers shared by the subcommands. */
/* Parse a whole decimal integer in [lo, hi]; on failure print "<cmd>: <opt>: ..." and
 * return 0. */
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);
/* --weights f32|f16|bf16|i8 (model.h bert_model_use_weights): *fmt = FMT_F32, FMT_F16,
 * FMT_BF16 or FMT_I8; else print and return 0. */
int cli_parse_weights(const char *cmd, const char *s, int *fmt);
#define CLI_WEIGHTS_HELP                                                                       \
    "  --weights W     f32 (default), f16, bf16 or i8: the encoder's projections and pooler\n" \
    "                  rounded to IEEE half or to bfloat16 (half the bytes), or quantized to\n" \
    "                  int8 with one scale per output row (a quarter), and streamed as such;\n" \
    "                  sums stay fp32\n"

#endif
