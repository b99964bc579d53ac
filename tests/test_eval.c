/* test_eval.c: `adapler eval` with the dense path and AdapLeR on the planted task: its
 * figures must agree with each other and with the per-example file, and bad arguments
 * must be clear errors. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "flops.h"
#include "test.h"

static const char *bin(void) {
    const char *b = getenv("ADAPLER_BIN");
    return b ? b : "bin/adapler";
}

static cJSON *eval_json(const char *fmt_args, const char *dir) {
    if (test_sh("%s eval --model %s/m --dataset planted --planted-n 200 --threads 2 %s 2>&1 > %s/out.json", bin(), dir,
                fmt_args, dir) != 0) {
        test_fail(__FILE__, __LINE__, "eval %s failed: %s", fmt_args, test_sh_output());
        return NULL;
    }
    char path[4200], *buf = NULL;
    snprintf(path, sizeof path, "%s/out.json", dir);
    if (adp_read_file(path, &buf, NULL) != ADP_OK) return NULL;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    return j;
}

static double num(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

TEST(eval_figures_are_consistent) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --adapler --labels 2 --layers 3 --hidden 64 --heads 4 --inter 128",
                        dir) == 0);
    cJSON *dense = eval_json("--method none --repeats 1", dir);
    REQUIRE(dense);
    CHECK_NEAR(num(dense, "flops_speedup"), 1.0, 1e-12);
    cJSON *lt = cJSON_GetObjectItem(dense, "layer_tokens");
    REQUIRE(cJSON_GetArraySize(lt) == 3);
    for (int l = 0; l < 3; l++) CHECK_NEAR(cJSON_GetArrayItem(lt, l)->valuedouble, num(dense, "mean_length"), 1e-9);

    /* eta_scale 0 keeps every token: same predictions, FLOPs up by exactly the predictors' cost */
    cJSON *keep = eval_json("--method adapler --eta-scale 0 --repeats 1", dir);
    REQUIRE(keep);
    CHECK_NEAR(num(keep, "accuracy"), num(dense, "accuracy"), 1e-12);
    double cp = 2.0 * 32 * 64 + 2.0 * 32; /* per token per layer */
    double tokens = num(dense, "mean_length") * num(dense, "examples");
    CHECK_NEAR(num(keep, "gflops") - num(dense, "gflops"), 3 * tokens * cp * 1e-9, 1e-9);

    /* real pruning: per-example file agrees with the summary */
    char path[4200];
    snprintf(path, sizeof path, "--method adapler --eta-scale 0.5 --repeats 3 --batch 7 --examples %s/ex.jsonl", dir);
    cJSON *pr = eval_json(path, dir);
    REQUIRE(pr);
    CHECK(num(pr, "flops_speedup") > 1.05);
    CHECK(num(pr, "wall_speedup") > 0);
    cJSON *range = cJSON_GetObjectItem(pr, "wall_speedup_range");
    REQUIRE(cJSON_GetArraySize(range) == 2);
    CHECK(cJSON_GetArrayItem(range, 0)->valuedouble <= num(pr, "wall_speedup") + 1e-12);
    CHECK(cJSON_GetArrayItem(range, 1)->valuedouble >= num(pr, "wall_speedup") - 1e-12);
    bert_config cfg;
    snprintf(path, sizeof path, "%s/m/config.json", dir);
    REQUIRE(bert_config_load(&cfg, path) == ADP_OK);
    snprintf(path, sizeof path, "%s/ex.jsonl", dir);
    char *buf = NULL, *save = NULL;
    REQUIRE(adp_read_file(path, &buf, NULL) == ADP_OK);
    double sum_f = 0, sum_dense = 0, correct = 0, n = 0, tok0 = 0;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *e = cJSON_Parse(line);
        REQUIRE(e);
        cJSON *lt2 = cJSON_GetObjectItem(e, "layer_tokens"), *kept = cJSON_GetObjectItem(e, "kept");
        int n0 = cJSON_GetArrayItem(lt2, 0)->valueint;
        /* counts never grow, [CLS] is kept, kept positions are increasing */
        for (int l = 1; l < 3; l++) CHECK(cJSON_GetArrayItem(lt2, l)->valueint <= cJSON_GetArrayItem(lt2, l - 1)->valueint);
        CHECK(cJSON_GetArraySize(kept) == cJSON_GetArrayItem(lt2, 2)->valueint);
        CHECK(cJSON_GetArrayItem(kept, 0)->valueint == 0);
        for (int k = 1; k < cJSON_GetArraySize(kept); k++)
            CHECK(cJSON_GetArrayItem(kept, k)->valueint > cJSON_GetArrayItem(kept, k - 1)->valueint);
        /* the per-example FLOPs follow the documented formula, predictors included */
        int nl[3], ml[3];
        double f_cp = 0;
        for (int l = 0; l < 3; l++) nl[l] = ml[l] = cJSON_GetArrayItem(lt2, l)->valueint;
        /* the predictor before layer l scores the rows entering it: layer 0 sees the full length */
        (void)n0;
        sum_f += num(e, "flops");
        tok0 += n0;
        f_cp = num(e, "flops") - flops_sequence(&cfg, nl, ml);
        CHECK(f_cp > 0);
        correct += num(e, "label") == num(e, "pred");
        n++;
        cJSON_Delete(e);
    }
    free(buf);
    CHECK_NEAR(n, num(pr, "examples"), 0);
    CHECK_NEAR(correct / n, num(pr, "accuracy"), 1e-6);
    sum_dense = num(dense, "gflops_dense") * 1e9;
    CHECK_NEAR(sum_dense / sum_f, num(pr, "flops_speedup"), 1e-5);
    CHECK_NEAR(tok0 / n, cJSON_GetArrayItem(cJSON_GetObjectItem(pr, "layer_tokens"), 0)->valuedouble, 1e-3);
    bert_config_free(&cfg);
    cJSON_Delete(dense), cJSON_Delete(keep), cJSON_Delete(pr);
}

TEST(eval_rejects_bad_arguments) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --labels 2 --layers 1 --hidden 32 --heads 2 --inter 64", dir) == 0);
    CHECK(test_sh("%s eval --model %s/m --dataset planted --method magic", bin(), dir) == 1);
    CHECK(strstr(test_sh_output(), "unknown method 'magic'") != NULL);
    CHECK(test_sh("%s eval --model %s/m --dataset planted --method adapler", bin(), dir) == 1);
    CHECK(strstr(test_sh_output(), "has no AdapLeR predictors") != NULL);
    CHECK(test_sh("%s eval --model %s/m --dataset planted --eta-scale -1", bin(), dir) == 2);
    CHECK(strstr(test_sh_output(), "--eta-scale") != NULL);
    CHECK(test_sh("%s eval --model %s/m --dataset nosuch", bin(), dir) != 0);
    CHECK(test_sh("%s eval --model %s/m --dataset sst2 --split test", bin(), dir) == 1);
    CHECK(strstr(test_sh_output(), "no label") != NULL || strstr(test_sh_output(), "sst2") != NULL);
    CHECK(test_sh("%s eval --model %s/m --dataset hatexplain", bin(), dir) == 1);
    CHECK(strstr(test_sh_output(), "labels but the model has 2") != NULL);
    CHECK(test_sh("%s eval --dataset planted", bin()) == 2);
    CHECK(test_sh("%s eval --help", bin()) == 0);
    CHECK(strstr(test_sh_output(), "wall_speedup") != NULL);
}
