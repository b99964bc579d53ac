#!/usr/bin/python3
"""ref_eraser_metrics.py: an independent Python implementation of the ERASER score file
(rationale_benchmark/metrics.py definitions, with the deviations documented in README.md),
used as the oracle for eraser/score.c.

It re-derives every number from the definitions with Python sets and Debian's sklearn /
scipy (precision_recall_curve + auc, average_precision_score, roc_auc_score,
classification_report, scipy.stats.entropy), sharing no code with the C side.

usage: ref_eraser_metrics.py --data DIR --split SPLIT --results FILE
                             [--iou-thresholds T ...] [--aopc-thresholds T ...]
                             [--compare C_SCORES.json] [--tol 1e-6]
Prints the score object as JSON; with --compare, also compares it with the C scorer's
output (same keys, numbers within tol, nulls where NaN) and exits 1 on any difference.
"""
import argparse
import json
import math
import os
import sys
import warnings

import numpy as np
from scipy.stats import entropy
from sklearn.metrics import (accuracy_score, auc, average_precision_score, classification_report,
                             precision_recall_curve, roc_auc_score)

warnings.filterwarnings("ignore")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def doc_words(data, docid):
    """Words of a document as utils.py splits them (docs/ layout)."""
    if os.path.exists(os.path.join(data, "docs.jsonl")):
        for d in read_jsonl(os.path.join(data, "docs.jsonl")):
            if d["docid"] == docid:
                return [w for line in d["document"].split("\n") for w in line.strip().split(" ")]
        raise KeyError(docid)
    with open(os.path.join(data, "docs", docid), encoding="utf-8") as f:
        lines = [l.strip() for l in f.readlines()]
    return [w for l in lines if l for w in l.split(" ") if w]


def doc_sentences(data, docid):
    with open(os.path.join(data, "docs", docid), encoding="utf-8") as f:
        return [l.strip() for l in f.readlines() if l.strip()]


def f1(p, r):
    return 0.0 if p == 0 or r == 0 else 2 * p * r / (p + r)


def div(a, b):
    return a / b if b > 0 else 0.0


def prf_sets(truth, pred):
    """truth, pred: sets of (ann_id, docid, unit).  token_prf / rationale_prf."""
    inter = truth & pred
    micro_p, micro_r = div(len(inter), len(pred)), div(len(inter), len(truth))
    by_key_t, by_key_p = {}, {}
    for u in truth:
        by_key_t.setdefault(u[:2], set()).add(u)
    for u in pred:
        by_key_p.setdefault(u[:2], set()).add(u)
    ps, rs, fs = [], [], []
    for k in set(by_key_t) | set(by_key_p):
        t, p = by_key_t.get(k, set()), by_key_p.get(k, set())
        pk = len(t & p) / len(p) if p else 0.0
        rk = len(t & p) / len(t) if t else 0.0
        ps.append(pk)
        rs.append(rk)
        fs.append(f1(pk, rk))
    n = len(ps)
    return {"instance_micro": {"p": micro_p, "r": micro_r, "f1": f1(micro_p, micro_r)},
            "instance_macro": {"p": div(sum(ps), n), "r": div(sum(rs), n), "f1": div(sum(fs), n)}}


def iou_scores(truth, pred, thresholds):
    """truth, pred: dict key -> set of (start, end)."""
    best = {}
    for k, spans in pred.items():
        gold = truth.get(k, set())
        vals = []
        for (ps, pe) in spans:
            b = 0.0
            pt = set(range(ps, pe))
            for (gs, ge) in gold:
                gt = set(range(gs, ge))
                u = len(pt | gt)
                b = max(b, len(pt & gt) / u if u else 0.0)
            vals.append(b)
        best[k] = vals
    out = []
    for th in thresholds:
        tp = {k: sum(v >= th for v in vals) for k, vals in best.items()}
        n_t = sum(len(v) for v in truth.values())
        n_p = sum(len(v) for v in pred.values())
        mr, mp = div(sum(tp.values()), n_t), div(sum(tp.values()), n_p)
        rs = [tp.get(k, 0) / len(v) for k, v in truth.items() if v]
        ps = [tp.get(k, 0) / len(v) for k, v in pred.items() if v]
        ar, ap = div(sum(rs), len(rs)), div(sum(ps), len(ps))
        out.append({"threshold": th, "micro": {"p": mp, "r": mr, "f1": f1(mr, mp)},
                    "macro": {"p": ap, "r": ar, "f1": f1(ar, ap)}})
    return out


def soft_scores(pairs):
    """pairs: list of (truth 0/1 list, score list)."""
    if not pairs:
        return {"auprc": 0.0, "average_precision": 0.0, "roc_auc_score": 0.0}
    auprcs, aps, rocs = [], [], []
    for t, s in pairs:
        p, r, _ = precision_recall_curve(t, s)
        auprcs.append(auc(r, p))
        if 0 < sum(t) < len(t):
            aps.append(average_precision_score(t, s))
            rocs.append(roc_auc_score(t, s))
    return {"auprc": float(np.mean(auprcs)),
            "average_precision": float(np.mean(aps)) if aps else float("nan"),
            "roc_auc_score": float(np.mean(rocs)) if rocs else float("nan")}


def kl(p_dict, q_dict):
    keys = list(q_dict)
    return entropy([p_dict[k] for k in keys], [q_dict[k] for k in keys])


def score(args):
    anns = read_jsonl(os.path.join(args.data, args.split + ".jsonl"))
    results = read_jsonl(args.results)
    words = {}

    def length(docid):
        if docid not in words:
            words[docid] = doc_words(args.data, docid)
        return len(words[docid])

    gold_spans = {}  # (ann, docid) -> set of spans
    for a in anns:
        for group in a["evidences"]:
            for ev in group:
                gold_spans.setdefault((a["annotation_id"], ev["docid"]), set()).add((ev["start_token"], ev["end_token"]))
    out = {}
    first_rats = [rat for res in results for rat in res["rationales"]]
    has_hard = any("hard_rationale_predictions" in rat for rat in first_rats)
    has_soft = any(rat.get("soft_rationale_predictions") is not None for rat in first_rats)
    has_sent = any(rat.get("soft_sentence_predictions") is not None for rat in first_rats)
    if has_hard:
        pred_spans = {}
        for res in results:
            for rat in res["rationales"]:
                for h in rat["hard_rationale_predictions"]:
                    pred_spans.setdefault((res["annotation_id"], rat["docid"]), set()).add((h["start_token"], h["end_token"]))
        out["iou_scores"] = iou_scores(gold_spans, pred_spans, args.iou_thresholds)
        span_t = {k + (s,) for k, v in gold_spans.items() for s in v}
        span_p = {k + (s,) for k, v in pred_spans.items() for s in v}
        out["rationale_prf"] = prf_sets(span_t, span_p)
        tok_t = {k + (i,) for k, v in gold_spans.items() for (s, e) in v for i in range(s, e)}
        tok_p = {k + (i,) for k, v in pred_spans.items() for (s, e) in v for i in range(s, e)}
        out["token_prf"] = prf_sets(tok_t, tok_p)
        # keep rates over the result documents
        tp = fp = pos = neg = 0
        fprs, tprs = [], []
        n_keys = 0
        for res in results:
            for rat in res["rationales"]:
                key = (res["annotation_id"], rat["docid"])
                n = length(rat["docid"])
                g = {i for (s, e) in gold_spans.get(key, ()) for i in range(s, e)}
                k = {i for (s, e) in pred_spans.get(key, ()) for i in range(s, e)}
                ktp, kfp, kpos, kneg = len(g & k), len(k - g), len(g), n - len(g)
                tp, fp, pos, neg = tp + ktp, fp + kfp, pos + kpos, neg + kneg
                if kneg:
                    fprs.append(kfp / kneg)
                if kpos:
                    tprs.append(ktp / kpos)
                n_keys += 1
        nan = float("nan")
        out["keep_rates"] = {"micro": {"fpr": fp / neg if neg else nan, "tpr": tp / pos if pos else nan},
                             "macro": {"fpr": float(np.mean(fprs)) if fprs else nan,
                                       "tpr": float(np.mean(tprs)) if tprs else nan},
                             "n_keys": n_keys}
    ann_by_id = {a["annotation_id"]: a for a in anns}
    if has_soft:
        pairs = []
        for res in results:
            for rat in res["rationales"]:
                key = (res["annotation_id"], rat["docid"])
                n = length(rat["docid"])
                g = {i for (s, e) in gold_spans.get(key, ()) for i in range(s, e)}
                pairs.append(([int(i in g) for i in range(n)], rat["soft_rationale_predictions"]))
        out["token_soft_metrics"] = soft_scores(pairs)
    if has_sent:
        pairs = []
        for res in results:
            for rat in res["rationales"]:
                n = len(doc_sentences(args.data, rat["docid"]))
                marked = set()
                a = ann_by_id.get(res["annotation_id"])
                for group in (a["evidences"] if a else []):
                    for ev in group:
                        if ev["docid"] == rat["docid"]:
                            marked |= set(range(ev.get("start_sentence", -1), ev.get("end_sentence", -1)))
                pairs.append(([int(i in marked) for i in range(n)], rat["soft_sentence_predictions"]))
        out["sentence_soft_metrics"] = soft_scores(pairs)
    if "classification" in results[0]:
        by_id = {r["annotation_id"]: r for r in results}
        labels = sorted({a["classification"] for a in anns})
        truth = [labels.index(a["classification"]) for a in anns]
        predicted = [labels.index(by_id[a["annotation_id"]]["classification"]) for a in anns]
        cs = {"accuracy": accuracy_score(truth, predicted),
              "prf": classification_report(truth, predicted, output_dict=True, target_names=labels)}
        nan = float("nan")
        for name, field in (("comprehensiveness", "comprehensiveness_classification_scores"),
                            ("sufficiency", "sufficiency_classification_scores")):
            if field in results[0]:
                cs[name] = float(np.mean([r["classification_scores"][r["classification"]] - r[field][r["classification"]]
                                          for r in results]))
                cs[name + "_entropy"] = float(np.mean([entropy(list(r["classification_scores"].values()))
                                                       - entropy(list(r[field].values())) for r in results]))
                cs[name + "_kl"] = float(np.mean([kl(r[field], r["classification_scores"]) for r in results]))
            else:
                cs[name] = cs[name + "_entropy"] = cs[name + "_kl"] = None
        if "thresholded_scores" in results[0]:
            th = args.aopc_thresholds
            rows_c, rows_s = [], []
            for r in results:
                kls = r["classification"]
                base = r["classification_scores"][kls]
                entries = sorted((e for e in r["thresholded_scores"] if e["threshold"] in th), key=lambda e: e["threshold"])
                assert len(entries) == len(th)
                rows_c.append([base - e["comprehensiveness_classification_scores"][kls] for e in entries])
                rows_s.append([base - e["sufficiency_classification_scores"][kls] for e in entries])
            cs["aopc_thresholds"] = th
            cs["comprehensiveness_aopc"] = float(np.mean(rows_c))
            cs["comprehensiveness_aopc_points"] = np.mean(rows_c, axis=0).tolist()
            cs["sufficiency_aopc"] = float(np.mean(rows_s))
            cs["sufficiency_aopc_points"] = np.mean(rows_s, axis=0).tolist()
        else:
            for k in ("aopc_thresholds", "comprehensiveness_aopc", "comprehensiveness_aopc_points", "sufficiency_aopc",
                      "sufficiency_aopc_points"):
                cs[k] = None
        if "tokens_to_flip" in results[0]:
            fracs = []
            for a in anns:
                docids = {ev["docid"] for g in a["evidences"] for ev in g}
                if not docids:
                    docids = set(a.get("docids") or []) or {rat["docid"] for rat in by_id[a["annotation_id"]]["rationales"]}
                fracs.append(by_id[a["annotation_id"]]["tokens_to_flip"] / sum(length(d) for d in docids))
            cs["tokens_to_flip"] = float(np.mean(fracs))
        else:
            cs["tokens_to_flip"] = None
        out["classification_scores"] = cs
    return out


def compare(want, got, tol, path="", worst=None):
    """Returns (list of differences, max abs difference)."""
    if worst is None:
        worst = [0.0]
    diffs = []
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(want) != set(got):
            return [f"{path}: keys {sorted(want) if isinstance(want, dict) else want} vs "
                    f"{sorted(got) if isinstance(got, dict) else got}"], worst
        for k in want:
            diffs += compare(want[k], got[k], tol, f"{path}.{k}", worst)[0]
    elif isinstance(want, list):
        if not isinstance(got, list) or len(want) != len(got):
            return [f"{path}: {want} vs {got}"], worst
        for i, (a, b) in enumerate(zip(want, got)):
            diffs += compare(a, b, tol, f"{path}[{i}]", worst)[0]
    elif want is None or (isinstance(want, float) and math.isnan(want)):
        if got is not None:
            diffs.append(f"{path}: want null, got {got}")
    else:
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return [f"{path}: want {want}, got {got}"], worst
        d = abs(float(want) - float(got))
        worst[0] = max(worst[0], d)
        if not d <= tol:
            diffs.append(f"{path}: want {want!r}, got {got!r} (diff {d:.3g})")
    return diffs, worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--iou-thresholds", type=float, nargs="+", default=[0.5])
    ap.add_argument("--aopc-thresholds", type=float, nargs="+", default=[0.01, 0.05, 0.1, 0.2, 0.5])
    ap.add_argument("--compare")
    ap.add_argument("--tol", type=float, default=1e-6)
    args = ap.parse_args()
    want = score(args)
    if not args.compare:
        json.dump(want, sys.stdout, sort_keys=True)
        print()
        return 0
    with open(args.compare) as f:
        got = json.load(f)
    diffs, worst = compare(want, got, args.tol)
    counts = {k: (len(v) if isinstance(v, (list, dict)) else 1) for k, v in want.items()}
    print(f"compared sections {sorted(counts)}; max abs difference {worst[0]:.3g} (tol {args.tol:g})")
    for d in diffs[:20]:
        print("  " + d)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
