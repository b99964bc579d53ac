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
