/* test_predict.c: `adapler predict` end to end against the PyTorch reference, and its
 * handling of bad input (one-line error naming the line, non-zero exit, nothing on stdout). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "flops.h"
#include "model.h"
#include "test.h"

static const char *bin(void) {
    const char *b = getenv("ADAPLER_BIN");
    return b ? b : "bin/adapler";
}

TEST(predict_cli_matches_reference) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --layers 2 --hidden 64 --heads 4 --inter 128 --seed 3", dir) == 0);
    REQUIRE(test_python("ref_bert.py", "run --model %s/m --out %s/fx.safetensors --lengths 3,1,40,7,128 --pairs", dir,
                        dir) == 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/fx.safetensors", dir);
    st_file fx;
    REQUIRE(st_open(&fx, path) == ADP_OK);
    const st_tensor *ti = st_find(&fx, "input_ids"), *tt = st_find(&fx, "token_type_ids"), *to = st_find(&fx, "offsets");
    REQUIRE(ti && tt && to);
    int64_t T = st_numel(ti), no = st_numel(to);
    int32_t *ids = mallocCheck(4 * T), *types = mallocCheck(4 * T), *off = mallocCheck(4 * no);
    REQUIRE(st_read_i32(&fx, ti, ids, T) == ADP_OK && st_read_i32(&fx, tt, types, T) == ADP_OK &&
            st_read_i32(&fx, to, off, no) == ADP_OK);
    int n_seq = (int)no - 1;
    float *want = mallocCheck(sizeof(float) * n_seq * 3);
    int64_t shape[2] = {n_seq, 3};
    REQUIRE(st_read_f32(&fx, st_find(&fx, "logits"), want, shape, 2) == ADP_OK);
    snprintf(path, sizeof path, "%s/in.jsonl", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    for (int s = 0; s < n_seq; s++) {
        fprintf(f, "{\"input_ids\": [");
        for (int t = off[s]; t < off[s + 1]; t++) fprintf(f, "%s%d", t > off[s] ? "," : "", ids[t]);
        fprintf(f, "], \"token_type_ids\": [");
        for (int t = off[s]; t < off[s + 1]; t++) fprintf(f, "%s%d", t > off[s] ? "," : "", types[t]);
        fprintf(f, "]}\n");
    }
    fclose(f);
    REQUIRE(test_sh("%s predict --model %s/m --batch 2 --threads 2 < %s/in.jsonl 2>/dev/null", bin(), dir, dir) == 0);
    bert_config cfg;
    snprintf(path, sizeof path, "%s/m/config.json", dir);
    REQUIRE(bert_config_load(&cfg, path) == ADP_OK);
    char *out = strdupCheck(test_sh_output()), *save = NULL;
    int s = 0;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), s++) {
        REQUIRE(s < n_seq);
        cJSON *j = cJSON_Parse(line);
        REQUIRE(j);
        cJSON *lg = cJSON_GetObjectItem(j, "logits"), *lt = cJSON_GetObjectItem(j, "layer_tokens");
        REQUIRE(cJSON_GetArraySize(lg) == 3 && cJSON_GetArraySize(lt) == 2);
        int best = 0;
        for (int c = 0; c < 3; c++) {
            CHECK_NEAR(cJSON_GetArrayItem(lg, c)->valuedouble, want[s * 3 + c], 1e-4);
            if (want[s * 3 + c] > want[s * 3 + best]) best = c;
        }
        CHECK_INT(cJSON_GetObjectItem(j, "label")->valueint, best);
        int n = off[s + 1] - off[s];
        for (int l = 0; l < 2; l++) CHECK_INT(cJSON_GetArrayItem(lt, l)->valueint, n);
        CHECK_NEAR(cJSON_GetObjectItem(j, "flops")->valuedouble, flops_dense(&cfg, n), 0.5);
        cJSON_Delete(j);
    }
    CHECK_INT(s, n_seq);
    free(out), free(ids), free(types), free(off), free(want);
    bert_config_free(&cfg);
    st_close(&fx);
}

static void bad_input(const char *dir, const char *input, const char *want) {
    char path[4200];
    snprintf(path, sizeof path, "%s/bad.jsonl", dir);
    FILE *f = fopen(path, "w");
    fputs(input, f);
    fclose(f);
    int st = test_sh("%s predict --model %s/m < %s > %s/out.jsonl", bin(), dir, path, dir);
    CHECK_MSG(st != 0, "bad input accepted: %s", input);
    const char *msg = test_sh_output();
    CHECK_MSG(strstr(msg, want) != NULL, "error for %s lacks '%s': %s", input, want, msg);
    const char *nl = strchr(msg, '\n');
    CHECK_MSG(nl && nl[1] == 0, "error is not one line: %s", msg);
    snprintf(path, sizeof path, "%s/out.jsonl", dir);
    char *buf = NULL;
    size_t n = 1;
    REQUIRE(adp_read_file(path, &buf, &n) == ADP_OK);
    CHECK_MSG(n == 0, "stdout not empty after bad input: %s", buf);
    free(buf);
}

TEST(predict_rejects_bad_input) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --layers 1 --hidden 32 --heads 2 --inter 64", dir) == 0);
    const char *ok = "{\"input_ids\": [2, 7, 3]}\n";
    char buf[512];
    snprintf(buf, sizeof buf, "%s{\"input_ids\": [2, 7, 3\n", ok);
    bad_input(dir, buf, "stdin:2: not a JSON object");
    snprintf(buf, sizeof buf, "%s%s{\"ids\": [2]}\n", ok, ok);
    bad_input(dir, buf, "stdin:3: missing \"input_ids\"");
    bad_input(dir, "{\"input_ids\": []}\n", "stdin:1: \"input_ids\" is empty");
    bad_input(dir, "{\"input_ids\": [2, 300]}\n", "stdin:1: input_ids[1] = 300 outside the vocabulary");
    bad_input(dir, "{\"input_ids\": [2, 1.5]}\n", "stdin:1: \"input_ids\"[1] is not an integer");
    bad_input(dir, "{\"input_ids\": [2, 4], \"token_type_ids\": [0]}\n", "stdin:1: 1 token_type_ids for 2 input_ids");
    bad_input(dir, "{\"input_ids\": [2, 4], \"token_type_ids\": [0, 2]}\n", "token_type_ids[1] = 2 outside [0, 2)");
    bad_input(dir, "\n", "stdin:1: not a JSON object");
    /* too long for the position table */
    char *longline = mallocCheck(600 * 6 + 64);
    size_t at = (size_t)sprintf(longline, "{\"input_ids\": [2");
    for (int i = 0; i < 600; i++) at += (size_t)sprintf(longline + at, ",5");
    sprintf(longline + at, "]}\n");
    bad_input(dir, longline, "stdin:1: 601 tokens, more than the model's 512 positions");
    free(longline);
    /* and the usage errors */
    CHECK(test_sh("%s predict < /dev/null", bin()) == 2);
    CHECK(strstr(test_sh_output(), "--model DIR is required") != NULL);
    CHECK(test_sh("%s predict --model %s/m --batch 0 < /dev/null", bin(), dir) == 2);
    CHECK(test_sh("%s predict --help", bin()) == 0);
    CHECK(strstr(test_sh_output(), "usage: adapler predict") != NULL);
    CHECK(test_sh("%s predict --model %s/nothing < /dev/null", bin(), dir) == 1);
    CHECK(strstr(test_sh_output(), "nothing/config.json") != NULL);
}

TEST(predict_text_input_equals_ids) {
    /* ref_bert.py's vocab.txt maps "w<i>" to id 5 + i; text is uncased, so W7 = w7. */
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --layers 1 --hidden 32 --heads 2 --inter 64", dir) == 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/in.jsonl", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fprintf(f, "{\"text\": \"w5 W6  w7\", \"text_pair\": \"w8\"}\n");
    fprintf(f, "{\"input_ids\": [2, 10, 11, 12, 3, 13, 3], \"token_type_ids\": [0, 0, 0, 0, 0, 1, 1]}\n");
    fprintf(f, "{\"text\": \"w5 zzz\"}\n{\"input_ids\": [2, 10, 1, 3]}\n");
    fclose(f);
    REQUIRE(test_sh("%s predict --model %s/m < %s 2>/dev/null", bin(), dir, path) == 0);
    char *out = strdupCheck(test_sh_output()), *save = NULL;
    char *l1 = strtok_r(out, "\n", &save), *l2 = strtok_r(NULL, "\n", &save);
    char *l3 = strtok_r(NULL, "\n", &save), *l4 = strtok_r(NULL, "\n", &save);
    REQUIRE(l1 && l2 && l3 && l4);
    CHECK_STR(l1, l2);
    CHECK_STR(l3, l4); /* an unknown word is [UNK] (id 1) */
    free(out);
    snprintf(path, sizeof path, "%s/bad.jsonl", dir);
    f = fopen(path, "w");
    fprintf(f, "{\"text\": \"w5\"}\n{\"text\": \"ok \\u00e9 \xff\"}\n");
    fclose(f);
    CHECK(test_sh("%s predict --model %s/m < %s", bin(), dir, path) == 1);
    CHECK(strstr(test_sh_output(), "stdin:2: text: invalid UTF-8") != NULL);
    CHECK(test_sh("echo '{\"text\": \"  \"}' | %s predict --model %s/m", bin(), dir) == 1);
    CHECK(strstr(test_sh_output(), "stdin:1: \"text\" is empty") != NULL);
}

TEST(predict_with_adapler_reports_positions_per_layer) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --adapler --labels 2 --layers 3 --hidden 32 --heads 2 --inter 64",
                        dir) == 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/in.jsonl", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    for (int i = 0; i < 9; i++) {
        fprintf(f, "{\"input_ids\": [2");
        for (int t = 0; t < 5 + 13 * i; t++) fprintf(f, ", %d", 5 + (t * 31 + i) % 290);
        fprintf(f, ", 3]}\n");
    }
    fclose(f);
    REQUIRE(test_sh("%s predict --model %s/m --method adapler --eta-scale 0.5 --batch 4 < %s 2>/dev/null", bin(), dir,
                    path) == 0);
    char *out = strdupCheck(test_sh_output()), *save = NULL;
    int lines = 0, pruned = 0;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++) {
        cJSON *j = cJSON_Parse(line);
        REQUIRE(j);
        cJSON *lt = cJSON_GetObjectItem(j, "layer_tokens"), *lp = cJSON_GetObjectItem(j, "layer_positions");
        REQUIRE(cJSON_GetArraySize(lt) == 3 && cJSON_GetArraySize(lp) == 3);
        int prev_n = 1 << 30;
        for (int l = 0; l < 3; l++) {
            cJSON *ps = cJSON_GetArrayItem(lp, l);
            int n = cJSON_GetArraySize(ps);
            CHECK_INT(n, cJSON_GetArrayItem(lt, l)->valueint);
            CHECK(n <= prev_n);
            CHECK_INT(cJSON_GetArrayItem(ps, 0)->valueint, 0); /* [CLS] */
            for (int k = 1; k < n; k++) CHECK(cJSON_GetArrayItem(ps, k)->valueint > cJSON_GetArrayItem(ps, k - 1)->valueint);
            /* a token entering layer l entered layer l-1 too */
            if (l > 0)
                for (int k = 0; k < n; k++) {
                    int p = cJSON_GetArrayItem(ps, k)->valueint, found = 0;
                    cJSON *prev = cJSON_GetArrayItem(lp, l - 1);
                    for (int q = 0; q < cJSON_GetArraySize(prev); q++) found |= cJSON_GetArrayItem(prev, q)->valueint == p;
                    CHECK(found);
                }
            prev_n = n;
        }
        pruned += cJSON_GetArrayItem(lt, 2)->valueint < 7 + 13 * lines;
        cJSON_Delete(j);
    }
    CHECK_INT(lines, 9);
    CHECK(pruned > 0);
    free(out);
    CHECK(test_sh("%s predict --model %s/m --method adapler --eta-scale -2 < %s", bin(), dir, path) == 2);
}

/* bert_forward runs a whole pass in one parallel region when it can (dense and AdapLeR:
 * engine/bert.c forward_one_region), else each layer's ops in one region;
 * ADAPLER_ONE_REGION=0 takes the second way always, ADAPLER_TEAM=0 runs one region per op,
 * ADAPLER_PAIR=0 keeps layers of at most 16 tokens on two threads off layer_pair (each
 * thread half the heads and half of each split product; hidden 128 makes the halves whole
 * panels).  All must give the same bytes: dense, AdapLeR (light and heavy pruning), pruned
 * at layer input, pruned after attention (attention probabilities kept), on one thread, at
 * batch 1 (layers of at most 16 tokens take their own paths), in short batches and in
 * batches of several hundred tokens. */
TEST(predict_team_regions_change_nothing) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_bert.py", "make --out %s/m --layers 3 --hidden 128 --heads 4 --inter 256 --seed 5 --adapler",
                        dir) == 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/in.jsonl", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    unsigned st = 9;
    int lens[] = {1, 3, 17, 40, 64, 100, 9, 2, 150, 60};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        fprintf(f, "{\"input_ids\": [2");
        for (int i = 1; i < lens[k]; i++) fprintf(f, ", %u", 5 + test_rand(&st) % 90);
        fprintf(f, "]}\n");
    }
    fclose(f);
    const char *methods[] = {"--method none",
                             "--method adapler --eta-scale 0.5",
                             "--method adapler --eta-scale 2",
                             "--method schedule --schedule 1:0.5,2:0.5",
                             "--method power --retention 0.8,0.6,0.4",
                             "--method ltp --final-threshold 0.02"};
    const char *ways[] = {"ADAPLER_ONE_REGION=0", "ADAPLER_TEAM=0", "ADAPLER_PAIR=0"};
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++)
        for (int threads = 1; threads <= 2; threads++)
            for (int batch = 1; batch <= 8; batch += batch < 3 ? 2 : 5) { /* 1, 3, 8 */
                REQUIRE(test_sh("%s predict --model %s/m --batch %d --threads %d %s < %s 2>/dev/null", bin(), dir,
                                batch, threads, methods[k], path) == 0);
                char *team = strdupCheck(test_sh_output());
                for (int w = 0; w < 3; w++) {
                    REQUIRE(test_sh("%s %s predict --model %s/m --batch %d --threads %d %s < %s 2>/dev/null", ways[w],
                                    bin(), dir, batch, threads, methods[k], path) == 0);
                    CHECK_MSG(strcmp(team, test_sh_output()) == 0, "%s, batch %d, %d threads: output differs with %s",
                              methods[k], batch, threads, ways[w]);
                }
                CHECK(strlen(team) > 100);
                free(team);
            }
}
