/* test_adapler_e2e.c: AdapLeR end to end on the planted-rationale task, where the right
 * tokens are known: fine-tune a tiny model, train AdapLeR on it, and require a point of its
 * --eta-scale curve that keeps the planted words to the last layer (recall >= 0.95) while
 * cutting FLOPs at least 3x and losing at most one point of dev accuracy. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "test.h"

static const char *bin(void) {
    const char *b = getenv("ADAPLER_BIN");
    return b ? b : "bin/adapler";
}

static double last_of(const cJSON *arr) {
    int n = cJSON_GetArraySize(arr);
    return n ? cJSON_GetArrayItem(arr, n - 1)->valuedouble : -1;
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
    const char *dir = test_tmpdir();
    const char *data = "--dataset planted --planted-n 600 --threads 2";
    REQUIRE(test_sh("OMP_WAIT_POLICY=PASSIVE %s train %s --config tiny --epochs 2 --lr 1e-3 --vocab-size 3000 "
                    "--out %s/ft > /dev/null 2>&1",
                    bin(), data, dir) == 0);
    REQUIRE(test_sh("OMP_WAIT_POLICY=PASSIVE %s train --method adapler --init %s/ft %s --gamma 0.1 --phi 0.05 --lr 5e-4 "
                    "--eta-lr 5e-3 --epochs 3 --tolerance 0.02 --select-scales 0.5,1,2,4 --out %s/ad > /dev/null 2>&1",
                    bin(), dir, data, dir) == 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/ad/train.json", dir);
    size_t n;
    char *txt = NULL;
    REQUIRE(adp_read_file(path, &txt, &n) == ADP_OK);
    cJSON *j = cJSON_Parse(txt);
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
    free(txt);
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

TEST(adapler_cp_lr_needs_a_base_rate) {
    int rc = test_sh("%s train --method adapler --init /nonexistent --dataset planted --out /tmp/x --lr 0 --cp-lr 1e-3 2>&1",
                     bin());
    CHECK_INT(rc, 2);
    CHECK_MSG(strstr(test_sh_output(), "--cp-lr") != NULL, "no error naming --cp-lr: %s", test_sh_output());
}
