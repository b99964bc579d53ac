/* test_train_cli.c: `adapler train` and `adapler pretrain` end to end on the generated
 * planted-rationale task (no data files): the loss goes down and the task is learned, the
 * saved checkpoint reloads and scores what the run reported, two runs with the same seed and
 * threads give the same bytes, a pretrained backbone feeds fine-tuning, bad input is one
 * line of error. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "common.h"
#include "dataset.h"
#include "test.h"
#include "wordpiece.h"

static const char *bin(void) {
    const char *b = getenv("ADAPLER_BIN");
    return b ? b : "bin/adapler";
}

#define PLANTED "--dataset planted --planted-n 400 --planted-len 16:32"
#define SMALL_MODEL "--layers 1 --hidden 64 --heads 2 --inter 128 --vocab-size 1000 --batch 16 --threads 2"

/* The last line of the last command's output that parses as a JSON object. */
static cJSON *last_json(const char *text) {
    cJSON *found = NULL;
    const char *p = text;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n && p[0] == '{') {
            char *line = strndup(p, n);
            cJSON *j = cJSON_Parse(line);
            free(line);
            if (j) cJSON_Delete(found), found = j;
        }
        p = nl ? nl + 1 : NULL;
    }
    return found;
}

static double num(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Dev accuracy of a saved checkpoint, recomputed with the inference engine. */
static double reload_accuracy(const char *dir) {
    bert_model m;
    if (bert_model_load(&m, dir, 0, NULL) != ADP_OK) return -1;
    dataset_opts o;
    dataset_opts_init(&o);
    o.name = "planted";
    o.planted_n[SPLIT_TRAIN] = 400, o.planted_n[SPLIT_DEV] = o.planted_n[SPLIT_TEST] = 100;
    o.planted_min = 16, o.planted_max = 32;
    dataset ds;
    wordpiece wp;
    packed_tokens pk;
    if (dataset_load(&ds, &o, SPLIT_DEV) != ADP_OK || wordpiece_load(&wp, m.vocab_path, 1) != ADP_OK ||
        dataset_pack(&pk, &ds, &wp, 128) != ADP_OK)
        return -1;
    bert_ctx ctx;
    bert_ctx_init(&ctx);
    int *off = mallocCheck(sizeof(int) * (pk.n_seq + 1));
    for (size_t s = 0; s <= pk.n_seq; s++) off[s] = (int)pk.seq_off[s];
    bert_batch b = {.n_seq = (int)pk.n_seq, .ids = pk.ids, .types = pk.type_ids, .off = off};
    const bert_result *r;
    double acc = -1;
    if (bert_forward(&ctx, &m, &b, NULL, &r) == ADP_OK) {
        int right = 0;
        for (size_t s = 0; s < pk.n_seq; s++) right += (r->logits[2 * s + 1] > r->logits[2 * s]) == pk.labels[s];
        acc = (double)right / (double)pk.n_seq;
    }
    free(off);
    bert_ctx_free(&ctx);
    packed_tokens_free(&pk);
    wordpiece_free(&wp);
    dataset_free(&ds);
    bert_model_free(&m);
    return acc;
}

TEST(train_loss_goes_down_and_task_is_learned) {
    const char *dir = test_tmpdir();
    REQUIRE(test_sh("%s train %s %s --out %s/m --epochs 4 --lr 2e-3 --seed 3", bin(), PLANTED, SMALL_MODEL, dir) == 0);
    cJSON *j = last_json(test_sh_output());
    REQUIRE(j);
    double acc = num(j, "dev_accuracy");
    CHECK_MSG(acc >= 0.95, "dev accuracy %g", acc);
    CHECK(num(j, "tokens_per_s") > 0);
    cJSON_Delete(j);
    /* train.json: per-epoch history; the training loss falls */
    char path[4096], *text = NULL;
    snprintf(path, sizeof path, "%s/m/train.json", dir);
    REQUIRE(adp_read_file(path, &text, NULL) == ADP_OK);
    cJSON *t = cJSON_Parse(text);
    free(text);
    REQUIRE(t);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(t, "history");
    REQUIRE(cJSON_GetArraySize(h) == 4);
    double first = num(cJSON_GetArrayItem(h, 0), "train_loss"), last = num(cJSON_GetArrayItem(h, 3), "train_loss");
    CHECK_MSG(first > 0.5 && last < 0.5 * first, "train loss %g -> %g", first, last);
    cJSON_Delete(t);
    /* the saved best checkpoint scores what the run reported */
    snprintf(path, sizeof path, "%s/m", dir);
    CHECK_NEAR(reload_accuracy(path), acc, 1e-9);
}

TEST(train_is_deterministic) {
    const char *dir = test_tmpdir();
    for (int k = 0; k < 2; k++)
        REQUIRE(test_sh("%s train %s %s --out %s/run%d --epochs 2 --lr 1e-3 --seed 5", bin(), PLANTED, SMALL_MODEL, dir, k) == 0);
    CHECK(test_sh("cmp %s/run0/model.safetensors %s/run1/model.safetensors", dir, dir) == 0);
    REQUIRE(test_sh("%s train %s %s --out %s/run2 --epochs 2 --lr 1e-3 --seed 6", bin(), PLANTED, SMALL_MODEL, dir) == 0);
    CHECK(test_sh("cmp -s %s/run0/model.safetensors %s/run2/model.safetensors", dir, dir) != 0);
}

TEST(pretrain_then_finetune) {
    const char *dir = test_tmpdir();
    REQUIRE(test_sh("%s pretrain --datasets planted --planted-n 1000 --planted-len 16:32 --out %s/pt --layers 1 --hidden 64 "
                    "--heads 2 --inter 128 --vocab-size 1000 --max-len 64 --batch-tokens 1024 --epochs 6 --lr 3e-3 --threads 2",
                    bin(), dir) == 0);
    cJSON *j = last_json(test_sh_output());
    REQUIRE(j);
    /* held-out masked tokens: far better than chance (1/1000), loss well below uniform */
    CHECK_MSG(num(j, "mlm_accuracy") > 0.02, "MLM accuracy %g", num(j, "mlm_accuracy"));
    CHECK_MSG(num(j, "mlm_loss") < log(1000.0) - 0.5, "MLM loss %g", num(j, "mlm_loss"));
    cJSON_Delete(j);
    char path[4096], *text = NULL;
    snprintf(path, sizeof path, "%s/pt/pretrain.json", dir);
    REQUIRE(adp_read_file(path, &text, NULL) == ADP_OK);
    cJSON *t = cJSON_Parse(text);
    free(text);
    REQUIRE(t);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(t, "history");
    REQUIRE(cJSON_GetArraySize(h) == 6);
    CHECK(num(cJSON_GetArrayItem(h, 5), "train_mlm_loss") < num(cJSON_GetArrayItem(h, 0), "train_mlm_loss") - 0.3);
    cJSON_Delete(t);
    /* the backbone: HF BertForMaskedLM layout, MLM head present, no classifier */
    snprintf(path, sizeof path, "%s/pt/model.safetensors", dir);
    st_file st;
    REQUIRE(st_open(&st, path) == ADP_OK);
    CHECK(st_find(&st, "cls.predictions.transform.dense.weight") && st_find(&st, "cls.predictions.bias"));
    CHECK(!st_find(&st, "classifier.weight") && !st_find(&st, "bert.pooler.dense.weight"));
    st_close(&st);
    snprintf(path, sizeof path, "%s/pt", dir);
    bert_model m;
    CHECK(bert_model_load(&m, path, 0, NULL) != ADP_OK); /* a backbone is not a classifier */
    REQUIRE(bert_model_load(&m, path, BERT_LOAD_HEAD_OPTIONAL, NULL) == ADP_OK);
    bert_model_free(&m);
    /* fine-tuning from it */
    REQUIRE(test_sh("%s train %s --out %s/ft --init %s/pt --epochs 2 --lr 2e-3 --batch 16 --threads 2", bin(), PLANTED, dir,
                    dir) == 0);
    CHECK(strstr(test_sh_output(), "new classifier") != NULL);
    j = last_json(test_sh_output());
    REQUIRE(j);
    CHECK(num(j, "dev_accuracy") >= 0.9);
    cJSON_Delete(j);
}

TEST(train_bad_input_is_one_line) {
    const char *dir = test_tmpdir();
    CHECK(test_sh("%s train --dataset planted", bin()) == 2);
    CHECK(strstr(test_sh_output(), "--out") != NULL);
    CHECK(test_sh("%s train %s --out %s/x --config huge", bin(), PLANTED, dir) == 2);
    CHECK(strstr(test_sh_output(), "huge") != NULL);
    CHECK(test_sh("%s train %s --out %s/x --init %s/nowhere", bin(), PLANTED, dir, dir) == 1);
    CHECK(strstr(test_sh_output(), "nowhere") != NULL);
    CHECK(test_sh("%s train %s --out %s/x --lr -1", bin(), PLANTED, dir) == 2);
    CHECK(test_sh("%s pretrain --out %s/y --datasets nosuchset", bin(), dir) == 1);
    CHECK(strstr(test_sh_output(), "nosuchset") != NULL);
    /* each failure is a single line */
    CHECK(test_sh("%s train %s --out %s/x --init %s/nowhere 2>&1 | wc -l | grep -qx 1", bin(), PLANTED, dir, dir) == 0);
}
