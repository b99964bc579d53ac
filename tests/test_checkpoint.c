/* test_checkpoint.c: loading and saving checkpoints in Hugging Face layout, and every way a
 * checkpoint can be broken giving a one-line error that names the problem. */
#include <string.h>

#include "bert.h"
#include "common.h"
#include "test.h"

static void expect_load_error(const char *dir, const char *name, const char *want1, const char *want2) {
    char path[4200];
    snprintf(path, sizeof path, "%s/bad/%s", dir, name);
    bert_model m;
    int rc = bert_model_load(&m, path, 0, NULL);
    CHECK_MSG(rc == ADP_ERR, "%s: loaded without error", name);
    if (rc == ADP_OK) {
        bert_model_free(&m);
        return;
    }
    const char *msg = adp_errmsg();
    if (test_verbose()) fprintf(stderr, "    %-28s -> %s\n", name, msg);
    CHECK_MSG(strchr(msg, '\n') == NULL, "%s: message is not one line: %s", name, msg);
    CHECK_MSG(strstr(msg, want1) != NULL, "%s: message lacks '%s': %s", name, want1, msg);
    if (want2) CHECK_MSG(strstr(msg, want2) != NULL, "%s: message lacks '%s': %s", name, want2, msg);
}

TEST(checkpoint_bad_files_are_clear_errors) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/good --layers 2 --hidden 64 --heads 4 --inter 128", dir) == 0);
    REQUIRE(test_python("bad_checkpoints.py", "%s/good %s/bad", dir, dir) == 0);
    const char *KEY = "layer.0.attention.self.key.weight";
    expect_load_error(dir, "truncated", "model.safetensors", "data section");
    expect_load_error(dir, "tiny_file", "truncated", NULL);
    expect_load_error(dir, "header_past_end", "past the end", NULL);
    expect_load_error(dir, "bad_json", "not a valid JSON", NULL);
    expect_load_error(dir, "offsets_outside", KEY, "outside the data section");
    expect_load_error(dir, "overlap", "overlap", NULL);
    expect_load_error(dir, "wrong_shape", KEY, "expected [64, 64]");
    expect_load_error(dir, "missing_tensor", "missing tensor", KEY);
    expect_load_error(dir, "unknown_dtype", "unknown dtype", "F8_E4M3");
    expect_load_error(dir, "bytes_disagree_with_dtype", KEY, "F16");
    expect_load_error(dir, "config_disagrees", "intermediate.dense.weight", "expected [136, 64]");
    expect_load_error(dir, "config_not_json", "config.json", "JSON");
    expect_load_error(dir, "config_missing_field", "config.json", "num_attention_heads");
    expect_load_error(dir, "config_heads_do_not_divide", "config.json", "not a multiple");
    bert_model m;
    char path[4200];
    snprintf(path, sizeof path, "%s/nowhere", dir);
    CHECK(bert_model_load(&m, path, 0, NULL) == ADP_ERR);
    CHECK(strstr(adp_errmsg(), "nowhere/config.json") != NULL);
}

TEST(checkpoint_save_roundtrip_and_pytorch_reads_it) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py",
                        "make --out %s/orig --layers 2 --hidden 64 --heads 4 --inter 96 --ln-style gamma --no-prefix",
                        dir) == 0);
    char in[4200], out[4200];
    snprintf(in, sizeof in, "%s/orig", dir);
    snprintf(out, sizeof out, "%s/saved", dir);
    bert_model m, m2;
    REQUIRE(bert_model_load(&m, in, 0, NULL) == ADP_OK);
    REQUIRE(m.vocab_path != NULL);
    REQUIRE(bert_model_save(&m, out, NULL, 0, m.vocab_path) == ADP_OK);
    REQUIRE(bert_model_load(&m2, out, 0, NULL) == ADP_OK);
    CHECK_INT(m2.n_params, m.n_params);
    CHECK(memcmp(m.arena, m2.arena, m.n_params * sizeof(float)) == 0);
    CHECK_INT(m2.cfg.num_labels, 3);
    CHECK_STR(m2.cfg.labels[2], "L2");
    CHECK(m2.vocab_path != NULL);
    /* PyTorch loads the saved tensors by their canonical names and finds them identical */
    CHECK(test_python("ref_bert.py", "check-saved --model %s --like %s", out, in) == 0);
    bert_model_free(&m);
    bert_model_free(&m2);
}

TEST(checkpoint_backbone_without_head) {
    /* A backbone (no pooler/classifier) loads only when the head is optional. */
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --layers 1 --hidden 32 --heads 2 --inter 64", dir) == 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/m", dir);
    bert_model m;
    REQUIRE(bert_model_load(&m, path, 0, NULL) == ADP_OK);
    /* rewrite without pooler and classifier */
    bert_param *ps;
    int n = bert_param_list(&m.cfg, &m.w, &ps);
    st_writer w;
    st_writer_init(&w);
    for (int i = 0; i < n; i++)
        if (ps[i].group == PARAM_CORE) st_writer_add(&w, ps[i].name, ST_F32, ps[i].ptr, ps[i].ndim, ps[i].shape);
    snprintf(path, sizeof path, "%s/m/model.safetensors", dir);
    REQUIRE(st_writer_finish(&w, path) == ADP_OK);
    free(ps);
    bert_model m2;
    snprintf(path, sizeof path, "%s/m", dir);
    CHECK(bert_model_load(&m2, path, 0, NULL) == ADP_ERR);
    CHECK(strstr(adp_errmsg(), "bert.pooler.dense.weight") != NULL);
    REQUIRE(bert_model_load(&m2, path, BERT_LOAD_HEAD_OPTIONAL, NULL) == ADP_OK);
    CHECK(memcmp(m.w.word_emb, m2.w.word_emb, sizeof(float) * 32 * 300) == 0);
    bert_model_free(&m);
    bert_model_free(&m2);
}
