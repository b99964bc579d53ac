#!/usr/bin/python3
"""ref_wordpiece.py: an independent reference for the C WordPiece tokenizer.

A direct port of google-research/bert tokenization.py (BasicTokenizer + WordpieceTokenizer,
the same algorithm as Hugging Face's BertTokenizer), written with Python's own str.lower(),
str.split() and unicodedata (not utf8proc), plus [CLS]/[SEP], token types, longest-first
truncation and word ids.  Word ids are computed the C way (split the text on BERT's
whitespace, tokenize each word) and, as a check of that equivalence, the per-word pieces are
compared with a tokenization of the whole text on every line.

  ref_wordpiece.py --vocab V [--no-lower] [--max-len N] --check FILE.jsonl
      FILE lines hold "text", optional "text_pair", and the C output to check:
      "input_ids", optional "token_type_ids", "word_ids" (null for specials), "tokens".
      Exit 0 when every line matches; prints the first mismatches otherwise.
      With --input IN.jsonl the texts come from IN (line by line) and FILE only holds the
      C output (as written by `adapler tokenize`).
  ref_wordpiece.py --vocab V [--no-lower] [--max-len N] --encode IN.jsonl --out OUT.jsonl
      Writes the reference encoding of each input line.
  ref_wordpiece.py --unicode-sweep OUT.jsonl
      Writes one {"text"} line per code point assigned in this Python's Unicode version
      (surrogates excluded), the character alone, between letters, and next to a capital
      sigma (lower-casing context).
  ref_wordpiece.py --basic-check FILE.jsonl
      FILE lines hold "text" and the C BasicTokenizer's "lower" and "cased" token lists.
"""
import argparse
import functools
import json
import sys
import unicodedata


def load_vocab(path):
    vocab = {}
    with open(path, "rb") as f:
        data = f.read().decode("utf-8")
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for i, tok in enumerate(lines):
        if tok.endswith("\r"):
            tok = tok[:-1]
        vocab[tok] = i  # last occurrence wins, as in tokenization.load_vocab
    return vocab, lines


@functools.lru_cache(maxsize=None)  # per-character memo: speed only
def _is_whitespace(ch):
    if ch in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(ch) == "Zs"


@functools.lru_cache(maxsize=None)  # per-character memo: speed only
def _is_control(ch):
    if ch in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(ch).startswith("C")


@functools.lru_cache(maxsize=None)  # per-character memo: speed only
def _is_punctuation(ch):
    cp = ord(ch)
    if (33 <= cp <= 47) or (58 <= cp <= 64) or (91 <= cp <= 96) or (123 <= cp <= 126):
        return True
    return unicodedata.category(ch).startswith("P")


@functools.lru_cache(maxsize=None)  # per-character memo: speed only
def _is_chinese_char(cp):
    return ((0x4E00 <= cp <= 0x9FFF) or (0x3400 <= cp <= 0x4DBF) or (0x20000 <= cp <= 0x2A6DF)
            or (0x2A700 <= cp <= 0x2B73F) or (0x2B740 <= cp <= 0x2B81F) or (0x2B820 <= cp <= 0x2CEAF)
            or (0xF900 <= cp <= 0xFAFF) or (0x2F800 <= cp <= 0x2FA1F))


class BasicTokenizer:
    def __init__(self, do_lower_case=True):
        self.do_lower_case = do_lower_case

    def tokenize(self, text):
        text = self._clean_text(text)
        text = self._tokenize_chinese_chars(text)
        split_tokens = []
        for token in text.split():
            if self.do_lower_case:
                token = token.lower()
                token = self._run_strip_accents(token)
            split_tokens.extend(self._run_split_on_punc(token))
        return " ".join(split_tokens).split()

    def _run_strip_accents(self, text):
        text = unicodedata.normalize("NFD", text)
        return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")

    def _run_split_on_punc(self, text):
        output = []
        start_new_word = True
        for ch in text:
            if _is_punctuation(ch):
                output.append([ch])
                start_new_word = True
            else:
                if start_new_word:
                    output.append([])
                start_new_word = False
                output[-1].append(ch)
        return ["".join(x) for x in output]

    def _tokenize_chinese_chars(self, text):
        out = []
        for ch in text:
            if _is_chinese_char(ord(ch)):
                out.extend((" ", ch, " "))
            else:
                out.append(ch)
        return "".join(out)

    def _clean_text(self, text):
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            out.append(" " if _is_whitespace(ch) else ch)
        return "".join(out)


class WordpieceTokenizer:
    def __init__(self, vocab, unk_token="[UNK]", max_input_chars_per_word=100):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word

    def tokenize(self, text):
        output_tokens = []
        for token in text.split():
            chars = list(token)
            if len(chars) > self.max_input_chars_per_word:
                output_tokens.append(self.unk_token)
                continue
            is_bad = False
            start = 0
            sub_tokens = []
            while start < len(chars):
                end = len(chars)
                cur_substr = None
                while start < end:
                    substr = "".join(chars[start:end])
                    if start > 0:
                        substr = "##" + substr
                    if substr in self.vocab:
                        cur_substr = substr
                        break
                    end -= 1
                if cur_substr is None:
                    is_bad = True
                    break
                sub_tokens.append(cur_substr)
                start = end
            if is_bad:
                output_tokens.append(self.unk_token)
            else:
                output_tokens.extend(sub_tokens)
        return output_tokens


def _is_separator(ch):
    # The characters that end a whitespace token of the cleaned text: BERT's whitespace
    # (turned into " " by _clean_text) and the non-control characters str.split() splits on.
    return _is_whitespace(ch) or ch in ("\u2028", "\u2029")


def split_words(text):
    words, cur = [], None
    for ch in text:
        if _is_separator(ch):
            if cur is not None:
                words.append("".join(cur))
                cur = None
        else:
            if cur is None:
                cur = []
            cur.append(ch)
    if cur is not None:
        words.append("".join(cur))
    return words


class FullTokenizer:
    def __init__(self, vocab_path, do_lower_case=True):
        self.vocab, self.inv = load_vocab(vocab_path)
        self.basic = BasicTokenizer(do_lower_case)
        self.wordpiece = WordpieceTokenizer(self.vocab)
        self.cache = {}

    def pieces(self, text):
        out = []
        for tok in self.basic.tokenize(text):
            out.extend(self.wordpiece.tokenize(tok))
        return out

    def pieces_with_words(self, text):
        """(pieces, word ids); checks that per-word tokenization equals the whole-text one."""
        toks, words = [], []
        for i, w in enumerate(split_words(text)):
            p = self.cache.get(w)
            if p is None:
                p = self.pieces(w)
                if len(self.cache) < 2000000:
                    self.cache[w] = p
            toks.extend(p)
            words.extend([i] * len(p))
        whole = self.pieces(text)
        if whole != toks:
            raise AssertionError("per-word tokenization differs from the whole text: %r" % text[:200])
        return toks, words

    def encode(self, text, pair=None, max_len=0):
        a, wa = self.pieces_with_words(text)
        b, wb = self.pieces_with_words(pair) if pair is not None else ([], [])
        nspecial = 3 if pair is not None else 2
        if max_len:
            budget = max_len - nspecial
            while len(a) + len(b) > budget:  # _truncate_seq_pair
                if len(a) > len(b):
                    a.pop(); wa.pop()
                else:
                    b.pop(); wb.pop()
        tokens = ["[CLS]"] + a + ["[SEP]"]
        types = [0] * len(tokens)
        words = [None] + wa + [None]
        if pair is not None:
            tokens += b + ["[SEP]"]
            types += [1] * (len(b) + 1)
            words += wb + [None]
        ids = [self.vocab[t] for t in tokens]
        return {"input_ids": ids, "token_type_ids": types, "tokens": tokens, "word_ids": words}


def read_jsonl(path):
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.decode("utf-8")
            if line.strip():
                yield lineno, json.loads(line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab")
    ap.add_argument("--unicode-sweep")
    ap.add_argument("--basic-check")
    ap.add_argument("--no-lower", action="store_true")
    ap.add_argument("--max-len", type=int, default=0)
    ap.add_argument("--check")
    ap.add_argument("--input")
    ap.add_argument("--encode")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.unicode_sweep:
        with open(args.unicode_sweep, "w", encoding="utf-8") as out:
            for cp in range(0x110000):
                c = chr(cp)
                if 0xD800 <= cp <= 0xDFFF or unicodedata.category(c) == "Cn":
                    continue
                text = "%s x%sy AΣ%sa aΣ%s %sΣ" % (c, c, c, c, c)
                out.write(json.dumps({"cp": cp, "text": text}, ensure_ascii=False) + "\n")
        return 0
    if args.basic_check:
        lower, cased = BasicTokenizer(True), BasicTokenizer(False)
        bad = n = 0
        for lineno, row in read_jsonl(args.basic_check):
            n += 1
            want = {"lower": lower.tokenize(row["text"]), "cased": cased.tokenize(row["text"])}
            for key in ("lower", "cased"):
                if row[key] != want[key]:
                    bad += 1
                    if bad <= 10:
                        print("%s:%d: U+%04X %s: C %r, reference %r" % (args.basic_check, lineno, row.get("cp", -1), key,
                                                                      row[key], want[key]))
                    break
        print("checked %d lines: %d mismatches" % (n, bad))
        return 1 if bad or n == 0 else 0
    tk = FullTokenizer(args.vocab, not args.no_lower)
    if args.encode:
        with open(args.out, "w", encoding="utf-8") as out:
            for _, row in read_jsonl(args.encode):
                enc = tk.encode(row["text"], row.get("text_pair"), args.max_len)
                out.write(json.dumps(enc, ensure_ascii=False) + "\n")
        return 0
    bad = lines = pieces = 0
    rows = read_jsonl(args.check)
    if args.input:
        inputs = list(read_jsonl(args.input))
        outputs = list(rows)
        if len(inputs) != len(outputs):
            print("%s has %d lines, %s %d" % (args.input, len(inputs), args.check, len(outputs)))
            return 1
        rows = [(ln, dict(out, text=inp["text"], text_pair=inp.get("text_pair")))
                for (ln, inp), (_, out) in zip(inputs, outputs)]
    for lineno, row in rows:
        want = tk.encode(row["text"], row.get("text_pair"), args.max_len)
        lines += 1
        pieces += len(want["input_ids"])
        for key in ("input_ids", "token_type_ids", "word_ids", "tokens"):
            if key not in row:
                continue
            got = [None if (key == "word_ids" and w == -1) else w for w in row[key]]
            if got != want[key]:
                bad += 1
                if bad <= 5:
                    k = next((i for i, (x, y) in enumerate(zip(got, want[key])) if x != y), min(len(got), len(want[key])))
                    print("%s:%d: %s differ at [%d]: C %r, reference %r (text %r)" % (
                        args.check, lineno, key, k, got[k:k + 5], want[key][k:k + 5], row["text"][:120]))
                break
    print("checked %d lines, %d pieces: %d mismatches" % (lines, pieces, bad))
    return 1 if bad or lines == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
