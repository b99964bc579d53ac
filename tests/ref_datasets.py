#!/usr/bin/python3
"""ref_datasets.py: an independent reader of the raw dataset files, compared with the C
loaders' `adapler data dump` output.

Written from each PROVENANCE.md and README.md ("Datasets") with Python's csv and json
modules, not from the C code.  For every example of the split: same id, text, pair, label,
word count, rationale and (HateXplain) annotator rationales, in the same order.

  ref_datasets.py --data DIR --dataset NAME --split S --dump C_DUMP.jsonl
      [--split-seed 13] [--hatexplain-rationale union|majority]
Exit 0 when everything matches.
"""
import argparse
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_wordpiece import split_words  # noqa: E402  (BERT whitespace words)

csv.field_size_limit(1 << 30)
MASK64 = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def seeded_dev(labels, n_labels, seed):
    """README: per label, Fisher-Yates shuffle seeded with seed*0x100000001B3 + label,
    the first round(10%) = (n+5)//10 go to dev."""
    is_dev = [False] * len(labels)
    for c in range(n_labels):
        idx = [i for i, l in enumerate(labels) if l == c]
        st = (seed * 0x100000001B3 + c) & MASK64
        for i in range(len(idx), 1, -1):
            st, r = splitmix64(st)
            j = r % i
            idx[i - 1], idx[j] = idx[j], idx[i - 1]
        for i in idx[:(len(idx) + 5) // 10]:
            is_dev[i] = True
    return is_dev


def ex(id_, text, label, pair=None, rationale=None, annot=None):
    return {"id": id_, "text": text, "text_pair": pair, "label": label, "n_words": len(split_words(text)),
            "rationale": rationale, "annotator_rationales": annot}


def words_from_tokens(tokens, flags):
    out = []
    for t, f in zip(tokens, flags):
        out.extend([f] * len(split_words(t)))
    return out


def load_sst2(d, split):
    f = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}[split]
    rows = open(os.path.join(d, "sst2", f), encoding="utf-8").read().split("\n")
    head = rows[0].split("\t")
    out = []
    for k, line in enumerate(r for r in rows[1:] if r):
        fields = dict(zip(head, line.split("\t")))
        if split == "test":
            out.append(ex(fields["index"], fields["sentence"].strip(" "), -1))
        else:
            out.append(ex("%s-%d" % (split, k), fields["sentence"].strip(" "), int(fields["label"])))
    return out


def load_agnews(d, split, seed):
    names = ["World", "Sports", "Business", "Sci/Tech"]
    if split == "test":
        with open(os.path.join(d, "agnews", "test.csv"), encoding="utf-8", newline="") as f:
            return [ex("test-%d" % k, r[2], int(r[0]) - 1) for k, r in enumerate(csv.reader(f))]
    with open(os.path.join(d, "agnews", "train_subset10k_desc_only.tsv"), encoding="utf-8", newline="") as f:
        rows = [ex("train-%d" % k, r[0], names.index(r[1])) for k, r in enumerate(csv.reader(f, delimiter="\t"))]
    dev = seeded_dev([r["label"] for r in rows], 4, seed)
    return [r for r, v in zip(rows, dev) if v == (split == "dev")]


def load_imdb(d, split, seed):
    f = "test500.csv" if split == "test" else "train100.csv"
    pre = "test" if split == "test" else "train"
    with open(os.path.join(d, "imdb", f), encoding="utf-8", newline="") as fh:
        rows = [ex("%s-%d" % (pre, k), r["text"], ["neg", "pos"].index(r["label"]))
                for k, r in enumerate(csv.DictReader(fh))]
    if split == "test":
        return rows
    dev = seeded_dev([r["label"] for r in rows], 2, seed)
    return [r for r, v in zip(rows, dev) if v == (split == "dev")]


def load_hatexplain(d, split, how):
    key = {"train": "train", "dev": "val", "test": "test"}[split]
    ids = json.load(open(os.path.join(d, "hatexplain", "post_id_divisions.json")))[key]
    posts = {}
    with open(os.path.join(d, "hatexplain", "dataset.jsonl"), encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            posts[p["post_id"]] = p
    names = ["hatespeech", "normal", "offensive"]
    out = []
    for pid in ids:
        p = posts[pid]
        votes = [a["label"] for a in p["annotators"]]
        top = max(names, key=votes.count)
        if 2 * votes.count(top) <= len(votes):
            continue
        toks = p["post_tokens"]
        vecs = [v[:len(toks)] for v in p["rationales"]]
        text = " ".join(toks)
        rat = annot = None
        if vecs:
            if how == "union":
                agg = [int(any(col)) for col in zip(*vecs)]
            else:
                agg = [int(2 * sum(col) > len(vecs)) for col in zip(*vecs)]
            rat = words_from_tokens(toks, agg)
            annot = [words_from_tokens(toks, v) for v in vecs]
        out.append(ex(pid, text, names.index(top), rationale=rat, annot=annot))
    return out


def load_eraser_movies(d, split):
    f = {"train": "train.jsonl", "dev": "val.jsonl", "test": "test.jsonl"}[split]
    out = []
    with open(os.path.join(d, "eraser_movies", f), encoding="utf-8") as fh:
        for line in fh:
            a = json.loads(line)
            toks = open(os.path.join(d, "eraser_movies", "docs", a["annotation_id"]), encoding="utf-8").read().split()
            mark = [0] * len(toks)
            for group in a["evidences"]:
                for e in group:
                    for i in range(e["start_token"], e["end_token"]):
                        mark[i] = 1
            out.append(ex(a["annotation_id"], " ".join(toks), ["NEG", "POS"].index(a["classification"]),
                          rationale=mark))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--split-seed", type=int, default=13)
    ap.add_argument("--hatexplain-rationale", default="union")
    a = ap.parse_args()
    load = {
        "sst2": lambda: load_sst2(a.data, a.split),
        "agnews": lambda: load_agnews(a.data, a.split, a.split_seed),
        "imdb": lambda: load_imdb(a.data, a.split, a.split_seed),
        "hatexplain": lambda: load_hatexplain(a.data, a.split, a.hatexplain_rationale),
        "eraser_movies": lambda: load_eraser_movies(a.data, a.split),
    }[a.dataset]
    want = load()
    with open(a.dump, encoding="utf-8") as f:
        got = [json.loads(line) for line in f]
    bad = 0
    if len(got) != len(want):
        print("%s %s: C has %d examples, reference %d" % (a.dataset, a.split, len(got), len(want)))
        bad += 1
    for k, (g, w) in enumerate(zip(got, want)):
        for key in ("id", "text", "text_pair", "label", "n_words", "rationale", "annotator_rationales"):
            if g.get(key) != w[key]:
                bad += 1
                if bad <= 5:
                    print("%s %s example %d (%s): %s differs: C %r, reference %r" % (
                        a.dataset, a.split, k, w["id"], key, str(g.get(key))[:200], str(w[key])[:200]))
                break
    print("%s %s: %d examples compared, %d mismatches" % (a.dataset, a.split, len(want), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
