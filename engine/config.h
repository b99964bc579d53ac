/* config.h: a BERT model's hyper-parameters, read from and written to Hugging Face's
 * config.json. */
#ifndef ADP_CONFIG_H
#define ADP_CONFIG_H

#define BERT_MAX_LABELS 64

typedef struct {
    int vocab_size;
    int hidden;      /* hidden_size, H */
    int layers;      /* num_hidden_layers, L */
    int heads;       /* num_attention_heads, A; H % A == 0 */
    int inter;       /* intermediate_size, I */
    int max_pos;     /* max_position_embeddings */
    int type_vocab;  /* type_vocab_size */
    int num_labels;  /* classifier outputs, C */
    int pad_token_id;
    float ln_eps;    /* layer_norm_eps */
    float init_range;  /* initializer_range */
    float hidden_dropout, attn_dropout;
    char *labels[BERT_MAX_LABELS]; /* id2label names (NULL where absent) */
} bert_config;

/* Read config.json.  Required: vocab_size, hidden_size, num_hidden_layers,
 * num_attention_heads, intermediate_size, max_position_embeddings.  Defaults follow
 * transformers' BertConfig (type_vocab_size 2, layer_norm_eps 1e-12, num_labels 2 or the
 * size of id2label).  hidden_act must be "gelu" (exact erf GELU). */
int bert_config_load(bert_config *c, const char *path);
int bert_config_save(const bert_config *c, const char *path);
/* Fill defaults for the given dims (for random models and training from scratch). */
void bert_config_init(bert_config *c, int vocab, int hidden, int layers, int heads, int inter, int max_pos,
                      int num_labels);
/* Check that the dims are usable; message names the offending field. */
int bert_config_validate(const bert_config *c, const char *where);
void bert_config_free(bert_config *c);
void bert_config_copy(bert_config *dst, const bert_config *src);

#endif
