/* test_eraser_data.c: the ERASER reader (real movie reviews and small fixtures), the word
 * splitting rules of utils.py, the mask constructor, results files, and the one-line
 * errors every malformed input must give. */
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "common.h"
#include "eraser/eraser.h"
#include "test.h"

/* data/eraser_movies (make data), else the shared copy. */
static const char *movies_dir(void) {
    static char path[4200];
    snprintf(path, sizeof path, "%s/data/eraser_movies/test.jsonl", test_root());
    FILE *f = fopen(path, "r");
    if (f) {
        fclose(f);
        snprintf(path, sizeof path, "%s/data/eraser_movies", test_root());
    } else {
        snprintf(path, sizeof path, "%s/../shared/data/eraser_movies", test_root());
    }
    return path;
}

static void write_file(const char *dir, const char *name, const char *fmt, ...) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        test_fail(__FILE__, __LINE__, "cannot write %s", path);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
}

/* A small dataset in dir: docs d1 (10 words), d2 (8), d3 (6). */
static void write_small_dataset(const char *dir) {
    char docs[4200];
    snprintf(docs, sizeof docs, "%s/docs", dir);
    mkdir(docs, 0755);
    write_file(docs, "d1", "w0 w1 w2 w3 w4\nw5 w6 w7 w8 w9");
    write_file(docs, "d2", "v0 v1 v2 v3\nv4 v5 v6 v7\n");
    write_file(docs, "d3", "u0 u1 u2 u3 u4 u5");
}

TEST(eraser_movies_splits_load) {
    const char *dir = movies_dir();
    static const char *split[] = {"train", "val", "test"};
    static const size_t anns[] = {1600, 200, 199}, spans[] = {13878, 1517, 2067};
    for (int s = 0; s < 3; s++) {
        eraser_dataset ds;
        eraser_dataset_init(&ds);
        int rc = eraser_load_split(&ds, dir, split[s]);
        CHECK_MSG(rc == ADP_OK, "%s: %s", split[s], adp_errmsg());
        if (rc != ADP_OK) return;
        CHECK_INT(ds.n_anns, anns[s]);
        size_t n = 0;
        for (size_t i = 0; i < ds.n_anns; i++) n += ds.anns[i].n_evidences;
        CHECK_INT(n, spans[s]);
        const eraser_annotation *first = NULL;
        CHECK_INT(eraser_count_text_mismatches(&ds, &first), 0); /* evidence text == its words */
        if (s == 0) {
            const eraser_annotation *a = eraser_find_annotation(&ds, "posR_161.txt");
            CHECK(a && a->n_evidences == 0); /* inherited from Zaidan's data: no rationale */
            const eraser_doc *d = eraser_find_doc(&ds, "negR_000.txt");
            REQUIRE(d && d->n_words > 4);
            CHECK_STR(d->words[0], "plot");
            CHECK_STR(d->words[1], ":");
            CHECK_STR(d->words[4], "couples");
            a = eraser_find_annotation(&ds, "negR_000.txt");
            REQUIRE(a != NULL);
            CHECK_STR(a->classification, "NEG");
            CHECK_INT(a->evidences[0].start_token, 63); /* "mind - fuck movie" */
            CHECK_INT(a->evidences[0].end_token, 67);
            CHECK_STR(d->words[63], "mind");
            CHECK(a->query_type == NULL);
        }
        if (s == 2) {
            const eraser_annotation *a = &ds.anns[0];
            CHECK_INT(a->n_groups, 1); /* test: one comprehensive group per annotation */
            CHECK(a->docids == NULL);  /* "docids": null */
            CHECK(eraser_find_annotation(&ds, "posR_947.txt") == NULL);
        }
        eraser_dataset_free(&ds);
    }
}

/* utils.py splits docs/ files and docs.jsonl differently (checked against Python):
 *   "  a b\t c \r\nd  e\r\rf\n\n g\u00a0"
 *   docs/:      lines at \r\n and \r, strip, drop empties -> a | b\t | c | d | e | f | g
 *   docs.jsonl: lines at \n only, no dropping -> a | b\t | c | d | "" | e\r\rf | "" | g */
TEST(eraser_word_splitting_rules) {
    const char *t = "  a b\t c \r\nd  e\r\rf\n\n g\xc2\xa0";
    eraser_doc d;
    REQUIRE(eraser_doc_parse(&d, "x", t, strlen(t), ERASER_DOCS_DIR) == ADP_OK);
    static const char *want_dir[] = {"a", "b\t", "c", "d", "e", "f", "g"};
    CHECK_INT(d.n_words, 7);
    for (size_t i = 0; i < 7 && i < d.n_words; i++) CHECK_STR(d.words[i], want_dir[i]);
    CHECK_INT(d.n_sentences, 4);
    CHECK_INT(d.sentence_end[1], 5);
    eraser_doc_free(&d);
    REQUIRE(eraser_doc_parse(&d, "x", t, strlen(t), ERASER_DOCS_JSONL) == ADP_OK);
    static const char *want_jsonl[] = {"a", "b\t", "c", "d", "", "e\r\rf", "", "g"};
    CHECK_INT(d.n_words, 8);
    for (size_t i = 0; i < 8 && i < d.n_words; i++) CHECK_STR(d.words[i], want_jsonl[i]);
    CHECK_INT(d.n_sentences, 4);
    eraser_doc_free(&d);
    REQUIRE(eraser_doc_parse(&d, "x", "", 0, ERASER_DOCS_DIR) == ADP_OK);
    CHECK(d.n_words == 0 && d.n_sentences == 0);
    eraser_doc_free(&d);
    CHECK_INT(eraser_doc_parse(&d, "x", "a \xff b", 5, ERASER_DOCS_DIR), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "UTF-8") != NULL);
    CHECK_INT(eraser_doc_parse(&d, "x", "a\0b", 3, ERASER_DOCS_DIR), ADP_ERR);
}

TEST(eraser_docs_jsonl_layout) {
    const char *dir = test_tmpdir();
    write_file(dir, "docs.jsonl", "{\"docid\": \"d1\", \"document\": \"a b\\nc\"}\n{\"docid\": \"d2\", \"document\": \"x\"}\n");
    write_file(dir, "test.jsonl",
               "{\"annotation_id\": \"a1\", \"query\": \"q\", \"classification\": \"P\", \"evidences\": "
               "[[{\"docid\": \"d1\", \"start_token\": 1, \"end_token\": 3, \"text\": \"b c\"}]]}\n");
    eraser_dataset ds;
    eraser_dataset_init(&ds);
    REQUIRE(eraser_load_split(&ds, dir, "test") == ADP_OK);
    CHECK_INT(ds.n_docs, 1); /* only what the annotations need */
    CHECK_INT(eraser_find_doc(&ds, "d1")->n_words, 3);
    const char *more[] = {"d2"};
    REQUIRE(eraser_load_docs(&ds, dir, more, 1) == ADP_OK);
    CHECK_STR(eraser_find_doc(&ds, "d2")->words[0], "x");
    const char *missing[] = {"d9"};
    CHECK_INT(eraser_load_docs(&ds, dir, missing, 1), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "no document 'd9'") != NULL);
    eraser_dataset_free(&ds);
    char docs[4200];
    snprintf(docs, sizeof docs, "%s/docs", dir);
    mkdir(docs, 0755);
    eraser_dataset_init(&ds);
    CHECK_INT(eraser_load_split(&ds, dir, "test"), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "both docs/ and docs.jsonl") != NULL);
    eraser_dataset_free(&ds);
}

TEST(eraser_mask_constructor) {
    eraser_dataset ds;
    eraser_dataset_init(&ds);
    const char *words[] = {"this", "is", "a", "hateful", "post", "really"};
    REQUIRE(eraser_add_doc(&ds, "h1", words, 6) == ADP_OK);
    static const uint8_t mask[] = {1, 0, 0, 1, 1, 0};
    REQUIRE(eraser_add_mask_annotation(&ds, "h1", "h1", "hatespeech", NULL, mask, 6) == ADP_OK);
    const eraser_annotation *a = eraser_find_annotation(&ds, "h1");
    REQUIRE(a && a->n_evidences == 2 && a->n_groups == 1);
    CHECK(a->evidences[0].start_token == 0 && a->evidences[0].end_token == 1);
    CHECK(a->evidences[1].start_token == 3 && a->evidences[1].end_token == 5);
    CHECK_STR(a->evidences[1].text, "hateful post");
    CHECK_INT(eraser_count_text_mismatches(&ds, NULL), 0);
    CHECK_INT(eraser_check_annotations(&ds), ADP_OK);
    uint8_t back6[6];
    REQUIRE(eraser_gold_mask(back6, 6, a, "h1") == ADP_OK);
    CHECK(memcmp(back6, mask, 6) == 0);
    REQUIRE(eraser_gold_mask(back6, 6, a, "other-doc") == ADP_OK); /* no evidence there */
    CHECK(back6[0] == 0 && back6[3] == 0);
    CHECK_INT(eraser_gold_mask(back6, 4, a, "h1"), ADP_ERR); /* [3, 5) does not fit 4 words */
    static const uint8_t zero[6] = {0};
    REQUIRE(eraser_add_mask_annotation(&ds, "h1-none", "h1", "normal", "", zero, 6) == ADP_OK);
    CHECK_INT(eraser_find_annotation(&ds, "h1-none")->n_evidences, 0);
    CHECK_INT(eraser_add_mask_annotation(&ds, "h2", "h1", "x", NULL, mask, 5), ADP_ERR); /* wrong length */
    CHECK_INT(eraser_add_mask_annotation(&ds, "h3", "nope", "x", NULL, mask, 6), ADP_ERR);
    CHECK_INT(eraser_add_mask_annotation(&ds, "h1", "h1", "x", NULL, mask, 6), ADP_ERR); /* duplicate id */
    CHECK_INT(eraser_add_doc(&ds, "h1", words, 6), ADP_ERR);
    const char *spaced[] = {"a b"};
    CHECK_INT(eraser_add_doc(&ds, "h9", spaced, 1), ADP_ERR);
    eraser_dataset_free(&ds);
    /* round trip mask -> spans -> mask */
    static const uint8_t m[] = {1, 1, 0, 1, 0, 0, 1};
    eraser_span *s;
    size_t n;
    eraser_mask_to_spans(&s, &n, m, 7);
    REQUIRE(n == 3);
    CHECK(s[2].start == 6 && s[2].end == 7);
    uint8_t back[7];
    eraser_spans_to_mask(back, 7, s, n);
    CHECK(memcmp(back, m, 7) == 0);
    free(s);
}

/* Malformed annotation files: one line, naming the file and the line. */
TEST(eraser_malformed_annotations) {
    static const struct {
        const char *line, *expect;
    } cases[] = {
        {"{\"annotation_id\": \"a\", \"query\": \"q\", \"classification\": \"P\"", "invalid JSON"},
        {"[1, 2]", "expected a JSON object"},
        {"{\"annotation_id\": \"a\", \"query\": \"q\", \"classification\": \"P\", \"evidences\": [], \"extra\": 1}",
         "unknown key 'extra'"},
        {"{\"annotation_id\": \"a\", \"query\": \"q\", \"evidences\": []}", "missing 'classification'"},
        {"{\"annotation_id\": 7, \"query\": \"q\", \"classification\": \"P\", \"evidences\": []}", "annotation_id: expected a string"},
        {"{\"annotation_id\": \"a\", \"annotation_id\": \"b\", \"query\": \"q\", \"classification\": \"P\", \"evidences\": []}",
         "appears twice"},
        {"{\"annotation_id\": \"a\", \"query\": \"q\", \"classification\": \"P\", \"evidences\": [{\"docid\": \"d1\"}]}",
         "expected a list of evidences"},
        {"{\"annotation_id\": \"a\", \"query\": \"q\", \"classification\": \"P\", \"evidences\": [[{\"docid\": \"d1\", "
         "\"start_token\": 2.5, \"end_token\": 3, \"text\": \"w2\"}]]}",
         "start_token: expected an integer"},
        {"{\"annotation_id\": \"a\", \"query\": \"q\", \"classification\": \"P\", \"evidences\": [[{\"docid\": \"d1\", "
         "\"start_token\": -1, \"end_token\": 3, \"text\": \"w2\"}]]}",
         "start_token: expected an integer in [0"},
        {"{\"annotation_id\": \"a\", \"query\": \"q\", \"classification\": \"P\", \"evidences\": [[{\"docid\": \"d1\", "
         "\"start_token\": 4, \"end_token\": 3, \"text\": \"w2\"}]]}",
         "start_token 4 > end_token 3"},
        {"{\"annotation_id\": \"a\", \"query\": \"q\", \"classification\": \"P\", \"evidences\": [[{\"docid\": \"d1\", "
         "\"start_token\": 8, \"end_token\": 11, \"text\": \"w8\"}]]}",
         "evidence [8, 11) outside document 'd1' of 10 words"},
        {"{\"annotation_id\": \"a\", \"query\": \"q\", \"classification\": \"P\", \"evidences\": [[{\"docid\": \"d7\", "
         "\"start_token\": 0, \"end_token\": 1, \"text\": \"w0\"}]]}",
         "d7"},
        {"{\"annotation_id\": \"a\", \"query\": \"q\", \"classification\": \"P\", \"evidences\": [[{\"docid\": \"../x\", "
         "\"start_token\": 0, \"end_token\": 1, \"text\": \"w0\"}]]}",
         "not a plain file name"},
        {"{\"annotation_id\": \"a\", \"query\": \"q\", \"classification\": \"P\", \"evidences\": [[{\"docid\": \"d1\", "
         "\"start_token\": 0, \"end_token\": 1, \"text\": \"w0\", \"start_sentence\": 0, \"end_sentence\": 3}]]}",
         "sentences [0, 3)"},
        {"{\"annotation_id\": \"a\\u0000b\", \"query\": \"q\", \"classification\": \"P\", \"evidences\": []}", "\\u0000"},
        {"", "empty line"},
    };
    const char *dir = test_tmpdir();
    write_small_dataset(dir);
    const char *good = "{\"annotation_id\": \"ok\", \"query\": \"q\", \"classification\": \"P\", \"evidences\": []}";
    const char *good3 = "{\"annotation_id\": \"ok3\", \"query\": \"q\", \"classification\": \"P\", \"evidences\": []}";
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        write_file(dir, "test.jsonl", "%s\n%s\n%s\n", good, cases[c].line, good3);
        eraser_dataset ds;
        eraser_dataset_init(&ds);
        CHECK_MSG(eraser_load_split(&ds, dir, "test") == ADP_ERR, "case %zu accepted", c);
        const char *msg = adp_errmsg();
        CHECK_MSG(strstr(msg, "test.jsonl:2: ") != NULL && strstr(msg, cases[c].expect) != NULL && !strchr(msg, '\n'),
                  "case %zu: message \"%s\" lacks \"test.jsonl:2: \" or \"%s\"", c, msg, cases[c].expect);
        eraser_dataset_free(&ds);
    }
    /* a duplicate annotation id on line 3 */
    write_file(dir, "test.jsonl", "%s\n%s\n", good, good);
    eraser_dataset ds;
    eraser_dataset_init(&ds);
    CHECK_INT(eraser_load_split(&ds, dir, "test"), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "test.jsonl:2: annotation_id 'ok' appears twice") != NULL);
    eraser_dataset_free(&ds);
    /* no file at all */
    eraser_dataset_init(&ds);
    CHECK_INT(eraser_load_split(&ds, dir, "nosuchsplit"), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "nosuchsplit.jsonl") != NULL);
    eraser_dataset_free(&ds);
}

/* Results lines: structure, ranges, all-or-none optional fields. */
TEST(eraser_malformed_results) {
    const char *dir = test_tmpdir();
    write_small_dataset(dir);
    write_file(dir, "test.jsonl",
               "{\"annotation_id\": \"a1\", \"query\": \"q\", \"classification\": \"P\", \"evidences\": [[{\"docid\": \"d1\", "
               "\"start_token\": 0, \"end_token\": 3, \"text\": \"w0 w1 w2\"}]]}\n"
               "{\"annotation_id\": \"a2\", \"query\": \"q\", \"classification\": \"N\", \"evidences\": []}\n");
    const char *ok = "{\"annotation_id\": \"a2\", \"rationales\": [{\"docid\": \"d3\", \"hard_rationale_predictions\": []}]}";
    static const struct {
        const char *line, *expect;
    } cases[] = {
        {"{\"annotation_id\": \"a1\"}", "missing 'rationales'"},
        {"{\"annotation_id\": \"a1\", \"rationales\": [{\"docid\": \"d1\", \"hard_rationale_predictions\": "
         "[{\"start_token\": 0, \"end_token\": 3}, {\"start_token\": 2, \"end_token\": 4}]}]}",
         "[0, 3) and [2, 4) overlap"},
        {"{\"annotation_id\": \"a1\", \"rationales\": [{\"docid\": \"d1\", \"hard_rationale_predictions\": "
         "[{\"start_token\": 0, \"end_token\": 6}, {\"start_token\": 2, \"end_token\": 2}, {\"start_token\": 3, \"end_token\": 4}]}]}",
         "[0, 6) and [3, 4) overlap"},
        {"{\"annotation_id\": \"a1\", \"rationales\": [{\"docid\": \"d1\", \"hard_rationale_predictions\": "
         "[{\"start_token\": 5, \"end_token\": 4}]}]}",
         "start_token 5 > end_token 4"},
        {"{\"annotation_id\": \"a1\", \"rationales\": [{\"docid\": \"d1\", \"hard_rationale_predictions\": "
         "[{\"start\": 5, \"end_token\": 4}]}]}",
         "unknown key 'start'"},
        {"{\"annotation_id\": \"a1\", \"rationales\": [{\"docid\": \"d1\"}, {\"docid\": \"d1\"}]}", "docid 'd1' appears twice"},
        {"{\"annotation_id\": \"a1\", \"rationales\": [{\"docid\": \"d1\", \"hard_rationale_predictions\": []}], "
         "\"classification\": \"P\"}",
         "must be given together"},
        {"{\"annotation_id\": \"a1\", \"rationales\": [{\"docid\": \"d1\", \"hard_rationale_predictions\": []}], "
         "\"classification\": \"X\", \"classification_scores\": {\"P\": 0.5, \"N\": 0.5}}",
         "'X' is not a label"},
        {"{\"annotation_id\": \"a1\", \"rationales\": [{\"docid\": \"d1\", \"soft_rationale_predictions\": [0.1, \"x\"]}]}",
         "expected a number"},
        {"{\"annotation_id\": \"a1\", \"rationales\": [{\"docid\": \"d1\", \"hard_rationale_predictions\": []}], "
         "\"tokens_to_flip\": 3}",
         "need classification"},
        {"{\"annotation_id\": \"a1\", \"rationales\": [{\"docid\": \"d1\", \"hard_rationale_predictions\": [], "
         "\"soft_rationale_predictions\": [1e999]}]}",
         "out of range"},
        {"{\"annotation_id\": \"a1\", \"rationales\": []} trailing", "trailing characters"},
        {"{\"annotation_id\": \"a2\", \"rationales\": []}", "annotation_id 'a2' appears twice"},
        /* all-or-none: line 1 has hard predictions, this one only soft ones */
        {"{\"annotation_id\": \"a1\", \"rationales\": [{\"docid\": \"d1\", \"soft_rationale_predictions\": [0,0,0,0,0,0,0,0,0,0]}]}",
         "'hard_rationale_predictions' is missing, but line 1 has it"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        write_file(dir, "results.jsonl", "%s\n%s\n", ok, cases[c].line);
        char path[4200];
        snprintf(path, sizeof path, "%s/results.jsonl", dir);
        eraser_results r;
        int rc = eraser_results_read(&r, path);
        const char *msg = adp_errmsg();
        int lined = strstr(msg, "results.jsonl:2: ") != NULL || strstr(msg, "results.jsonl:1: ") != NULL;
        CHECK_MSG(rc == ADP_ERR && lined && strstr(msg, cases[c].expect) && !strchr(msg, '\n'),
                  "case %zu: rc %d, message \"%s\", expected \"%s\"", c, rc, msg, cases[c].expect);
        eraser_results_free(&r);
    }
    /* errors only visible against the documents */
    static const struct {
        const char *line, *expect;
    } doc_cases[] = {
        {"{\"annotation_id\": \"a1\", \"rationales\": [{\"docid\": \"d1\", \"hard_rationale_predictions\": "
         "[{\"start_token\": 8, \"end_token\": 11}]}]}",
         "span [8, 11) outside document 'd1' of 10 words"},
        {"{\"annotation_id\": \"a1\", \"rationales\": [{\"docid\": \"d9\", \"hard_rationale_predictions\": []}]}",
         "d9"},
    };
    for (size_t c = 0; c < 2; c++) {
        write_file(dir, "results.jsonl", "%s\n%s\n", ok, doc_cases[c].line);
        char path[4200];
        snprintf(path, sizeof path, "%s/results.jsonl", dir);
        eraser_dataset ds;
        eraser_results r;
        eraser_dataset_init(&ds);
        REQUIRE(eraser_load_split(&ds, dir, "test") == ADP_OK);
        REQUIRE(eraser_results_read(&r, path) == ADP_OK);
        const char *ids[] = {"d3"};
        REQUIRE(eraser_load_docs(&ds, dir, ids, 1) == ADP_OK);
        if (c == 0) {
            CHECK_INT(eraser_results_check(&r, &ds), ADP_ERR);
        } else {
            const char *d9[] = {"d9"};
            CHECK_INT(eraser_load_docs(&ds, dir, d9, 1), ADP_ERR); /* docs/d9: cannot open */
        }
        CHECK_MSG(strstr(adp_errmsg(), doc_cases[c].expect) != NULL, "doc case %zu: %s", c, adp_errmsg());
        eraser_results_free(&r);
        eraser_dataset_free(&ds);
    }
    /* soft predictions of the wrong length */
    write_file(dir, "results.jsonl",
               "{\"annotation_id\": \"a1\", \"rationales\": [{\"docid\": \"d1\", \"soft_rationale_predictions\": [0.5, 0.1]}]}\n");
    char path[4200];
    snprintf(path, sizeof path, "%s/results.jsonl", dir);
    eraser_dataset ds;
    eraser_results r;
    eraser_dataset_init(&ds);
    REQUIRE(eraser_load_split(&ds, dir, "test") == ADP_OK);
    REQUIRE(eraser_results_read(&r, path) == ADP_OK);
    CHECK_INT(eraser_results_check(&r, &ds), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "results.jsonl:1: soft_rationale_predictions: 2 values for document 'd1' of 10 words"));
    eraser_results_free(&r);
    eraser_dataset_free(&ds);
    /* an empty file */
    write_file(dir, "results.jsonl", "%s", "");
    CHECK_INT(eraser_results_read(&r, path), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "no results") != NULL);
    eraser_results_free(&r);
}
