/* test_tokenizer.c: the WordPiece tokenizer (hand-checked cases and, against the independent
 * Python reference tests/ref_wordpiece.py, adversarial strings and every line of every
 * dataset), `adapler tokenize` and its errors, and vocabulary learning. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "dataset.h"
#include "test.h"
#include "vocab_learn.h"
#include "wordpiece.h"

static const char *bin(void) {
    const char *b = getenv("ADAPLER_BIN");
    return b ? b : "bin/adapler";
}

/* A hand-written vocabulary with accents, CJK and Greek (ids = index). */
static const char *const HAND_VOCAB[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",                          /* 0-4 */
    "hello", "world", "##s", ",", "!", ".", "un", "##aff", "##able",       /* 5-13 */
    "cafe", "deja", "vu", "Café", "中", "文", "字", "国",                  /* 14-21 */
    "οδος", "σ", "ς", "α", "##ς", "##σ", "##α", "istanbul", "a", "##a",    /* 22-31 */
    "b", "straße", "e", "##e", "he", "##llo", "ﬁ", "x",                    /* 32-39 */
};
#define N_HAND (sizeof HAND_VOCAB / sizeof *HAND_VOCAB)

static int write_hand_vocab(char *path, size_t cap) {
    snprintf(path, cap, "%s/vocab_hand.txt", test_tmpdir());
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    for (size_t i = 0; i < N_HAND; i++) fprintf(f, "%s\n", HAND_VOCAB[i]);
    return fclose(f) == 0;
}

/* Encode text (uncased unless lower == 0) and compare the ids with want (specials
 * included, terminated by -99) and, if given, word ids. */
static void expect(int lower, const char *text, size_t len, const int *want, const int *words, int line) {
    wordpiece wp;
    wp_encoding enc = {0};
    if (wordpiece_from_list(&wp, HAND_VOCAB, N_HAND, lower) != ADP_OK) {
        test_fail(__FILE__, line, "vocabulary: %s", adp_errmsg());
        return;
    }
    if (wordpiece_encode(&wp, &enc, text, len, NULL, 0, 0) != ADP_OK) {
        test_fail(__FILE__, line, "encode: %s", adp_errmsg());
    } else {
        size_t n = 0;
        while (want[n] != -99) n++;
        int ok = enc.n == n;
        for (size_t i = 0; ok && i < n; i++) ok = enc.ids[i] == want[i] && (!words || enc.word_ids[i] == words[i]);
        if (!ok) {
            char got[512] = "";
            for (size_t i = 0; i < enc.n && strlen(got) < 450; i++)
                snprintf(got + strlen(got), sizeof got - strlen(got), " %s/%d", wordpiece_token(&wp, enc.ids[i]),
                         enc.word_ids[i]);
            test_fail(__FILE__, line, "'%s': got%s", text, got);
        }
    }
    wp_encoding_free(&enc);
    wordpiece_free(&wp);
}
#define EXPECT(lower, text, ...)                                                                   \
    do {                                                                                           \
        static const int want_[] = {__VA_ARGS__, -99};                                             \
        expect(lower, text, strlen(text), want_, NULL, __LINE__);                                  \
    } while (0)

TEST(tokenizer_hand_checked) {
    /* [CLS]=2 [SEP]=3 [UNK]=1 */
    static const int w1[] = {-1, 0, 0, 1, 1, 1, -1};
    static const int e1[] = {2, 5, 8, 6, 7, 9, 3, -99};
    expect(1, "Hello, worlds!", 14, e1, w1, __LINE__);
    EXPECT(1, "unaffable", 2, 11, 12, 13, 3);
    EXPECT(1, "Café Déjà vu", 2, 14, 15, 16, 3);           /* accents stripped */
    EXPECT(1, "Cafe\xcc\x81", 2, 14, 3);                    /* e + combining acute */
    EXPECT(0, "Café", 2, 17, 3);                            /* cased: kept as is */
    EXPECT(0, "cafe CAFÉ", 2, 14, 1, 3);                    /* cased: no lower-casing */
    static const int w2[] = {-1, 0, 0, 0, 1, 1, -1};
    static const int e2[] = {2, 18, 19, 20, 18, 21, 3, -99};
    expect(1, "中文字 中国", strlen("中文字 中国"), e2, w2, __LINE__); /* one piece per ideograph */
    static const int w3[] = {-1, 0, 1, 2, -1};
    static const int e3[] = {2, 30, 32, 30, 3, -99};
    expect(1, "a\xc2\xa0" "b\xe3\x80\x80" "a", strlen("a\xc2\xa0" "b\xe3\x80\x80" "a"), e3, w3, __LINE__); /* NBSP, U+3000 */
    EXPECT(1, "he\x01llo hel\xe2\x80\x8blo \xef\xbf\xbd", 2, 5, 5, 3);   /* control, ZWSP, U+FFFD dropped */
    expect(1, "hel\0lo", 6, (const int[]){2, 5, 3, -99}, NULL, __LINE__); /* NUL dropped */
    EXPECT(1, "hellox", 2, 1, 3);                           /* no "##x": the whole word is [UNK] */
    EXPECT(1, "ΟΔΟΣ", 2, 22, 3);                            /* final sigma */
    EXPECT(1, "Σ ΑΣ ΑΣΑ", 2, 23, 25, 26, 25, 27, 28, 3);    /* σ; ας; ασα */
    EXPECT(1, "İSTANBUL", 2, 29, 3);                        /* İ -> i + U+0307 -> i */
    EXPECT(1, "STRASSE Straße", 2, 1, 33, 3);               /* ß is not SS when lower-casing */
    EXPECT(1, "ﬁ", 2, 38, 3);                               /* compatibility ligature: NFD keeps it */
    EXPECT(1, "", 2, 3);
    EXPECT(1, " \t\r\n ", 2, 3);
    /* 100 characters are WordPiece'd, 101 are [UNK]; counted after accent stripping */
    char buf[512];
    int want[128];
    memset(buf, 'a', 100);
    want[0] = 2, want[1] = 30;
    for (int i = 2; i <= 100; i++) want[i] = 31;
    want[101] = 3, want[102] = -99;
    expect(1, buf, 100, want, NULL, __LINE__);
    memset(buf, 'a', 101);
    expect(1, buf, 101, (const int[]){2, 1, 3, -99}, NULL, __LINE__);
    for (int i = 0; i < 100; i++) memcpy(buf + 3 * i, "e\xcc\x81", 3); /* 200 code points, 100 after NFD + strip */
    want[1] = 34;
    for (int i = 2; i <= 100; i++) want[i] = 35;
    expect(1, buf, 300, want, NULL, __LINE__);
}

TEST(tokenizer_pairs_truncation_offsets) {
    wordpiece wp;
    wp_encoding enc = {0};
    REQUIRE(wordpiece_from_list(&wp, HAND_VOCAB, N_HAND, 1) == ADP_OK);
    const char *a = "a a a a a a a a a a", *b = "b b b b";
    /* budget 10 - 3 = 7: trim the longer side until equal (4, 4), then the pair (4, 3) */
    REQUIRE(wordpiece_encode(&wp, &enc, a, strlen(a), b, strlen(b), 10) == ADP_OK);
    CHECK_INT(enc.n, 10);
    CHECK_INT(enc.n_a, 4);
    CHECK_INT(enc.n_b, 3);
    CHECK_INT(enc.n_truncated, 7);
    static const int ids[] = {2, 30, 30, 30, 30, 3, 32, 32, 32, 3};
    static const int types[] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
    static const int words[] = {-1, 0, 1, 2, 3, -1, 0, 1, 2, -1};
    for (int i = 0; i < 10; i++) {
        CHECK_INT(enc.ids[i], ids[i]);
        CHECK_INT(enc.type_ids[i], types[i]);
        CHECK_INT(enc.word_ids[i], words[i]);
    }
    /* no pair: only [CLS] and one [SEP] are reserved */
    REQUIRE(wordpiece_encode(&wp, &enc, a, strlen(a), NULL, 0, 5) == ADP_OK);
    CHECK_INT(enc.n, 5);
    CHECK_INT(enc.ids[4], 3);
    CHECK_INT(wordpiece_encode(&wp, &enc, a, strlen(a), b, strlen(b), 2), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "max_len") != NULL);
    /* byte offsets into the input: "Café" is 5 bytes, the piece "cafe" covers all of them */
    const char *t = "Café Déjà, unaffable";
    REQUIRE(wordpiece_encode(&wp, &enc, t, strlen(t), NULL, 0, 0) == ADP_OK);
    static const int st[] = {-1, 0, 6, 12, 14, 16, 19, -1}, en[] = {-1, 5, 12, 13, 16, 19, 23, -1};
    REQUIRE(enc.n == 8);
    for (int i = 0; i < 8; i++) {
        CHECK_INT(enc.start[i], st[i]);
        CHECK_INT(enc.end[i], en[i]);
    }
    wp_encoding_free(&enc);
    wordpiece_free(&wp);
}

TEST(tokenizer_invalid_utf8_is_an_error) {
    wordpiece wp;
    wp_encoding enc = {0};
    REQUIRE(wordpiece_from_list(&wp, HAND_VOCAB, N_HAND, 1) == ADP_OK);
    static const struct {
        const char *s;
        const char *msg;
    } cases[] = {
        {"\xff", "text: invalid UTF-8 at byte 0"},
        {"ab\xc3", "text: invalid UTF-8 at byte 2"},         /* truncated sequence */
        {"a\xc0\xaf", "text: invalid UTF-8 at byte 1"},      /* overlong "/" */
        {"ab \xed\xa0\x80", "text: invalid UTF-8 at byte 3"}, /* UTF-16 surrogate */
        {"\xf4\x90\x80\x80", "text: invalid UTF-8 at byte 0"}, /* above U+10FFFF */
        {"hello \x80", "text: invalid UTF-8 at byte 6"},     /* lone continuation byte */
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        CHECK_INT(wordpiece_encode(&wp, &enc, cases[k].s, strlen(cases[k].s), NULL, 0, 0), ADP_ERR);
        CHECK_STR(adp_errmsg(), cases[k].msg);
    }
    CHECK_INT(wordpiece_encode(&wp, &enc, "ok", 2, "\xfe", 1, 0), ADP_ERR);
    CHECK_STR(adp_errmsg(), "text_pair: invalid UTF-8 at byte 0");
    wp_encoding_free(&enc);
    wordpiece_free(&wp);
    /* the vocabulary file too, with its line */
    char path[4200];
    snprintf(path, sizeof path, "%s/bad_vocab.txt", test_tmpdir());
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\nab\xff\n", f);
    fclose(f);
    CHECK_INT(wordpiece_load(&wp, path, 1), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "bad_vocab.txt:line 5: invalid UTF-8 at byte 2") != NULL);
    f = fopen(path, "w");
    REQUIRE(f);
    fputs("[PAD]\n[CLS]\n[SEP]\nab\n", f);
    fclose(f);
    CHECK_INT(wordpiece_load(&wp, path, 1), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "no [UNK] token") != NULL);
}

TEST(tokenizer_cli_errors_name_the_line) {
    char vocab[4200];
    REQUIRE(write_hand_vocab(vocab, sizeof vocab));
    const char *dir = test_tmpdir();
    struct {
        const char *input, *want;
    } cases[] = {
        {"{\"text\": \"hello\"}\n{\"text\": \"ab\xc3(\"}\n", "<stdin>:2: text: invalid UTF-8 at byte 2"},
        {"{\"text\": \"hello\"}\n\n{\"text\": \"a\", \"text_pair\": \"\xff\"}\n", "<stdin>:3: text_pair: invalid UTF-8 at byte 0"},
        {"{\"text\": \"hello\"\n", "<stdin>:1: not a JSON object"},
        {"{\"txt\": \"hello\"}\n", "<stdin>:1: no \"text\" string"},
        {"{\"text\": 3}\n", "<stdin>:1: \"text\" is not a string"},
        {"{\"text\": \"a\\u0000b\"}\n", "<stdin>:1: \\u0000 in a string is not supported"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char in[4200];
        snprintf(in, sizeof in, "%s/in%zu.jsonl", dir, k);
        FILE *f = fopen(in, "w");
        REQUIRE(f);
        fputs(cases[k].input, f);
        fclose(f);
        int st = test_sh("'%s' tokenize --vocab '%s' < '%s' 2>'%s/err' >/dev/null; r=$?; cat '%s/err'; exit $r", bin(),
                         vocab, in, dir, dir);
        CHECK_INT(st, 1);
        char want[512];
        snprintf(want, sizeof want, "tokenize: %s\n", cases[k].want);
        CHECK_STR(test_sh_output(), want);
    }
    CHECK_INT(test_sh("'%s' tokenize --vocab '%s/nope.txt' < /dev/null", bin(), dir), 1);
    CHECK(strstr(test_sh_output(), "nope.txt: cannot open") != NULL);
    CHECK_INT(test_sh("'%s' tokenize < /dev/null", bin()), 2);
}

TEST(tokenizer_cli_output_format) {
    char vocab[4200];
    REQUIRE(write_hand_vocab(vocab, sizeof vocab));
    int st = test_sh("printf '%%s\\n' '{\"id\": 7, \"text\": \"Hello, worlds!\", \"text_pair\": \"中国\"}' | '%s' tokenize "
                     "--vocab '%s' --offsets",
                     bin(), vocab);
    REQUIRE(st == 0);
    CHECK_STR(test_sh_output(),
              "{\"id\":7,\"input_ids\":[2,5,8,6,7,9,3,18,21,3],\"token_type_ids\":[0,0,0,0,0,0,0,1,1,1],"
              "\"tokens\":[\"[CLS]\",\"hello\",\",\",\"world\",\"##s\",\"!\",\"[SEP]\",\"中\",\"国\",\"[SEP]\"],"
              "\"word_ids\":[null,0,0,1,1,1,null,0,0,null],"
              "\"offsets\":[null,[0,5],[5,6],[7,12],[12,13],[13,14],null,[0,3],[3,6],null]}\n");
}

/* ---- against the Python reference ---- */

static const char *const POOL[] = {
    "a", "b", "e", "n", "s", "t", "o", "Q", "Z", "0", "7", " ", "  ", "\t", "\n", "\r", ".", ",", "'", "\"", "-", "#",
    "##", "$", "(", "@", "[", "]", "{", "~", "^", "`", "é", "É", "è", "ñ", "Å", "ß", "ẞ", "İ", "ı", "Σ", "Α", "Ω",
    "σ", "ς", "Ё", "ё", "\xcc\x81" /* U+0301 */, "\xcc\x88", "\xcc\xa7", "\xe0\xa4\x95\xe0\xa4\xbf" /* Devanagari + Mc */,
    "中", "文", "\xe3\x90\x80" /* U+3400 */, "\xf0\xa0\x80\x80" /* U+20000 */, "\xef\xa4\x80" /* U+F900 */, "한",
    "😀", "\xe2\x80\x8d" /* ZWJ */, "\xf0\x9f\x8f\xbd" /* skin tone */, "\xef\xb8\x8f" /* VS16 */,
    "\xe2\x80\x8b" /* ZWSP */, "\xef\xbb\xbf" /* BOM */, "\xc2\xad" /* soft hyphen */, "\xc2\xa0" /* NBSP */,
    "\xe3\x80\x80" /* U+3000 */, "\xe2\x80\xa8" /* U+2028 */, "\xe2\x80\xa9", "\xc2\x85" /* NEL */, "\x01", "\x1c",
    "\x1f", "\x0b", "\x7f", "\xef\xbf\xbd" /* U+FFFD */, "\xee\x80\x80" /* private use */, "\xef\xac\x81" /* ﬁ */,
    "\xe2\x84\xaa" /* Kelvin */, "\xe2\x84\xa6" /* Ohm */, "\xe2\x84\xab" /* Angstrom */, "\xef\xbc\xa1" /* Ａ */,
    "\xd8\xb9", "\xd7\xa9\xd7\x81" /* shin + point */, "\xe0\xb8\x81", "\xe2\x80\x94", "\xe2\x80\x9c", "\xc2\xbf",
    "\xc2\xb4" /* Sk */, "\xcd\xb8" /* unassigned */, "\xe1\xbe\x82" /* 4-way decomposition */, "\xc7\x85" /* Lt */,
    "\xe2\x85\xa0" /* Nl, cased */, "\xc2\xaa", "\xca\xb0" /* Lm */, "\xe2\x80\x99", "\xc2\xb7", "\xef\xbc\x8e",
    "\xf0\x9f\x84\xb0" /* squared A */, "\xe1\x84\x80" /* jamo */, "\xe2\x80\x8e" /* LRM */, "\xe2\x81\xa0",
};
#define N_POOL (sizeof POOL / sizeof *POOL)

/* Adversarial texts: hand-picked ones, long words, then random strings from POOL. */
static int write_adversarial(const char *dir, unsigned seed, int with_pairs) {
    char path[4200];
    snprintf(path, sizeof path, "%s/adv.jsonl", dir);
    FILE *f = fopen(path, "w");
    snprintf(path, sizeof path, "%s/adv.txt", dir);
    FILE *g = fopen(path, "w");
    if (!f || !g) return 0;
    static const char *const fixed[] = {
        "Hello, World! Ça va? Déjà-vu.", "ΟΔΟΣ ΟΔΟΣ. ΑΣ' ΑΣΑ Σ ἈΣ ᾼΣ ΑΣ\xcc\x81", "İstanbul DİYARBAKIR ıi",
        "中文字abc中 国x", "👩\xe2\x80\x8d💻 👍🏽 ❤\xef\xb8\x8f", "a\xcc\x88\xcc\xa7 a\xcc\xa7\xcc\x88", "ﬁne ＦＵＬＬ Ｗｉｄｔｈ",
        "tab\tnew\nline\rcr", "nbsp\xc2\xa0" "here\xe3\x80\x80" "there\xe2\x80\xa8" "end", "zero\xe2\x80\x8bwidth\xef\xbb\xbf!",
        "ctl\x01\x02\x1f\x7f" "chars", "Straße STRASSE ẞ", "Ǆemal ǅemal ǆemal", "[CLS] [SEP] [UNK] ## #a ##b",
        "It's 3.14 -- $5 (yes) {no} <maybe> @user #tag", "\xef\xbf\xbd\xef\xbf\xbd", "", "   ",
    };
    unsigned st = seed;
    char text[4096], pair[4096];
    int n = 0;
    for (int k = 0; k < 3200; k++) {
        size_t len = 0;
        if (k < (int)(sizeof fixed / sizeof *fixed)) {
            snprintf(text, sizeof text, "%s", fixed[k]);
            len = strlen(text);
        } else if (k < 40) { /* long words around the 100-character rule */
            const char *unit = (k % 4 == 0) ? "a" : (k % 4 == 1) ? "é" : (k % 4 == 2) ? "e\xcc\x81" : "中";
            int reps = 97 + (k % 7);
            for (int r = 0; r < reps; r++) memcpy(text + len, unit, strlen(unit)), len += strlen(unit);
            text[len] = 0;
        } else {
            int nsym = 1 + (int)(test_rand(&st) % 40);
            for (int s = 0; s < nsym; s++) {
                /* letters most of the time so words and ## pieces form */
                const char *c = (test_rand(&st) % 3) ? POOL[test_rand(&st) % 11] : POOL[test_rand(&st) % N_POOL];
                size_t l = strlen(c);
                memcpy(text + len, c, l);
                len += l;
            }
            text[len] = 0;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "text", text);
        if (with_pairs && k % 2) {
            size_t pl = 0;
            int nsym = 1 + (int)(test_rand(&st) % 30);
            for (int s = 0; s < nsym; s++) {
                const char *c = (test_rand(&st) % 2) ? POOL[test_rand(&st) % 12] : POOL[test_rand(&st) % N_POOL];
                memcpy(pair + pl, c, strlen(c));
                pl += strlen(c);
            }
            pair[pl] = 0;
            cJSON_AddStringToObject(o, "text_pair", pair);
        }
        char *s = cJSON_PrintUnformatted(o);
        fprintf(f, "%s\n", s);
        cJSON_free(s);
        cJSON_Delete(o);
        fprintf(g, "%s\n", text);
        n++;
    }
    fclose(g);
    return fclose(f) == 0 && n > 0;
}

/* Tokenize dir/adv.jsonl with the C CLI and check it line by line against Python. */
static void check_adv(const char *dir, const char *vocab, const char *flags, int max_len) {
    int st = test_sh("'%s' tokenize --vocab '%s' %s --max-len %d --in '%s/adv.jsonl' --out '%s/c.jsonl'", bin(), vocab,
                     flags, max_len, dir, dir);
    CHECK_MSG(st == 0, "tokenize %s: %s", flags, test_sh_output());
    CHECK_INT(test_python("ref_wordpiece.py", "--vocab '%s' %s --max-len %d --input '%s/adv.jsonl' --check '%s/c.jsonl'",
                          vocab, flags, max_len, dir, dir),
              0);
    if (test_verbose()) fprintf(stderr, "    %s", test_sh_output());
}

TEST(tokenizer_adversarial_matches_python) {
    const char *dir = test_tmpdir();
    char vocab[4200];
    REQUIRE(write_hand_vocab(vocab, sizeof vocab));
    REQUIRE(write_adversarial(dir, 12345u, 0));
    /* a vocabulary learned from the strings themselves (many ## pieces), uncased and cased */
    REQUIRE(test_sh("'%s' vocab --corpus '%s/adv.txt' --size 600 --out '%s/v_lower.txt'", bin(), dir, dir) == 0);
    REQUIRE(test_sh("'%s' vocab --corpus '%s/adv.txt' --size 900 --no-lower --out '%s/v_cased.txt'", bin(), dir, dir) == 0);
    char v[4200];
    snprintf(v, sizeof v, "%s/v_lower.txt", dir);
    check_adv(dir, v, "", 0);
    check_adv(dir, vocab, "", 0); /* the hand vocabulary: mostly [UNK] and partial matches */
    snprintf(v, sizeof v, "%s/v_cased.txt", dir);
    check_adv(dir, v, "--no-lower", 0);
    /* pairs with truncation */
    REQUIRE(write_adversarial(dir, 777u, 1));
    snprintf(v, sizeof v, "%s/v_lower.txt", dir);
    check_adv(dir, v, "", 24);
    check_adv(dir, v, "", 3);
}

/* ---- vocabulary learning ---- */

static int learn(const char *corpus, size_t size, int64_t min_freq, char ***tok, size_t *n) {
    vocab_learner vl;
    vocab_learner_init(&vl, 1);
    int rc = vocab_learner_add(&vl, corpus, strlen(corpus));
    size_t na = 0;
    if (rc == ADP_OK) rc = vocab_learner_build(&vl, size, min_freq, tok, n, &na);
    vocab_learner_free(&vl);
    return rc;
}

TEST(vocab_learning_hand_checked) {
    char **tok = NULL;
    size_t n = 0;
    /* words ab x3, abc x1: alphabet a ##b ##c; best pair (a, ##b) x4 -> "ab"; then
     * (ab, ##c) occurs once, below min_freq 2 */
    REQUIRE(learn("ab ab AB abc", 100, 2, &tok, &n) == ADP_OK);
    static const char *want[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "##b", "##c", "ab"};
    CHECK_INT(n, 9);
    for (size_t i = 0; i < 9 && i < n; i++) CHECK_STR(tok[i], want[i]);
    vocab_tokens_free(tok, n);
    REQUIRE(learn("ab ab AB abc", 100, 1, &tok, &n) == ADP_OK);
    CHECK_INT(n, 10);
    if (n == 10) CHECK_STR(tok[9], "abc");
    vocab_tokens_free(tok, n);
    /* size is a hard limit; too small for the alphabet is an error */
    REQUIRE(learn("ab ab AB abc", 8, 1, &tok, &n) == ADP_OK);
    CHECK_INT(n, 8);
    vocab_tokens_free(tok, n);
    CHECK_INT(learn("ab ab AB abc", 7, 1, &tok, &n), ADP_ERR);
    CHECK(strstr(adp_errmsg(), "use at least 8") != NULL);
    /* ties: (##b, ##c) and (a, ##b) both twice in "abc abc"; the smaller pair ("##b" < "a") wins */
    REQUIRE(learn("abc abc", 9, 1, &tok, &n) == ADP_OK);
    CHECK_INT(n, 9);
    if (n == 9) CHECK_STR(tok[8], "##bc");
    vocab_tokens_free(tok, n);
}

TEST(vocab_learning_covers_every_character) {
    const char *dir = test_tmpdir();
    REQUIRE(write_adversarial(dir, 4242u, 0));
    REQUIRE(test_sh("'%s' vocab --corpus '%s/adv.txt' --size 700 --out '%s/v1.txt' && "
                    "'%s' vocab --corpus '%s/adv.txt' --size 700 --out '%s/v2.txt' && cmp '%s/v1.txt' '%s/v2.txt'",
                    bin(), dir, dir, bin(), dir, dir, dir, dir) == 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/v1.txt", dir);
    wordpiece wp;
    REQUIRE(wordpiece_load(&wp, path, 1) == ADP_OK);
    CHECK_INT(wp.n, 700);
    for (int i = 0; i < VOCAB_N_SPECIAL; i++) CHECK_INT(wordpiece_id(&wp, VOCAB_SPECIALS[i]), i);
    /* every line of the corpus encodes without [UNK] (except words over 100 characters) */
    char *data = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/adv.txt", dir);
    REQUIRE(adp_read_file(path, &data, &len) == ADP_OK);
    wp_encoding enc = {0};
    size_t unk = 0, pieces = 0;
    basic_tokenizer bt;
    basic_tokenizer_init(&bt, 1);
    for (char *p = data, *end = data + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        REQUIRE(wordpiece_tokenize(&wp, &enc, p, (size_t)(e - p)) == ADP_OK);
        REQUIRE(basic_tokenize(&bt, p, (size_t)(e - p)) == ADP_OK);
        size_t long_words = 0;
        for (size_t t = 0; t < bt.n_tok; t++) long_words += bt.tok[t].n_cp > WP_MAX_WORD_CHARS;
        size_t u = 0;
        for (size_t i = 0; i < enc.n; i++) u += enc.ids[i] == wp.unk_id;
        CHECK_INT(u, long_words);
        unk += u;
        pieces += enc.n;
        p = e + 1;
    }
    CHECK(pieces > 10000);
    basic_tokenizer_free(&bt);
    wp_encoding_free(&enc);
    wordpiece_free(&wp);
    free(data);
    /* invalid UTF-8 in a corpus names the file and line; a tiny size names the minimum */
    snprintf(path, sizeof path, "%s/bad.txt", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs("fine\nalso fine\nbro\xc3ken\n", f);
    fclose(f);
    CHECK_INT(test_sh("'%s' vocab --corpus '%s' --size 100 --out '%s/v3.txt'", bin(), path, dir), 1);
    CHECK(strstr(test_sh_output(), "bad.txt:3: invalid UTF-8 at byte 3") != NULL);
    CHECK_INT(test_sh("'%s' vocab --corpus '%s/adv.txt' --size 20 --out '%s/v3.txt'", bin(), dir, dir), 1);
    CHECK(strstr(test_sh_output(), "cannot hold the 5 special tokens") != NULL);
    struct stat sb;
    snprintf(path, sizeof path, "%s/v3.txt", dir);
    CHECK(stat(path, &sb) != 0); /* nothing written on failure */
}

/* ---- every line of every dataset ---- */

/* data/ (make data) must exist for these; run `make data` once if it does not. */
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

/* Learn a vocabulary on the train split (or take `vocab`), dump every split with ids
 * (no truncation) and check every line against the Python reference. */
static void check_dataset(const char *name, size_t size, const char *vocab_from) {
    if (strcmp(name, "planted") && !have_data(name)) return;
    const char *dir = test_tmpdir(), *root = test_root();
    char vocab[4200];
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", dir);
    REQUIRE(test_sh("cd '%s' && '%s' vocab --dataset %s --size %zu --out '%s'", root, bin(),
                    vocab_from ? vocab_from : name, size, vocab) == 0);
    for (int s = 0; s < N_SPLITS; s++) {
        const char *sp = split_name((split_id)s);
        int st = test_sh("cd '%s' && '%s' data dump --dataset %s --split %s --vocab '%s' --max-len 0 > '%s/%s.jsonl'", root,
                         bin(), name, sp, vocab, dir, sp);
        CHECK_MSG(st == 0, "dump %s %s: %s", name, sp, test_sh_output());
        CHECK_INT(test_python("ref_wordpiece.py", "--vocab '%s' --check '%s/%s.jsonl'", vocab, dir, sp), 0);
        if (test_verbose()) fprintf(stderr, "    %s %s: %s", name, sp, test_sh_output());
    }
}

TEST(tokenizer_python_sst2) { check_dataset("sst2", 8000, NULL); }
TEST(tokenizer_python_agnews) { check_dataset("agnews", 8000, NULL); }
TEST(tokenizer_python_hatexplain) { check_dataset("hatexplain", 8000, NULL); }
/* a small vocabulary learned on other data: emoji and rare characters become [UNK] */
TEST(tokenizer_python_hatexplain_foreign_vocab) { check_dataset("hatexplain", 400, "sst2"); }
TEST(tokenizer_python_eraser_movies) { check_dataset("eraser_movies", 8000, NULL); }
TEST(tokenizer_python_imdb) { check_dataset("imdb", 3000, NULL); }
TEST(tokenizer_python_planted) { check_dataset("planted", 2000, NULL); }

/* Sentence pairs with truncation, through a GLUE-style tsv:DIR task built from SST-2. */
TEST(tokenizer_python_pairs_truncated) {
    if (!have_data("sst2")) return;
    const char *dir = test_tmpdir(), *root = test_root();
    REQUIRE(test_sh("mkdir -p '%s/pairs' && cd '%s' && "
                    "awk -F'\\t' 'NR>1 {print $1}' data/sst2/dev.tsv > '%s/s.txt' && "
                    "tail -n +2 '%s/s.txt' > '%s/s2.txt' && "
                    "(printf 'premise\\thypothesis\\tlabel\\n'; paste '%s/s.txt' '%s/s2.txt' | "
                    " awk -F'\\t' 'NF==2 && $2!=\"\" {print $1\"\\t\"$2\"\\t\"(NR%%3)}') > '%s/pairs/train.tsv' && "
                    "cp '%s/pairs/train.tsv' '%s/pairs/dev.tsv'",
                    dir, root, dir, dir, dir, dir, dir, dir, dir, dir) == 0);
    char vocab[4200];
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", dir);
    REQUIRE(test_sh("cd '%s' && '%s' vocab --dataset sst2 --size 3000 --out '%s'", root, bin(), vocab) == 0);
    for (int ml = 16; ml <= 64; ml *= 2) {
        int st = test_sh("'%s' data dump --dataset 'tsv:%s/pairs' --text-col premise --pair-col hypothesis --label-col label "
                         "--split dev --vocab '%s' --max-len %d > '%s/p.jsonl'",
                         bin(), dir, vocab, ml, dir);
        CHECK_MSG(st == 0, "dump: %s", test_sh_output());
        CHECK_INT(test_python("ref_wordpiece.py", "--vocab '%s' --max-len %d --check '%s/p.jsonl'", vocab, ml, dir), 0);
    }
}

/* Every code point Python's unicodedata knows: the C BasicTokenizer (character classes,
 * lower-casing with its context rules, NFD, accent stripping, punctuation, CJK) against
 * the reference, uncased and cased. */
TEST(tokenizer_unicode_sweep_matches_python) {
    const char *dir = test_tmpdir();
    REQUIRE(test_python("ref_wordpiece.py", "--unicode-sweep '%s/sweep.jsonl'", dir) == 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/sweep.jsonl", dir);
    char *data = NULL;
    size_t len = 0;
    REQUIRE(adp_read_file(path, &data, &len) == ADP_OK);
    snprintf(path, sizeof path, "%s/basic.jsonl", dir);
    FILE *out = fopen(path, "w");
    REQUIRE(out);
    basic_tokenizer bt[2];
    basic_tokenizer_init(&bt[0], 1);
    basic_tokenizer_init(&bt[1], 0);
    size_t n = 0;
    for (char *p = data, *end = data + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        *e = 0;
        cJSON *row = cJSON_Parse(p);
        p = e + 1;
        REQUIRE(row);
        const char *text = cJSON_GetObjectItem(row, "text")->valuestring;
        for (int k = 0; k < 2; k++) {
            REQUIRE(basic_tokenize(&bt[k], text, strlen(text)) == ADP_OK);
            cJSON *toks = cJSON_CreateArray();
            for (size_t t = 0; t < bt[k].n_tok; t++) {
                char *s = strndup(bt[k].buf + bt[k].tok[t].off, bt[k].tok[t].len);
                cJSON_AddItemToArray(toks, cJSON_CreateString(s));
                free(s);
            }
            cJSON_AddItemToObject(row, k ? "cased" : "lower", toks);
        }
        char *s = cJSON_PrintUnformatted(row);
        fprintf(out, "%s\n", s);
        cJSON_free(s);
        cJSON_Delete(row);
        n++;
    }
    fclose(out);
    free(data);
    basic_tokenizer_free(&bt[0]);
    basic_tokenizer_free(&bt[1]);
    CHECK(n > 100000);
    CHECK_INT(test_python("ref_wordpiece.py", "--basic-check '%s'", path), 0);
    if (test_verbose()) fprintf(stderr, "    %s", test_sh_output());
}
