/* config.c: config.json <-> bert_config, with cJSON.
 *
 * config.json is Hugging Face's BertConfig serialised as a JSON object.  We read the keys
 * listed in config.h, accept and ignore every other key (architectures, torch_dtype, ...),
 * and write a file that transformers' BertConfig.from_pretrained() reads back. */
#include "config.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "common.h"

void bert_config_init(bert_config *c, int vocab, int hidden, int layers, int heads, int inter, int max_pos,
                      int num_labels) {
    memset(c, 0, sizeof *c);
    c->vocab_size = vocab;
    c->hidden = hidden;
    c->layers = layers;
    c->heads = heads;
    c->inter = inter;
    c->max_pos = max_pos;
    c->type_vocab = 2;
    c->num_labels = num_labels;
    c->ln_eps = 1e-12f;
    c->init_range = 0.02f;
    c->hidden_dropout = 0.1f;
    c->attn_dropout = 0.1f;
}

void bert_config_free(bert_config *c) {
    for (int i = 0; i < BERT_MAX_LABELS; i++) free(c->labels[i]), c->labels[i] = NULL;
}

void bert_config_copy(bert_config *dst, const bert_config *src) {
    *dst = *src;
    for (int i = 0; i < BERT_MAX_LABELS; i++) dst->labels[i] = src->labels[i] ? strdupCheck(src->labels[i]) : NULL;
}

int bert_config_validate(const bert_config *c, const char *where) {
#define POS(f, name)                                                                       \
    if (c->f <= 0 || c->f > 1000000) return adp_seterr("%s: %s must be a positive integer, got %d", where, name, c->f)
    POS(vocab_size, "vocab_size");
    POS(hidden, "hidden_size");
    POS(layers, "num_hidden_layers");
    POS(heads, "num_attention_heads");
    POS(inter, "intermediate_size");
    POS(max_pos, "max_position_embeddings");
    POS(type_vocab, "type_vocab_size");
    POS(num_labels, "num_labels");
#undef POS
    if (c->num_labels > BERT_MAX_LABELS)
        return adp_seterr("%s: num_labels %d exceeds the supported %d", where, c->num_labels, BERT_MAX_LABELS);
    if (c->hidden % c->heads != 0)
        return adp_seterr("%s: hidden_size %d is not a multiple of num_attention_heads %d", where, c->hidden, c->heads);
    if (!(c->ln_eps > 0 && c->ln_eps < 1)) return adp_seterr("%s: layer_norm_eps %g out of range", where, c->ln_eps);
    return ADP_OK;
}

static int get_int(const cJSON *root, const char *key, int *out, int required, const char *path) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j || cJSON_IsNull(j)) return required ? adp_seterr("%s: missing \"%s\"", path, key) : ADP_OK;
    if (!cJSON_IsNumber(j) || j->valuedouble != (double)(int)j->valuedouble)
        return adp_seterr("%s: \"%s\" must be an integer", path, key);
    *out = (int)j->valuedouble;
    return ADP_OK;
}

static int get_float(const cJSON *root, const char *key, float *out, const char *path) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j || cJSON_IsNull(j)) return ADP_OK;
    if (!cJSON_IsNumber(j)) return adp_seterr("%s: \"%s\" must be a number", path, key);
    *out = (float)j->valuedouble;
    return ADP_OK;
}

int bert_config_load(bert_config *c, const char *path) {
    char *text = NULL;
    if (adp_read_file(path, &text, NULL) != ADP_OK) return ADP_ERR;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return adp_seterr("%s: not a valid JSON object", path);
    }
    bert_config_init(c, 0, 0, 0, 0, 0, 0, 2);
    int rc = ADP_OK;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (mt && cJSON_IsString(mt) && strcmp(mt->valuestring, "bert") != 0)
        rc = adp_seterr("%s: model_type \"%s\" is not supported (expected \"bert\")", path, mt->valuestring);
    if (!rc) rc = get_int(root, "vocab_size", &c->vocab_size, 1, path);
    if (!rc) rc = get_int(root, "hidden_size", &c->hidden, 1, path);
    if (!rc) rc = get_int(root, "num_hidden_layers", &c->layers, 1, path);
    if (!rc) rc = get_int(root, "num_attention_heads", &c->heads, 1, path);
    if (!rc) rc = get_int(root, "intermediate_size", &c->inter, 1, path);
    if (!rc) rc = get_int(root, "max_position_embeddings", &c->max_pos, 1, path);
    if (!rc) rc = get_int(root, "type_vocab_size", &c->type_vocab, 0, path);
    if (!rc) rc = get_int(root, "pad_token_id", &c->pad_token_id, 0, path);
    if (!rc) rc = get_float(root, "layer_norm_eps", &c->ln_eps, path);
    if (!rc) rc = get_float(root, "initializer_range", &c->init_range, path);
    if (!rc) rc = get_float(root, "hidden_dropout_prob", &c->hidden_dropout, path);
    if (!rc) rc = get_float(root, "attention_probs_dropout_prob", &c->attn_dropout, path);
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (!rc && act && (!cJSON_IsString(act) || strcmp(act->valuestring, "gelu") != 0))
        rc = adp_seterr("%s: hidden_act must be \"gelu\" (exact erf GELU), got %s", path,
                        cJSON_IsString(act) ? act->valuestring : "a non-string");
    const cJSON *pe = cJSON_GetObjectItemCaseSensitive(root, "position_embedding_type");
    if (!rc && pe && cJSON_IsString(pe) && strcmp(pe->valuestring, "absolute") != 0)
        rc = adp_seterr("%s: position_embedding_type \"%s\" is not supported", path, pe->valuestring);
    /* Labels: id2label {"0": "NEG", ...} sets num_labels; an explicit num_labels wins. */
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    if (!rc && cJSON_IsObject(id2label)) {
        int n = 0;
        for (const cJSON *e = id2label->child; e && !rc; e = e->next) {
            char *end;
            long k = strtol(e->string, &end, 10);
            if (*end || k < 0 || k >= BERT_MAX_LABELS || !cJSON_IsString(e))
                rc = adp_seterr("%s: id2label entry \"%s\" is not index -> name", path, e->string);
            else {
                free(c->labels[k]);
                c->labels[k] = strdupCheck(e->valuestring);
                if (k + 1 > n) n = (int)k + 1;
            }
        }
        if (!rc && n > 0) c->num_labels = n;
    }
    if (!rc) rc = get_int(root, "num_labels", &c->num_labels, 0, path);
    cJSON_Delete(root);
    if (!rc) rc = bert_config_validate(c, path);
    if (rc) bert_config_free(c);
    return rc;
}

int bert_config_save(const bert_config *c, const char *path) {
    cJSON *r = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(r, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("BertForSequenceClassification"));
    cJSON_AddStringToObject(r, "model_type", "bert");
    cJSON_AddNumberToObject(r, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(r, "hidden_size", c->hidden);
    cJSON_AddNumberToObject(r, "num_hidden_layers", c->layers);
    cJSON_AddNumberToObject(r, "num_attention_heads", c->heads);
    cJSON_AddNumberToObject(r, "intermediate_size", c->inter);
    cJSON_AddStringToObject(r, "hidden_act", "gelu");
    cJSON_AddNumberToObject(r, "hidden_dropout_prob", c->hidden_dropout);
    cJSON_AddNumberToObject(r, "attention_probs_dropout_prob", c->attn_dropout);
    cJSON_AddNumberToObject(r, "max_position_embeddings", c->max_pos);
    cJSON_AddNumberToObject(r, "type_vocab_size", c->type_vocab);
    cJSON_AddNumberToObject(r, "initializer_range", c->init_range);
    cJSON_AddNumberToObject(r, "layer_norm_eps", c->ln_eps);
    cJSON_AddNumberToObject(r, "pad_token_id", c->pad_token_id);
    cJSON_AddStringToObject(r, "position_embedding_type", "absolute");
    cJSON_AddNumberToObject(r, "num_labels", c->num_labels);
    cJSON *i2l = cJSON_AddObjectToObject(r, "id2label");
    cJSON *l2i = cJSON_AddObjectToObject(r, "label2id");
    for (int k = 0; k < c->num_labels; k++) {
        char key[32], def[32];
        snprintf(key, sizeof key, "%d", k);
        snprintf(def, sizeof def, "LABEL_%d", k);
        const char *name = c->labels[k] ? c->labels[k] : def;
        cJSON_AddStringToObject(i2l, key, name);
        cJSON_AddNumberToObject(l2i, name, k);
    }
    char *s = cJSON_Print(r);
    cJSON_Delete(r);
    size_t n = strlen(s);
    char *buf = mallocCheck(n + 2);
    memcpy(buf, s, n);
    buf[n] = '\n';
    cJSON_free(s);
    int rc = adp_write_file_atomic(path, buf, n + 1);
    free(buf);
    return rc;
}
