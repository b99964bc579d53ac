/* test_datasets.c: every loader on the real files (counts equal the PROVENANCE.md
 * figures, contents equal an independent Python reader), on malformed input (one-line
 * errors naming file and line), the planted task, packing, `adapler data` and `make data`. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "dataset.h"
#include "test.h"
#include "wordpiece.h"

static const char *bin(void) {
    const char *b = getenv("ADAPLER_BIN");
    return b ? b : "bin/adapler";
}

/* data/NAME from `make data` (run once here if missing). */
static int have_data(const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s/data/%s", test_root(), name);
    struct stat sb;
    if (stat(path, &sb) == 0) return 1;
    test_sh("cd '%s' && make -s data", test_root());
    if (stat(path, &sb) == 0) return 1;
    test_fail(__FILE__, __LINE__, "data/%s is missing and `make data` failed: %s", name, test_sh_output());
    return 0;
}

static char g_data[4200];

static int load(dataset *ds, const char *name, split_id s) {
    dataset_opts o;
    dataset_opts_init(&o);
    snprintf(g_data, sizeof g_data, "%s/data", test_root());
    o.name = name;
    o.data_dir = g_data;
    int rc = dataset_load(ds, &o, s);
    if (rc != ADP_OK) test_fail(__FILE__, __LINE__, "%s %s: %s", name, split_name(s), adp_errmsg());
    return rc == ADP_OK;
}

static size_t count_label(const dataset *ds, int label) {
    size_t n = 0;
    for (size_t i = 0; i < ds->n; i++) n += ds->ex[i].label == label;
    return n;
}

static const example *find(const dataset *ds, const char *id) {
    for (size_t i = 0; i < ds->n; i++)
        if (!strcmp(ds->ex[i].id, id)) return &ds->ex[i];
    return NULL;
}

/* ---- counts: the PROVENANCE.md figures ---- */

TEST(datasets_sst2_counts) {
    if (!have_data("sst2")) return;
    dataset ds;
    REQUIRE(load(&ds, "sst2", SPLIT_TRAIN));
    CHECK_INT(ds.n, 67349);
    CHECK_INT(count_label(&ds, 1), 37569);
    CHECK_INT(count_label(&ds, 0), 29780);
    CHECK_STR(ds.ex[0].text, "hide new secretions from the parental units"); /* GLUE's space before the tab trimmed */
    CHECK_STR(ds.label_names[1], "positive");
    dataset_free(&ds);
    REQUIRE(load(&ds, "sst2", SPLIT_DEV));
    CHECK_INT(ds.n, 872);
    CHECK_INT(count_label(&ds, 1), 444);
    CHECK_INT(count_label(&ds, 0), 428);
    dataset_free(&ds);
    REQUIRE(load(&ds, "sst2", SPLIT_TEST));
    CHECK_INT(ds.n, 1821);
    CHECK_INT(count_label(&ds, -1), 1821); /* GLUE's hidden test labels */
    CHECK_STR(ds.ex[0].id, "0");
    CHECK_STR(ds.ex[0].text, "uneasy mishmash of styles and genres .");
    dataset_free(&ds);
}

TEST(datasets_agnews_counts) {
    if (!have_data("agnews")) return;
    dataset tr, dv, te;
    REQUIRE(load(&te, "agnews", SPLIT_TEST));
    CHECK_INT(te.n, 7600);
    for (int c = 0; c < 4; c++) CHECK_INT(count_label(&te, c), 1900);
    CHECK_STR(te.ex[0].text, "Unions representing workers at Turner   Newall say they are 'disappointed' after talks "
                             "with stricken parent firm Federal Mogul."); /* description only */
    CHECK_INT(te.ex[0].label, 2);
    REQUIRE(load(&tr, "agnews", SPLIT_TRAIN));
    REQUIRE(load(&dv, "agnews", SPLIT_DEV));
    CHECK_INT(tr.n + dv.n, 10001);
    CHECK_INT(dv.n, 1001);
    static const size_t want[4] = {2509, 2458, 2496, 2538}; /* World Sports Business Sci/Tech */
    for (int c = 0; c < 4; c++) CHECK_INT(count_label(&tr, c) + count_label(&dv, c), want[c]);
    for (size_t i = 0; i < dv.n; i++) CHECK(find(&tr, dv.ex[i].id) == NULL); /* disjoint */
    dataset_free(&tr);
    dataset_free(&dv);
    dataset_free(&te);
}

TEST(datasets_hatexplain_counts) {
    if (!have_data("hatexplain")) return;
    static const size_t want[3][3] = {{4748, 6251, 4384}, {593, 781, 548}, {594, 782, 548}}; /* hate normal offensive */
    static const size_t n[3] = {15383, 1922, 1924};
    size_t with2 = 0, with3 = 0, with_rat = 0;
    for (int s = 0; s < N_SPLITS; s++) {
        dataset ds;
        REQUIRE(load(&ds, "hatexplain", (split_id)s));
        CHECK_INT(ds.n, n[s]);
        for (int c = 0; c < 3; c++) CHECK_INT(count_label(&ds, c), want[s][c]);
        for (size_t i = 0; i < ds.n; i++) {
            const example *ex = &ds.ex[i];
            /* vectors exactly for hatespeech/offensive posts */
            CHECK_INT(ex->rationale != NULL, ex->label != 1);
            with_rat += ex->rationale != NULL;
            with2 += ex->n_annot == 2;
            with3 += ex->n_annot == 3;
            if (ex->rationale) { /* union of the annotators */
                for (uint32_t w = 0; w < ex->n_words; w++) {
                    int any = 0;
                    for (uint32_t k = 0; k < ex->n_annot; k++) any |= ex->annot_rationale[k * ex->n_words + w];
                    if (any != ex->rationale[w]) {
                        test_fail(__FILE__, __LINE__, "%s word %u: union %d, rationale %d", ex->id, w, any, ex->rationale[w]);
                        break;
                    }
                }
            }
        }
        const example *g = find(&ds, "24439295_gab"); /* the post with a 48-entry vector for 47 tokens */
        if (g) CHECK_INT(g->n_words, 47);
        dataset_free(&ds);
    }
    CHECK_INT(with_rat, 5935 + 5480);
    CHECK_INT(with2, 7025);
    CHECK_INT(with3, 4390);
}

TEST(datasets_eraser_movies_counts) {
    if (!have_data("eraser_movies")) return;
    static const size_t n[3] = {1600, 200, 199}, pos[3] = {800, 100, 99};
    for (int s = 0; s < N_SPLITS; s++) {
        dataset ds;
        REQUIRE(load(&ds, "eraser_movies", (split_id)s));
        CHECK_INT(ds.n, n[s]);
        CHECK_INT(count_label(&ds, 1), pos[s]);
        CHECK_INT(count_label(&ds, 0), n[s] - pos[s]);
        for (size_t i = 0; i < ds.n; i++) CHECK(ds.ex[i].rationale != NULL);
        if (s == SPLIT_TRAIN) {
            const example *e = find(&ds, "negR_000.txt");
            REQUIRE(e);
            const char *start = "plot : two teen couples go to a church party , drink and then drive . ";
            CHECK(!strncmp(e->text, start, strlen(start))); /* sentences flattened with single spaces */
            /* first evidence: tokens [63, 67) "mind - fuck movie" */
            CHECK_INT(e->rationale[62], 0);
            for (int w = 63; w < 67; w++) CHECK_INT(e->rationale[w], 1);
            const example *empty = find(&ds, "posR_161.txt"); /* no evidences upstream */
            REQUIRE(empty);
            size_t m = 0;
            for (uint32_t w = 0; w < empty->n_words; w++) m += empty->rationale[w];
            CHECK_INT(m, 0);
        }
        if (s == SPLIT_TEST) CHECK(find(&ds, "posR_947.txt") == NULL);
        dataset_free(&ds);
    }
}

TEST(datasets_imdb_counts) {
    if (!have_data("imdb")) return;
    dataset tr, dv, te;
    REQUIRE(load(&te, "imdb", SPLIT_TEST));
    CHECK_INT(te.n, 500);
    CHECK_INT(count_label(&te, 0), 250);
    REQUIRE(load(&tr, "imdb", SPLIT_TRAIN));
    REQUIRE(load(&dv, "imdb", SPLIT_DEV));
    CHECK_INT(tr.n, 90);
    CHECK_INT(dv.n, 10);
    CHECK_INT(count_label(&tr, 0) + count_label(&dv, 0), 50);
    CHECK_INT(count_label(&dv, 0), 5); /* stratified */
    dataset_free(&tr);
    dataset_free(&dv);
    dataset_free(&te);
}

/* ---- contents: an independent Python reader of the raw files ---- */

static void check_python_reader(const char *name, const char *extra) {
    if (!have_data(name)) return;
    const char *dir = test_tmpdir();
    for (int s = 0; s < N_SPLITS; s++) {
        const char *sp = split_name((split_id)s);
        int st = test_sh("cd '%s' && '%s' data dump --dataset %s --split %s %s > '%s/%s.jsonl'", test_root(), bin(), name,
                         sp, extra, dir, sp);
        CHECK_MSG(st == 0, "dump %s %s: %s", name, sp, test_sh_output());
        CHECK_INT(test_python("ref_datasets.py", "--data '%s/data' --dataset %s --split %s --dump '%s/%s.jsonl' %s",
                              test_root(), name, sp, dir, sp, extra),
                  0);
        if (test_verbose()) fprintf(stderr, "    %s", test_sh_output());
    }
}

TEST(datasets_sst2_match_python_reader) { check_python_reader("sst2", ""); }
TEST(datasets_agnews_match_python_reader) { check_python_reader("agnews", "--split-seed 13"); }
TEST(datasets_hatexplain_match_python_reader) { check_python_reader("hatexplain", ""); }
TEST(datasets_hatexplain_majority_match_python_reader) {
    check_python_reader("hatexplain", "--hatexplain-rationale majority");
}
TEST(datasets_eraser_movies_match_python_reader) { check_python_reader("eraser_movies", ""); }
TEST(datasets_imdb_match_python_reader) { check_python_reader("imdb", "--split-seed 5"); }

/* ---- malformed input ---- */

static void put_file(const char *dir, const char *rel, const char *content) {
    char path[4200], cmd[8600];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", path);
    if (system(cmd) != 0) test_fail(__FILE__, __LINE__, "mkdir for %s", path);
    FILE *f = fopen(path, "wb");
    if (!f) {
        test_fail(__FILE__, __LINE__, "cannot write %s", path);
        return;
    }
    fputs(content, f);
    fclose(f);
}

/* Load NAME/split from a scratch data folder holding `files` (pairs of relative path,
 * content) and expect an error "<dir>/<want_file>:<want>" on one line. */
static void expect_error(const char *name, split_id split, const char *const *files, const char *want_file,
                         const char *want, int line) {
    char dir[4200], sub[64];
    static int k;
    snprintf(sub, sizeof sub, "bad%d", k++);
    snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), sub);
    for (size_t i = 0; files[i]; i += 2) put_file(dir, files[i], files[i + 1]);
    dataset_opts o;
    dataset_opts_init(&o);
    char tsvname[4300];
    if (!strncmp(name, "tsv:", 4)) {
        snprintf(tsvname, sizeof tsvname, "tsv:%s/%s", dir, name + 4);
        o.name = tsvname;
        o.text_col = "sentence", o.label_col = "label";
    } else {
        o.name = name;
    }
    o.data_dir = dir;
    dataset ds;
    if (dataset_load(&ds, &o, split) == ADP_OK) {
        test_fail(__FILE__, line, "%s %s loaded, expected '%s'", name, split_name(split), want);
        dataset_free(&ds);
        return;
    }
    char full[8600], w[4200];
    const char *at = strstr(want, "@D"); /* @D in want stands for the scratch data folder */
    if (at) snprintf(w, sizeof w, "%.*s%s%s", (int)(at - want), want, dir, at + 2);
    else snprintf(w, sizeof w, "%s", want);
    snprintf(full, sizeof full, "%s/%s%s", dir, want_file, w);
    if (strcmp(adp_errmsg(), full) != 0) test_fail(__FILE__, line, "got '%s'\n        want '%s'", adp_errmsg(), full);
    if (strchr(adp_errmsg(), '\n')) test_fail(__FILE__, line, "message is not one line");
}
#define EXPECT_ERROR(name, split, want_file, want, ...)                                                        \
    do {                                                                                                       \
        const char *const files_[] = {__VA_ARGS__, NULL};                                                      \
        expect_error(name, split, files_, want_file, want, __LINE__);                                          \
    } while (0)

TEST(datasets_malformed_glue) {
    EXPECT_ERROR("sst2", SPLIT_TRAIN, "sst2/train.tsv", ":1: no 'label' column in the header", "sst2/train.tsv",
                 "sentence\tlbl\nfoo \t0\n");
    EXPECT_ERROR("sst2", SPLIT_TRAIN, "sst2/train.tsv", ":3: bad label '2' (expected 0 or 1)", "sst2/train.tsv",
                 "sentence\tlabel\nfoo \t0\nbar \t2\n");
    EXPECT_ERROR("sst2", SPLIT_DEV, "sst2/dev.tsv", ":2: expected 2 tab-separated fields (as the header), got 3",
                 "sst2/dev.tsv", "sentence\tlabel\nfoo \t0\tx\n");
    EXPECT_ERROR("sst2", SPLIT_DEV, "sst2/dev.tsv", ":3: expected 2 tab-separated fields (as the header), got 1",
                 "sst2/dev.tsv", "sentence\tlabel\nfoo \t0\r\nbar\n");
    EXPECT_ERROR("sst2", SPLIT_TRAIN, "sst2/train.tsv", ":2: text: invalid UTF-8 at byte 2", "sst2/train.tsv",
                 "sentence\tlabel\nfo\xffo \t0\n");
    EXPECT_ERROR("sst2", SPLIT_TEST, "sst2/test.tsv", ":1: no 'index' column in the header", "sst2/test.tsv",
                 "idx\tsentence\n0\tfoo\n");
    EXPECT_ERROR("sst2", SPLIT_TEST, "sst2/test.tsv", ": cannot open: No such file or directory", "sst2/dev.tsv", "x");
    /* tsv:DIR */
    EXPECT_ERROR("tsv:t", SPLIT_DEV, "t/dev.tsv", ":3: bad label 'maybe' (not among the 2 labels of train.tsv)",
                 "t/train.tsv", "sentence\tlabel\na\tyes\nb\tno\n", "t/dev.tsv", "sentence\tlabel\na\tyes\nb\tmaybe\n");
    EXPECT_ERROR("tsv:t", SPLIT_DEV, "t/dev.tsv", ":1: no 'sentence' column in the header", "t/train.tsv",
                 "sentence\tlabel\na\t1\n", "t/dev.tsv", "text\tlabel\na\t1\n");
    EXPECT_ERROR("tsv:t", SPLIT_TRAIN, "t/train.tsv", ": no data rows", "t/train.tsv", "sentence\tlabel\n");
}

TEST(datasets_malformed_csv_and_json) {
    EXPECT_ERROR("agnews", SPLIT_TEST, "agnews/test.csv", ":2: unterminated quoted field", "agnews/test.csv",
                 "\"1\",\"t\",\"d\"\n\"2\",\"t\",\"broken\nstill\n");
    EXPECT_ERROR("agnews", SPLIT_TEST, "agnews/test.csv", ":1: bad label '5' (expected a class index 1..4)",
                 "agnews/test.csv", "\"5\",\"t\",\"d\"\n");
    EXPECT_ERROR("agnews", SPLIT_TEST, "agnews/test.csv", ":2: unexpected 'x' after a closing quote", "agnews/test.csv",
                 "\"1\",\"t\",\"d\"\n\"1\",\"t\"x,\"d\"\n");
    EXPECT_ERROR("agnews", SPLIT_TEST, "agnews/test.csv", ":3: expected 3 fields (class, title, description), got 2",
                 "agnews/test.csv", "\"1\",\"t\",\"multi\nline\"\n\"1\",\"t\"\n");
    EXPECT_ERROR("agnews", SPLIT_TRAIN, "agnews/train_subset10k_desc_only.tsv",
                 ":2: bad label 'Politics' (expected World, Sports, Business or Sci/Tech)",
                 "agnews/train_subset10k_desc_only.tsv", "a \"quoted\" word\tWorld\nsomething\tPolitics\n");
    EXPECT_ERROR("imdb", SPLIT_TEST, "imdb/test500.csv", ":1: no 'text' column in the header", "imdb/test500.csv",
                 "review,label\n\"good\",pos\n");
    EXPECT_ERROR("imdb", SPLIT_TRAIN, "imdb/train100.csv", ":3: bad label 'meh' (expected neg or pos)", "imdb/train100.csv",
                 "text,label\n\"good, really\",pos\nok,meh\n");
    /* HateXplain */
    const char *post = "{\"post_id\": \"p1\", \"annotators\": [{\"label\": \"offensive\"}, {\"label\": \"offensive\"}, "
                       "{\"label\": \"normal\"}], \"rationales\": [[0, 1, 0]], \"post_tokens\": [\"a\", \"b\", \"c\"]}\n";
    char two[1024];
    snprintf(two, sizeof two, "%s{\"post_id\": \"p2\", \"annotators\": [{\"label\": \"norm", post);
    EXPECT_ERROR("hatexplain", SPLIT_TRAIN, "hatexplain/dataset.jsonl", ":2: invalid JSON (near byte 44)",
                 "hatexplain/post_id_divisions.json", "{\"train\": [\"p1\"], \"val\": [], \"test\": []}",
                 "hatexplain/dataset.jsonl", two);
    EXPECT_ERROR("hatexplain", SPLIT_TRAIN, "hatexplain/dataset.jsonl",
                 ":1: bad label 'angry' (expected hatespeech, normal or offensive)", "hatexplain/post_id_divisions.json",
                 "{\"train\": [\"p1\"], \"val\": [], \"test\": []}", "hatexplain/dataset.jsonl",
                 "{\"post_id\": \"p1\", \"annotators\": [{\"label\": \"angry\"}], \"rationales\": [], \"post_tokens\": []}\n");
    EXPECT_ERROR("hatexplain", SPLIT_TRAIN, "hatexplain/dataset.jsonl", ":1: rationales[0] is not an array of 4 flags",
                 "hatexplain/post_id_divisions.json", "{\"train\": [\"p1\"], \"val\": [], \"test\": []}",
                 "hatexplain/dataset.jsonl",
                 "{\"post_id\": \"p1\", \"annotators\": [{\"label\": \"offensive\"}], \"rationales\": [[0, 1, 0]], "
                 "\"post_tokens\": [\"a\", \"b\", \"c\", \"d\"]}\n");
    EXPECT_ERROR("hatexplain", SPLIT_TRAIN, "hatexplain/post_id_divisions.json",
                 ": post 'p9' of split 'train' is not in @D/hatexplain/dataset.jsonl", "hatexplain/post_id_divisions.json",
                 "{\"train\": [\"p1\", \"p9\"], \"val\": [], \"test\": []}", "hatexplain/dataset.jsonl", post);
    /* ERASER movies */
    const char *ann = "{\"annotation_id\": \"d1.txt\", \"classification\": \"POS\", \"evidences\": [[{\"docid\": "
                      "\"d1.txt\", \"start_token\": 1, \"end_token\": %d}]]}\n";
    char line[512];
    snprintf(line, sizeof line, ann, 9);
    EXPECT_ERROR("eraser_movies", SPLIT_TRAIN, "eraser_movies/train.jsonl",
                 ":1: evidence span [1, 9) outside document d1.txt (3 tokens)", "eraser_movies/train.jsonl", line,
                 "eraser_movies/docs/d1.txt", "one two\nthree");
    EXPECT_ERROR("eraser_movies", SPLIT_TEST, "eraser_movies/test.jsonl", ":1: invalid JSON (near byte 54)",
                 "eraser_movies/test.jsonl", "{\"annotation_id\": \"d1.txt\", \"classification\": \"POS\", \"evid");
    EXPECT_ERROR("eraser_movies", SPLIT_DEV, "eraser_movies/val.jsonl", ":1: bad label 'MEH' (expected NEG or POS)",
                 "eraser_movies/val.jsonl", "{\"annotation_id\": \"d1.txt\", \"classification\": \"MEH\", \"evidences\": []}\n");
    EXPECT_ERROR("eraser_movies", SPLIT_DEV, "eraser_movies/val.jsonl",
                 ":1: @D/eraser_movies/docs/d1.txt: cannot open: No such file or directory", "eraser_movies/val.jsonl",
                 "{\"annotation_id\": \"d1.txt\", \"classification\": \"NEG\", \"evidences\": []}\n");
}

TEST(datasets_tsv_pairs_and_unlabelled_test) {
    const char *dir = test_tmpdir();
    put_file(dir, "t/train.tsv", "premise\thypothesis\tlabel\nA cat .\tAn animal .\tentailment\nA\tB\tneutral\n");
    put_file(dir, "t/dev.tsv", "premise\thypothesis\tlabel\nX\tY\tneutral\n");
    put_file(dir, "t/test.tsv", "index\tpremise\thypothesis\n0\tP\tQ\n");
    dataset_opts o;
    dataset_opts_init(&o);
    char name[4300];
    snprintf(name, sizeof name, "tsv:%s/t", dir);
    o.name = name, o.text_col = "premise", o.pair_col = "hypothesis", o.label_col = "label";
    dataset ds;
    REQUIRE(dataset_load(&ds, &o, SPLIT_TRAIN) == ADP_OK);
    CHECK_INT(ds.n, 2);
    CHECK_INT(ds.n_labels, 2);
    CHECK_STR(ds.label_names[0], "entailment"); /* distinct strings in byte order */
    CHECK_STR(ds.ex[0].pair, "An animal .");
    CHECK_INT(ds.ex[1].label, 1);
    dataset_free(&ds);
    REQUIRE(dataset_load(&ds, &o, SPLIT_TEST) == ADP_OK);
    CHECK_INT(ds.n, 1);
    CHECK_INT(ds.ex[0].label, -1); /* GLUE test files have no label column */
    CHECK_STR(ds.ex[0].pair, "Q");
    dataset_free(&ds);
    /* integer labels are their own ids */
    put_file(dir, "u/train.tsv", "sentence\tlabel\na\t2\nb\t0\n");
    snprintf(name, sizeof name, "tsv:%s/u", dir);
    o.pair_col = NULL, o.text_col = "sentence";
    REQUIRE(dataset_load(&ds, &o, SPLIT_TRAIN) == ADP_OK);
    CHECK_INT(ds.n_labels, 3);
    CHECK_INT(ds.ex[0].label, 2);
    dataset_free(&ds);
    o.text_col = NULL;
    CHECK_INT(dataset_load(&ds, &o, SPLIT_TRAIN), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "needs --text-col NAME and --label-col NAME") != NULL);
    o.name = "nope";
    CHECK_INT(dataset_load(&ds, &o, SPLIT_TRAIN), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "unknown dataset 'nope'") != NULL);
}

TEST(datasets_cli_error_is_one_line) {
    const char *dir = test_tmpdir();
    put_file(dir, "sst2/train.tsv", "sentence\tlabel\nfoo \t0\nbar \tx\n");
    int st = test_sh("'%s' data stats --dataset sst2 --data-dir '%s' 2>&1 >/dev/null", bin(), dir);
    CHECK_INT(st, 1);
    char want[4400];
    snprintf(want, sizeof want, "data stats: %s/sst2/train.tsv:3: bad label 'x' (expected 0 or 1)\n", dir);
    CHECK_STR(test_sh_output(), want);
    CHECK_INT(test_sh("'%s' data stats --dataset planted --planted-len 8", bin()), 2);
    CHECK(strstr(test_sh_output(), "--planted-len: expected an integer in [16, 512], got '8'") != NULL);
}

/* ---- the planted task ---- */

static int is_cue(const char *w, size_t len, int label) {
    static const char *const cues[2][4] = {{"dreadful", "tedious", "lifeless", "dismal"},
                                           {"superb", "delightful", "masterful", "radiant"}};
    for (int k = 0; k < 4; k++)
        if (strlen(cues[label][k]) == len && !memcmp(cues[label][k], w, len)) return 1;
    return 0;
}

TEST(datasets_planted_task) {
    dataset_opts o;
    dataset_opts_init(&o);
    o.name = "planted";
    o.data_dir = "/nonexistent/on/purpose"; /* needs no data */
    dataset a, b;
    REQUIRE(dataset_load(&a, &o, SPLIT_TRAIN) == ADP_OK);
    REQUIRE(dataset_load(&b, &o, SPLIT_TRAIN) == ADP_OK);
    CHECK_INT(a.n, 2000);
    size_t same = 0;
    for (size_t i = 0; i < a.n; i++) same += !strcmp(a.ex[i].text, b.ex[i].text);
    CHECK_INT(same, a.n); /* deterministic */
    for (size_t i = 0; i < a.n; i++) {
        const example *ex = &a.ex[i];
        REQUIRE(ex->rationale && ex->label >= 0 && ex->label <= 1);
        CHECK(ex->n_words >= 16 && ex->n_words <= 64);
        /* the rationale is exactly the cue words, which all belong to the label */
        const char *p = ex->text;
        size_t marked = 0;
        for (uint32_t w = 0; w < ex->n_words; w++) {
            size_t len = strcspn(p, " ");
            int cue = is_cue(p, len, ex->label), other = is_cue(p, len, 1 - ex->label);
            if (cue != ex->rationale[w] || other) {
                test_fail(__FILE__, __LINE__, "%s word %u '%.*s': rationale %d", ex->id, w, (int)len, p, ex->rationale[w]);
                break;
            }
            marked += cue;
            p += len + (p[len] == ' ');
        }
        CHECK(marked >= 1 && marked <= 3);
    }
    size_t pos = count_label(&a, 1);
    CHECK(pos > 900 && pos < 1100);
    dataset_free(&b);
    REQUIRE(dataset_load(&b, &o, SPLIT_TEST) == ADP_OK);
    CHECK_INT(b.n, 500);
    CHECK(strcmp(a.ex[0].text, b.ex[0].text) != 0); /* splits are different streams */
    dataset_free(&b);
    o.planted_seed = 2;
    REQUIRE(dataset_load(&b, &o, SPLIT_TRAIN) == ADP_OK);
    CHECK(strcmp(a.ex[0].text, b.ex[0].text) != 0);
    dataset_free(&b);
    o.planted_min = o.planted_max = 512;
    o.planted_n[SPLIT_DEV] = 7;
    REQUIRE(dataset_load(&b, &o, SPLIT_DEV) == ADP_OK);
    CHECK_INT(b.n, 7);
    for (size_t i = 0; i < b.n; i++) CHECK_INT(b.ex[i].n_words, 512);
    dataset_free(&b);
    dataset_free(&a);
}

/* ---- packing ---- */

TEST(datasets_pack_layout) {
    const char *dir = test_tmpdir();
    REQUIRE(test_sh("'%s' vocab --dataset planted --size 4000 --out '%s/v.txt'", bin(), dir) == 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/v.txt", dir);
    wordpiece wp;
    REQUIRE(wordpiece_load(&wp, path, 1) == ADP_OK);
    dataset_opts o;
    dataset_opts_init(&o);
    o.name = "planted";
    dataset ds;
    REQUIRE(dataset_load(&ds, &o, SPLIT_DEV) == ADP_OK);
    packed_tokens pk;
    REQUIRE(dataset_pack(&pk, &ds, &wp, 0) == ADP_OK);
    CHECK_INT(pk.n_seq, ds.n);
    CHECK_INT(pk.n_truncated, 0);
    CHECK_INT(pk.seq_off[0], 0);
    CHECK_INT(pk.seq_off[pk.n_seq], pk.n_tok);
    for (size_t i = 0; i < pk.n_seq; i++) {
        size_t a = pk.seq_off[i], b = pk.seq_off[i + 1];
        REQUIRE(b >= a + 2);
        CHECK_INT(pk.ids[a], wp.cls_id);
        CHECK_INT(pk.ids[b - 1], wp.sep_id);
        CHECK_INT(pk.labels[i], ds.ex[i].label);
        CHECK_INT(pk.rationale[a], -1);
        /* each piece carries its word's rationale flag; word ids run 0 .. n_words-1 in order */
        const example *ex = &ds.ex[i];
        size_t marked = 0;
        int32_t prev = -1;
        for (size_t t = a + 1; t + 1 < b; t++) {
            int32_t w = pk.word_ids[t];
            CHECK(w == prev || w == prev + 1);
            if (w < 0 || (uint32_t)w >= ex->n_words) {
                test_fail(__FILE__, __LINE__, "%s: word id %d of %u words", ex->id, w, ex->n_words);
                break;
            }
            CHECK_INT(pk.rationale[t], ex->rationale[w]);
            marked += w != prev && ex->rationale[w];
            prev = w;
        }
        CHECK_INT(prev, (int32_t)ex->n_words - 1);
        CHECK(marked >= 1 && marked <= 3);
    }
    packed_tokens_free(&pk);
    /* truncation and sub-ranges */
    REQUIRE(dataset_pack_range(&pk, &ds, &wp, 16, 10, 32) == ADP_OK);
    CHECK_INT(pk.n_seq, 32);
    for (size_t i = 0; i < pk.n_seq; i++) CHECK(pk.seq_off[i + 1] - pk.seq_off[i] <= 16);
    CHECK(pk.n_truncated > 20);
    CHECK_INT(pk.labels[0], ds.ex[10].label);
    packed_tokens_free(&pk);
    CHECK_INT(dataset_pack_range(&pk, &ds, &wp, 0, 490, 20), ADP_ERR);
    dataset_free(&ds);
    wordpiece_free(&wp);
}

/* ---- the CLI: stats and the throughput benchmark ---- */

TEST(datasets_cli_stats) {
    const char *dir = test_tmpdir();
    REQUIRE(test_sh("'%s' vocab --dataset planted --size 3000 --out '%s/v.txt'", bin(), dir) == 0);
    REQUIRE(test_sh("'%s' data stats --dataset planted --vocab '%s/v.txt'", bin(), dir) == 0);
    const char *out = test_sh_output();
    CHECK(strstr(out, "pieces p50/p90/p99/max") != NULL);
    CHECK(strstr(out, "train       2000  negative ") != NULL);
    CHECK(strstr(out, "dev          500  ") != NULL);
    CHECK(strstr(out, "40/60/64/64 ") != NULL); /* words per document: 16..64 */
    CHECK(strstr(out, "(generated, no files)") != NULL);
}

TEST(datasets_bench_sst2_targets) {
    if (!have_data("sst2")) return;
    const char *dir = test_tmpdir();
    REQUIRE(test_sh("cd '%s' && '%s' vocab --dataset sst2 --size 8000 --out '%s/v.txt'", test_root(), bin(), dir) == 0);
    REQUIRE(test_sh("cd '%s' && '%s' data bench --dataset sst2 --vocab '%s/v.txt' --min-time 0.5", test_root(), bin(), dir) ==
            0);
    cJSON *j = cJSON_Parse(test_sh_output());
    REQUIRE(j);
    double mbs = cJSON_GetObjectItem(j, "tokenizer_mb_per_s")->valuedouble;
    double lt = cJSON_GetObjectItem(j, "load_tokenize_s")->valuedouble;
    CHECK_INT(cJSON_GetObjectItem(j, "examples")->valueint, 67349);
    if (test_verbose()) fprintf(stderr, "    %s", test_sh_output());
#if defined(__SANITIZE_ADDRESS__)
    CHECK(mbs > 0 && lt > 0); /* instrumented build: no speed targets */
#else
    CHECK_MSG(mbs >= 20, "tokenizer %.1f MB/s, target >= 20", mbs); /* issue 3 targets */
    CHECK_MSG(lt < 2, "SST-2 train load + tokenize %.2f s, target < 2", lt);
#endif
    cJSON_Delete(j);
}

/* ---- make data: the download path, against a local mirror ---- */

TEST(datasets_make_data_download_checks_sha256) {
    if (!have_data("sst2")) return;
    const char *dir = test_tmpdir(), *root = test_root();
    const char *src = "eyalbd2/Reproducing-AutoPrompt/6288fb5bec9c572f2492875ae0111df5b6daed11/glue_data/SST-2";
    REQUIRE(test_sh("mkdir -p '%s/mirror/%s' && cp '%s/data/sst2/train.tsv' '%s/mirror/%s/train_full.tsv' && "
                    "cp '%s/data/sst2/dev.tsv' '%s/data/sst2/test.tsv' '%s/mirror/%s/'",
                    dir, src, root, dir, src, root, root, dir, src) == 0);
    const char *env = "ADAPLER_SHARED_DATA=/nonexistent ADAPLER_DATA_MIRROR=file://";
    int st = test_sh("cd '%s' && ADAPLER_DATA='%s/d1' %s'%s/mirror' sh experiments/fetch_data.sh sst2", root, dir, env, dir);
    CHECK_MSG(st == 0, "%s", test_sh_output());
    CHECK(strstr(test_sh_output(), "make data: sst2: downloaded, 3 files verified") != NULL);
    CHECK_INT(test_sh("cmp '%s/d1/sst2/train.tsv' '%s/data/sst2/train.tsv'", dir, root), 0);
    /* a corrupted source file is rejected and nothing is left behind */
    REQUIRE(test_sh("echo x >> '%s/mirror/%s/dev.tsv'", dir, src) == 0);
    st = test_sh("cd '%s' && ADAPLER_DATA='%s/d2' %s'%s/mirror' sh experiments/fetch_data.sh sst2", root, dir, env, dir);
    CHECK_INT(st, 1);
    CHECK(strstr(test_sh_output(), "sst2: downloaded files do not match experiments/data.sha256") != NULL);
    CHECK_INT(test_sh("ls -A '%s/d2' | grep -c . ", dir), 1); /* grep -c prints 0 and exits 1 */
    /* a present copy that differs from the manifest is an error too */
    REQUIRE(test_sh("cp '%s/mirror/%s/dev.tsv' '%s/d1/sst2/dev.tsv'", dir, src, dir) == 0);
    st = test_sh("cd '%s' && ADAPLER_DATA='%s/d1' %s'%s/mirror' sh experiments/fetch_data.sh sst2", root, dir, env, dir);
    CHECK_INT(st, 1);
    CHECK(strstr(test_sh_output(), "does not match experiments/data.sha256") != NULL);
}
