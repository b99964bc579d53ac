/* test_adapler_e2e.c: AdapLeR end to end on the planted-rationale task, where the right
 * tokens are known: fine-tune a tiny model, train AdapLeR on it, and require a point of its
 * --eta-scale curve that keeps the planted words to the last layer (recall >= 0.95) while
 * cutting FLOPs at least 3x and losing at most one point of dev accuracy. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "safetensors.h"
#include "test.h"

static const char *bin(void) {
    const char *b = getenv("ADAPLER_BIN");
    return b ? b : "bin/adapler";
}

static double last_of(const cJSON *arr) {
    int n = cJSON_GetArraySize(arr);
    return n ? cJSON_GetArrayItem(arr, n - 1)->valuedouble : -1;
}

/* The small planted task of the tests below, and a tiny model fine-tuned on it in DIR/ft. */
static const char *const planted600 = "--dataset planted --planted-n 600 --threads 2";

static int finetune_planted600(const char *dir) {
    return test_sh("OMP_WAIT_POLICY=PASSIVE %s train %s --config tiny --epochs 2 --lr 1e-3 --vocab-size 3000 "
                   "--out %s/ft > /dev/null 2>&1",
                   bin(), planted600, dir);
}

/* DIR/ad/train.json parsed, or NULL */
static cJSON *adapler_train_json(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/ad/train.json", dir);
    size_t n;
    char *txt = NULL;
    if (adp_read_file(path, &txt, &n) != ADP_OK) return NULL;
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    return j;
}

TEST(adapler_keeps_planted_words_and_cuts_flops) {
    const char *dir = test_tmpdir();
    const char *data = "--dataset planted --planted-n 1000 --threads 2";
    REQUIRE(test_sh("OMP_WAIT_POLICY=PASSIVE %s train %s --config tiny --epochs 2 --lr 1e-3 --vocab-size 3000 "
                    "--out %s/ft > %s/ft.json",
                    bin(), data, dir, dir) == 0);
    REQUIRE(test_sh("OMP_WAIT_POLICY=PASSIVE %s train --method adapler --init %s/ft %s --gamma 0.1 --phi 0.05 --lr 5e-4 "
                    "--eta-lr 5e-3 --epochs 4 --out %s/ad > %s/ad.json",
                    bin(), dir, data, dir, dir) == 0);
    REQUIRE(test_sh("%s eval --model %s/ft %s --method none --repeats 0 2>/dev/null", bin(), dir, data) == 0);
    cJSON *dense = cJSON_Parse(test_sh_output());
    REQUIRE(dense);
    double acc0 = cJSON_GetObjectItem(dense, "accuracy")->valuedouble;
    CHECK(acc0 >= 0.97); /* the task is learnable: the cue words decide the label */
    REQUIRE(test_sh("%s eval --model %s/ad %s --method adapler --eta-scale 0.2,0.3,0.4,0.5,0.7,1 --repeats 0 2>/dev/null",
                    bin(), dir, data) == 0);
    char *out = strdupCheck(test_sh_output()), *save = NULL;
    int points = 0, good = 0;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(line);
        if (!j) continue;
        double acc = cJSON_GetObjectItem(j, "accuracy")->valuedouble;
        double speed = cJSON_GetObjectItem(j, "flops_speedup")->valuedouble;
        cJSON *er = cJSON_GetObjectItem(j, "eraser");
        REQUIRE(er);
        double tpr = last_of(cJSON_GetObjectItem(er, "tpr")), fpr = last_of(cJSON_GetObjectItem(er, "fpr"));
        if (test_verbose())
            fprintf(stderr, "    %s: accuracy %.4f (dense %.4f), FLOPs %.2fx, recall %.3f, FPR %.3f\n",
                    cJSON_GetObjectItem(j, "knob")->valuestring, acc, acc0, speed, tpr, fpr);
        good += acc >= acc0 - 0.01 && speed >= 3.0 && tpr >= 0.95;
        points++;
        cJSON_Delete(j);
    }
    CHECK_INT(points, 6);
    CHECK_MSG(good > 0, "no point of the curve keeps >= 95%% of the planted words at >= 3x FLOPs within a point");
    free(out);
    cJSON_Delete(dense);
}

/* --select-scales: each epoch is scored at several eta scales, the kept epoch is the one
 * with the largest FLOPs speedup within tolerance at any of them, and train.json's
 * operating point (eta_scale, dev_accuracy, flops_speedup) is what `eval` measures on the
 * saved model at that scale. */
TEST(adapler_select_scales_keeps_fastest_point) {
    const char *dir = test_tmpdir(), *data = planted600;
    REQUIRE(finetune_planted600(dir) == 0);
    REQUIRE(test_sh("OMP_WAIT_POLICY=PASSIVE %s train --method adapler --init %s/ft %s --gamma 0.1 --phi 0.05 --lr 5e-4 "
                    "--eta-lr 5e-3 --epochs 3 --tolerance 0.02 --select-scales 0.5,1,2,4 --out %s/ad > /dev/null 2>&1",
                    bin(), dir, data, dir) == 0);
    cJSON *j = adapler_train_json(dir);
    REQUIRE(j);
    double ft = cJSON_GetObjectItem(j, "finetuned_dev_accuracy")->valuedouble;
    double best = 0, best_acc = 0, best_scale = 0;
    const cJSON *h = cJSON_GetObjectItem(j, "history"), *e;
    CHECK_INT(cJSON_GetArraySize(h), 3);
    cJSON_ArrayForEach(e, h) {
        const cJSON *sel = cJSON_GetObjectItem(e, "select"), *p;
        CHECK_INT(cJSON_GetArraySize(sel), 3); /* scale 1 is the epoch's own line */
        double acc1 = cJSON_GetObjectItem(e, "dev_accuracy")->valuedouble;
        double sp1 = cJSON_GetObjectItem(e, "flops_speedup")->valuedouble;
        if (acc1 >= ft - 0.02 - 1e-12 && sp1 > best) best = sp1, best_acc = acc1, best_scale = 1;
        cJSON_ArrayForEach(p, sel) {
            double acc = cJSON_GetObjectItem(p, "dev_accuracy")->valuedouble;
            double sp = cJSON_GetObjectItem(p, "flops_speedup")->valuedouble;
            if (acc >= ft - 0.02 - 1e-12 && sp > best) best = sp, best_acc = acc, best_scale = cJSON_GetObjectItem(p, "eta_scale")->valuedouble;
        }
    }
    REQUIRE(best > 0); /* the planted task has points within tolerance */
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "within_tolerance")));
    CHECK_NEAR(cJSON_GetObjectItem(j, "flops_speedup")->valuedouble, best, 1e-9);
    CHECK_NEAR(cJSON_GetObjectItem(j, "dev_accuracy")->valuedouble, best_acc, 1e-9);
    CHECK_NEAR(cJSON_GetObjectItem(j, "eta_scale")->valuedouble, best_scale, 1e-12);
    /* the saved model at that scale is that point */
    REQUIRE(test_sh("%s eval --model %s/ad %s --split dev --method adapler --eta-scale %g --batch 64 --repeats 0 2>/dev/null",
                    bin(), dir, data, best_scale) == 0);
    cJSON *ev = cJSON_Parse(test_sh_output());
    REQUIRE(ev);
    CHECK_NEAR(cJSON_GetObjectItem(ev, "accuracy")->valuedouble, best_acc, 1e-9);
    CHECK_NEAR(cJSON_GetObjectItem(ev, "flops_speedup")->valuedouble, best, 1e-3);
    cJSON_Delete(ev);
    cJSON_Delete(j);
}

TEST(adapler_select_scales_rejects_bad_lists) {
    const char *bad[] = {"0", "1,,2", "1,", "-1", "1,1", "abc", "200"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = test_sh("%s train --method adapler --init /nonexistent --dataset planted --out /tmp/x "
                         "--select-scales '%s' 2>&1",
                         bin(), bad[i]);
        CHECK_INT(rc, 2);
        CHECK_MSG(strstr(test_sh_output(), "--select-scales") != NULL, "no error naming --select-scales for '%s'", bad[i]);
    }
}

/* --lr 0: the encoder is frozen.  Every tensor of the fine-tuned model is saved byte for
 * byte as it was, the predictors and etas are trained (their loss falls and the etas leave
 * their initial 0.25), and the unpruned dev score is the fine-tuned model's exactly. */
TEST(adapler_frozen_encoder_keeps_the_finetuned_weights) {
    const char *dir = test_tmpdir(), *data = planted600;
    REQUIRE(finetune_planted600(dir) == 0);
    REQUIRE(test_sh("OMP_WAIT_POLICY=PASSIVE %s train --method adapler --init %s/ft %s --gamma 0.1 --phi 0.05 --lr 0 "
                    "--cp-lr 2e-3 --eta-lr 5e-3 --epochs 2 --out %s/ad > /dev/null 2>&1",
                    bin(), dir, data, dir) == 0);
    char p1[4096], p2[4096];
    snprintf(p1, sizeof p1, "%s/ft/model.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/ad/model.safetensors", dir);
    st_file a = {0}, b = {0};
    REQUIRE(st_open(&a, p1) == ADP_OK);
    REQUIRE(st_open(&b, p2) == ADP_OK);
    int same = 0, extra = 0;
    for (int i = 0; i < b.n_tensors; i++) {
        const st_tensor *tb = &b.tensors[i], *ta = st_find(&a, tb->name);
        if (!strncmp(tb->name, "adapler.", 8)) {
            CHECK_MSG(ta == NULL, "%s in the fine-tuned model", tb->name);
            extra++;
            continue;
        }
        if (!ta) {
            CHECK_MSG(0, "%s is not in the fine-tuned model", tb->name);
            continue;
        }
        CHECK_INT((long)(ta->end - ta->begin), (long)(tb->end - tb->begin));
        if (ta->end - ta->begin == tb->end - tb->begin &&
            !memcmp(a.data + ta->begin, b.data + tb->begin, ta->end - ta->begin))
            same++;
        else
            CHECK_MSG(0, "%s changed with the encoder frozen", tb->name);
    }
    CHECK_INT(same, a.n_tensors);
    CHECK(extra > 0);
    const st_tensor *te = st_find(&b, "adapler.eta");
    REQUIRE(te);
    float eta[16];
    REQUIRE(st_numel(te) <= 16);
    REQUIRE(st_read_f32(&b, te, eta, te->shape, te->ndim) == ADP_OK);
    int moved = 0;
    for (int64_t l = 0; l < st_numel(te); l++) moved += fabsf(eta[l] - 0.25f) > 1e-3f;
    CHECK_MSG(moved > 0, "no eta moved from 0.25");
    st_close(&a), st_close(&b);

    cJSON *j = adapler_train_json(dir);
    REQUIRE(j);
    const cJSON *h = cJSON_GetObjectItem(j, "history");
    REQUIRE(cJSON_GetArraySize(h) == 2);
    double l1 = cJSON_GetObjectItem(cJSON_GetArrayItem(h, 0), "predictor_loss")->valuedouble;
    double l2 = cJSON_GetObjectItem(cJSON_GetArrayItem(h, 1), "predictor_loss")->valuedouble;
    CHECK_MSG(l2 < l1, "the predictor loss did not fall: %g then %g", l1, l2);
    REQUIRE(test_sh("%s eval --model %s/ft %s --method none --repeats 0 2>/dev/null", bin(), dir, data) == 0);
    cJSON *e1 = cJSON_Parse(test_sh_output());
    REQUIRE(test_sh("%s eval --model %s/ad %s --method adapler --eta-scale 0 --repeats 0 2>/dev/null", bin(), dir, data) == 0);
    cJSON *e2 = cJSON_Parse(test_sh_output());
    REQUIRE(e1 && e2);
    CHECK_NEAR(cJSON_GetObjectItem(e2, "accuracy")->valuedouble, cJSON_GetObjectItem(e1, "accuracy")->valuedouble, 0);
    cJSON_Delete(e1), cJSON_Delete(e2), cJSON_Delete(j);
}
