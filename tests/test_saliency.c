/* test_saliency.c: gradient x input saliency against PyTorch autograd, and the cache of
 * `adapler saliency` (reused while valid, recomputed when the model changes). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "saliency.h"
#include "test.h"

static const char *bin(void) {
    const char *b = getenv("ADAPLER_BIN");
    return b ? b : "bin/adapler";
}

TEST(saliency_matches_pytorch) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --labels 3 --layers 2 --hidden 48 --heads 4 --inter 96", dir) == 0);
    REQUIRE(test_python("ref_saliency.py", "--model %s/m --out %s/s.safetensors --lengths 1,9,40,3,77", dir, dir) == 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/m", dir);
    bert_model m;
    REQUIRE(bert_model_load(&m, path, 0, NULL) == ADP_OK);
    st_file f;
    snprintf(path, sizeof path, "%s/s.safetensors", dir);
    REQUIRE(st_open(&f, path) == ADP_OK);
    const st_tensor *ti = st_find(&f, "input_ids"), *to = st_find(&f, "offsets"), *tc = st_find(&f, "cls");
    REQUIRE(ti && to && tc);
    int64_t T = st_numel(ti), no = st_numel(to);
    int32_t *ids = mallocCheck(4 * T), *off = mallocCheck(4 * no), *cls = mallocCheck(4 * (no - 1));
    REQUIRE(st_read_i32(&f, ti, ids, T) == ADP_OK && st_read_i32(&f, to, off, no) == ADP_OK &&
            st_read_i32(&f, tc, cls, no - 1) == ADP_OK);
    packed_tokens pk = {.n_seq = (size_t)no - 1, .n_tok = (size_t)T, .ids = ids};
    pk.type_ids = callocCheck((size_t)T, sizeof(int32_t));
    pk.seq_off = mallocCheck(sizeof(size_t) * (size_t)no);
    for (int i = 0; i < no; i++) pk.seq_off[i] = (size_t)off[i];
    float *got = mallocCheck(sizeof(float) * T), *want = mallocCheck(sizeof(float) * T);
    int64_t shape[1] = {T};
    REQUIRE(st_read_f32(&f, st_find(&f, "saliency"), want, shape, 1) == ADP_OK);
    for (int batch = 1; batch <= 5; batch += 4) { /* one sequence at a time, and all packed */
        memset(got, 0, sizeof(float) * T);
        REQUIRE(saliency_compute(got, &m, &pk, cls, batch) == ADP_OK);
        double scale = 0;
        for (int64_t t = 0; t < T; t++) scale = fmax(scale, want[t]);
        test_compare(batch == 1 ? "saliency (batch 1)" : "saliency (packed)", got, want, (size_t)T, 1e-4 * scale);
    }
    free(got), free(want), free(ids), free(off), free(cls), free(pk.type_ids), free(pk.seq_off);
    st_close(&f);
    bert_model_free(&m);
}

static const char *status_of(const char *out) {
    static char buf[32];
    cJSON *j = cJSON_Parse(out);
    const cJSON *s = j ? cJSON_GetObjectItem(j, "status") : NULL;
    snprintf(buf, sizeof buf, "%s", cJSON_IsString(s) ? s->valuestring : "?");
    cJSON_Delete(j);
    return buf;
}

TEST(saliency_cache_reused_until_the_model_changes) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --labels 2 --layers 1 --hidden 32 --heads 2 --inter 64", dir) == 0);
    const char *args = "--dataset planted --planted-n 40 --max-len 32 --threads 2";
    REQUIRE(test_sh("%s saliency --model %s/m %s 2>/dev/null", bin(), dir, args) == 0);
    CHECK_STR(status_of(test_sh_output()), "computed");
    REQUIRE(test_sh("%s saliency --model %s/m %s 2>/dev/null", bin(), dir, args) == 0);
    CHECK_STR(status_of(test_sh_output()), "cached");
    /* another max length is another cache; another model invalidates */
    REQUIRE(test_sh("%s saliency --model %s/m --dataset planted --planted-n 40 --max-len 16 2>/dev/null", bin(), dir) == 0);
    CHECK_STR(status_of(test_sh_output()), "computed");
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --labels 2 --layers 1 --hidden 32 --heads 2 --inter 64 --seed 9",
                        dir) == 0);
    REQUIRE(test_sh("%s saliency --model %s/m %s", bin(), dir, args) == 0);
    CHECK(strstr(test_sh_output(), "stale: model_hash") != NULL);
    CHECK(strstr(test_sh_output(), "\"status\": \"computed\"") != NULL);
    /* a different split size (other planted-n) is a stale cache too */
    REQUIRE(test_sh("%s saliency --model %s/m --dataset planted --planted-n 48 --max-len 32", bin(), dir) == 0);
    CHECK(strstr(test_sh_output(), "stale") != NULL);
    CHECK(test_sh("%s saliency --model %s/m --dataset planted --class other", bin(), dir) == 2);
    CHECK(test_sh("%s saliency --model %s/m --dataset sst2 --split test", bin(), dir) == 1);
    CHECK(strstr(test_sh_output(), "no label") != NULL);
}
