"""PyTorch reference for the C encoder (the numeric oracle of the parity tests).

Written from the BERT paper and Hugging Face's BertForSequenceClassification semantics,
independently of the C code: one sequence at a time (no packing), float64.

  ref_bert.py make --out DIR --layers L --hidden H --heads A --inter I [--seed S]
                   [--ln-style weight|gamma] [--no-prefix] [--dtype F32|F16|BF16]
      writes a random model in Hugging Face layout (config.json, model.safetensors)
  ref_bert.py run --model DIR --out FILE --lengths 1,7,512 [--pairs] [--seed S]
                  [--schedule l:f,...] [--point input|attention]
      draws random inputs, runs the reference (optionally dropping tokens with the
      'schedule' rule of engine/prune.h), and writes FILE (safetensors) with the inputs
      (input_ids, token_type_ids, offsets), the logits, and for the embeddings and every
      layer the packed hidden states (hidden_emb, hidden_<l>) and surviving positions.
  ref_bert.py make ... --adapler
      also adds random AdapLeR Contribution Predictors and etas (engine/adapler.h names)
  ref_bert.py run ... --adapler [--eta-scale S]
      drops tokens with AdapLeR's rule before every layer: CP softmax score < eta_l / n_l
      (also writes cp_score_<l>: the live tokens' scores, packed)
  ref_bert.py make ... [--ltp-threshold t_0,...] [--power-retention k_0,...]
      also stores learned baseline parameters as extra tensors (ltp.threshold, power.retention)
  ref_bert.py run ... --baseline cascade|ltp|power|random|truncate [knobs]
      drops tokens with a baseline's rule (baselines/*.c documents each; the rules below are
      written from the papers' reference code): --keep-rate, --final-threshold,
      --retention, --keep, --method-seed, --match FILE (layer_tokens per sequence, JSON
      lines); ltp without --final-threshold and power without --retention use the model's
      extra tensors.  Writes score_<l> (the scores of the rows entering layer l, NaN where
      the rule did not score) and min_margin (the closest keep decision, relative).
  ref_bert.py check-saved --model DIR --like DIR2
      loads a model saved by the C side by tensor name and checks every tensor equals the
      original's (exit 1 otherwise).
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

torch.set_default_dtype(torch.float64)


def names(L, ln_style="weight", prefix=True):
    g, b = ("weight", "bias") if ln_style == "weight" else ("gamma", "beta")
    p = "bert." if prefix else ""
    out = [f"{p}embeddings.word_embeddings.weight", f"{p}embeddings.position_embeddings.weight",
           f"{p}embeddings.token_type_embeddings.weight", f"{p}embeddings.LayerNorm.{g}", f"{p}embeddings.LayerNorm.{b}"]
    for l in range(L):
        q = f"{p}encoder.layer.{l}."
        for lin in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]:
            out += [q + lin + ".weight", q + lin + ".bias"]
        out += [q + f"attention.output.LayerNorm.{g}", q + f"attention.output.LayerNorm.{b}"]
        out += [q + "intermediate.dense.weight", q + "intermediate.dense.bias", q + "output.dense.weight",
                q + "output.dense.bias", q + f"output.LayerNorm.{g}", q + f"output.LayerNorm.{b}"]
    out += [f"{p}pooler.dense.weight", f"{p}pooler.dense.bias", "classifier.weight", "classifier.bias"]
    return out


def canonical(name):
    """Map any accepted spelling to (bert.-prefixed, LayerNorm.weight/bias)."""
    name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
    if not name.startswith("bert.") and not name.startswith("classifier."):
        name = "bert." + name
    return name


def make(a):
    rng = np.random.default_rng(a.seed)
    V, P, C = 300, 512, a.labels
    H, I, L = a.hidden, a.inter, a.layers
    cfg = {"model_type": "bert", "vocab_size": V, "hidden_size": H, "num_hidden_layers": L,
           "num_attention_heads": a.heads, "intermediate_size": I, "hidden_act": "gelu",
           "max_position_embeddings": P, "type_vocab_size": 2, "layer_norm_eps": a.eps,
           "id2label": {str(i): f"L{i}" for i in range(C)}}
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    shapes = {}
    for n in names(L, a.ln_style, not a.no_prefix):
        c = canonical(n)
        if "word_embeddings" in c: s = (V, H)
        elif "position_embeddings" in c: s = (P, H)
        elif "token_type" in c: s = (2, H)
        elif "intermediate.dense.weight" in c: s = (I, H)
        elif "intermediate.dense.bias" in c: s = (I,)
        elif c.endswith("output.dense.weight") and "attention" not in c: s = (H, I)
        elif c == "classifier.weight": s = (C, H)
        elif c == "classifier.bias": s = (C,)
        elif c.endswith(".weight") and "LayerNorm" not in c: s = (H, H)
        else: s = (H,)
        shapes[n] = s
    tensors = {}
    # an integer buffer that must be ignored, as in real HF checkpoints
    tensors[("bert." if not a.no_prefix else "") + "embeddings.position_ids"] = np.arange(P, dtype=np.int64)[None, :]
    for n, s in shapes.items():
        if "LayerNorm" in n and (n.endswith("weight") or n.endswith("gamma")):
            v = 1.0 + 0.2 * rng.standard_normal(s)
        elif len(s) == 1:
            v = 0.1 * rng.standard_normal(s)
        else:
            v = a.std * rng.standard_normal(s)
        v = v.astype(np.float32)
        if a.dtype == "F16":
            v = v.astype(np.float16)
        tensors[n] = v
    if a.adapler:
        for l in range(L):
            p = f"adapler.predictor.{l}."
            tensors[p + "dense1.weight"] = (0.3 * rng.standard_normal((32, H))).astype(np.float32)
            tensors[p + "dense1.bias"] = (0.1 * rng.standard_normal(32)).astype(np.float32)
            tensors[p + "dense2.weight"] = (0.5 * rng.standard_normal((1, 32))).astype(np.float32)
            tensors[p + "dense2.bias"] = np.zeros(1, np.float32)
        tensors["adapler.eta"] = rng.uniform(0.3, 0.9, L).astype(np.float32)
    if a.ltp_threshold:
        tensors["ltp.threshold"] = np.array([float(v) for v in a.ltp_threshold.split(",")], np.float32)
    if a.power_retention:
        tensors["power.retention"] = np.array([float(v) for v in a.power_retention.split(",")], np.float32)
    st_io.save(os.path.join(a.out, "model.safetensors"), tensors,
               bf16=set(shapes) if a.dtype == "BF16" else ())
    with open(os.path.join(a.out, "vocab.txt"), "w") as f:
        f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(V - 5)]) + "\n")


def load_model(d):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    raw = st_io.load(os.path.join(d, "model.safetensors"))
    W = {}
    for k, v in raw.items():
        if v.dtype.kind in "iu":
            continue
        extra = k.startswith("adapler.") or k.startswith("ltp.") or k.startswith("power.")
        W[k if extra else canonical(k)] = torch.tensor(v.astype(np.float64))
    return cfg, W


def adapler_keep(W, l, x, eta_scale):
    """AdapLeR's rule before layer l (adapler-method.md 4.3): CP scores, softmax over the
    live rows, keep [CLS] and rows with score >= eta_l / n."""
    p = f"adapler.predictor.{l}."
    z = gelu(x @ W[p + "dense1.weight"].T + W[p + "dense1.bias"]) @ W[p + "dense2.weight"].T + W[p + "dense2.bias"]
    c = torch.softmax(z[:, 0], dim=0)
    delta = float(W["adapler.eta"][l]) * eta_scale / x.shape[0]
    keep = [0] + [i for i in range(1, x.shape[0]) if float(c[i]) >= delta]
    margin = min([abs(float(c[i]) - delta) / delta for i in range(1, x.shape[0])], default=1.0)
    return keep, c, margin


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * g + b


def schedule_keep(n, f):
    """Rows of a sequence of n rows kept by the 'schedule' rule with fraction f."""
    return [0] + [i for i in range(1, n) if math.floor(i * f) != math.floor((i - 1) * f)]


M64 = (1 << 64) - 1


def splitmix_seed(seed):
    return (seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & M64


def splitmix_next(state):
    """(new state, output) of splitmix64."""
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


class Baseline:
    """One baseline's rule for one sequence (original length n0, index `example` in the
    run).  at_input / after_attention return the rows to keep, or None to keep all;
    scores[l] holds the scores computed at layer l; margin the closest decision."""

    def __init__(self, a, W, L, n0, example, counts):
        self.name, self.L, self.n0, self.example = a.baseline, L, n0, example
        self.counts = counts  # the matched run's tokens entering each layer, or None
        self.scores, self.margin = {}, 1.0
        self.a = a
        if self.name == "ltp":
            if a.final_threshold is not None:  # LTP module i (0-based) starts at final * i / L
                self.theta = [a.final_threshold * l / L for l in range(L)]
            else:
                self.theta = [float(v) for v in W["ltp.threshold"]]
        if self.name == "power" and counts is None:
            if a.retention:
                vals = a.retention.split(",")
                self.fractions = any(c in v for v in vals for c in ".eE")
                self.retention = [float(v) for v in vals]
            else:
                self.fractions, self.retention = False, [float(v) for v in W["power.retention"]]
        if self.name in ("cascade", "random") or (self.name == "saliency" and a.keep_rate):
            if counts is None:
                rates = [float(v) for v in a.keep_rate.split(",")]
                self.rates = rates * L if len(rates) == 1 else rates
        self.sal = None  # saliency: the dense model's scores at every layer's input (run() sets them)

    def cascade_rate(self, l):
        """LTP's CascadeTokenPruner._set_token_keep_rate."""
        before = max(3, math.ceil(0.15 * self.L))
        if l < before:
            return 1.0
        return max(0.01, (self.rates[0] - 1) / (self.L - before) * (l - before + 1) + 1)

    def top_k(self, score, k):
        """[CLS] and the k - 1 best other rows (ties: earlier row), in order."""
        n = len(score)
        order = sorted(range(1, n), key=lambda i: (-float(score[i]), i))
        if 2 <= k < n:
            a_, b_ = float(score[order[k - 2]]), float(score[order[k - 1]])
            self.margin = min(self.margin, abs(a_ - b_) / max(abs(a_), 1e-30))
        return sorted([0] + order[:k - 1])

    def saliency_at_input(self, l, n, pos):
        """The saliency baseline before layer l (baselines/saliency.c): the scores of the
        live rows at the embedding output (or layer l's input with --saliency-layer each),
        AdapLeR's rule (normalised over the live rows, keep >= eta / n) or the top k."""
        a = self.a
        if a.keep_rate and self.counts is None and l > 0 and self.rates[l] >= 1.0:
            return None  # a layer the strategy skips
        raw = self.sal[l if a.saliency_layer == "each" else 0][pos]
        self.scores[l] = raw
        if a.eta is not None:
            total = float(raw.sum())
            if not total > 0:
                return None
            p, t = raw / total, a.eta / n
            self.margin = min([self.margin] + [abs(float(p[i]) - t) / t for i in range(1, n)])
            return [0] + [i for i in range(1, n) if float(p[i]) >= t]
        k = self.counts[l] if self.counts is not None else min(n, max(1, round(self.rates[l] * n)))
        if k >= n:
            return None
        return self.top_k(raw, k)

    def at_input(self, l, n, pos):
        if self.name == "saliency":
            return self.saliency_at_input(l, n, pos)
        if self.name == "truncate" and l == 0:
            v = self.a.keep
            k = min(n, max(1, round(float(v) * n))) if any(c in v for c in ".eE") else min(n, int(v))
            return list(range(k))
        if self.name != "random":
            return None
        if self.counts is not None:
            k = self.counts[l]
        else:
            if self.rates[l] >= 1.0:
                return None
            k = min(n, max(1, round(self.rates[l] * n)))
        if k >= n:
            return None
        # the stream of (seed, example, layer), then selection sampling (Knuth's S)
        st, out = splitmix_next(splitmix_seed(self.a.method_seed))
        st, out = splitmix_next(splitmix_seed(out ^ self.example))
        st = splitmix_seed(out ^ l)
        keep, need = [0], k - 1
        for i in range(1, n):
            if need > 0:
                st, u = splitmix_next(st)
                if u % (n - i) < need:
                    keep.append(i)
                    need -= 1
        return keep

    def after_attention(self, l, att):
        """att: (heads, query, key) probabilities of layer l over the live rows."""
        A, n = att.shape[0], att.shape[1]
        if self.name == "cascade":
            if self.counts is not None:
                if l == self.L - 1:
                    return None
                k = self.counts[l + 1]
            else:
                rate = self.cascade_rate(l)
                if rate >= 1.0:
                    return None
                k = min(self.n0, max(1, round(self.n0 * rate)))
            if k >= n:
                return None
            score = att.sum(dim=(0, 1))  # over heads and query rows
            self.scores[l] = score
            return self.top_k(score, k)
        if self.name == "power":
            if self.counts is not None:
                if l == self.L - 1:
                    return None
                k = self.counts[l + 1]
            elif self.fractions:
                if self.retention[l] >= 1.0:
                    return None
                k = min(self.n0, max(1, round(self.retention[l] * self.n0)))
            else:
                k = int(self.retention[l])
            if k >= n:
                return None
            avg = att.mean(dim=0)
            sig = avg.sum(dim=0) - torch.diagonal(avg)  # received from the other tokens
            self.scores[l] = sig
            return self.top_k(sig, k)
        if self.name == "ltp":
            theta = self.theta[l]
            if theta == 0:
                return None
            # the mean over heads and all n0 query rows of the sequence, pruned rows being zero
            score = att.sum(dim=(0, 1)) / (A * self.n0)
            self.scores[l] = score
            t = max(1e-5, theta)
            self.margin = min([self.margin] + [abs(float(score[i]) - t) / t for i in range(1, n)])
            return [0] + [i for i in range(1, n) if not float(score[i]) < t]
        return None


def forward_one(cfg, W, ids, types, frac, point, adapler=None, baseline=None):
    """One sequence.  Returns logits and per-stage (hidden, positions); with adapler =
    (eta_scale, scores_out) AdapLeR's rule drops rows before every layer."""
    H, A, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg.get("layer_norm_eps", 1e-12)
    dh = H // A
    n = len(ids)
    pos = list(range(n))
    e = "bert.embeddings."
    x = W[e + "word_embeddings.weight"][ids] + W[e + "token_type_embeddings.weight"][types] \
        + W[e + "position_embeddings.weight"][pos]
    x = layer_norm(x, W[e + "LayerNorm.weight"], W[e + "LayerNorm.bias"], eps)
    stages = [(x, list(pos))]

    def lin(x, name):
        return x @ W[name + ".weight"].T + W[name + ".bias"]

    for l in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{l}."
        if point == "input" and frac[l] < 1.0:
            keep = schedule_keep(x.shape[0], frac[l])
            x, pos = x[keep], [pos[i] for i in keep]
        if adapler is not None:
            keep, c, margin = adapler_keep(W, l, x, adapler[0])
            adapler[1].append((l, c, margin))
            x, pos = x[keep], [pos[i] for i in keep]
        if baseline is not None:
            keep = baseline.at_input(l, x.shape[0], pos)
            if keep is not None:
                x, pos = x[keep], [pos[i] for i in keep]
        n = x.shape[0]
        q = lin(x, p + "attention.self.query").view(n, A, dh).transpose(0, 1)
        k = lin(x, p + "attention.self.key").view(n, A, dh).transpose(0, 1)
        v = lin(x, p + "attention.self.value").view(n, A, dh).transpose(0, 1)
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(dh), dim=-1)
        c = (att @ v).transpose(0, 1).reshape(n, H)
        x = layer_norm(lin(c, p + "attention.output.dense") + x, W[p + "attention.output.LayerNorm.weight"],
                       W[p + "attention.output.LayerNorm.bias"], eps)
        if point == "attention" and frac[l] < 1.0:
            keep = schedule_keep(x.shape[0], frac[l])
            x, pos = x[keep], [pos[i] for i in keep]
        if baseline is not None:
            keep = baseline.after_attention(l, att)
            if keep is not None:
                x, pos = x[keep], [pos[i] for i in keep]
        h = gelu(lin(x, p + "intermediate.dense"))
        x = layer_norm(lin(h, p + "output.dense") + x, W[p + "output.LayerNorm.weight"],
                       W[p + "output.LayerNorm.bias"], eps)
        stages.append((x, list(pos)))
    pooled = torch.tanh(lin(x[0:1], "bert.pooler.dense"))
    logits = lin(pooled, "classifier")[0]
    return logits, stages


def run(a):
    cfg, W = load_model(a.model)
    rng = np.random.default_rng(a.seed)
    L, V = cfg["num_hidden_layers"], cfg["vocab_size"]
    frac = [1.0] * L
    if a.schedule:
        for item in a.schedule.split(","):
            l, f = item.split(":")
            frac[int(l)] = float(np.float32(float(f)))  # the C side parses a float
    lengths = [int(s) for s in a.lengths.split(",")]
    all_ids, all_types, offsets, logits = [], [], [0], []
    stages_all = [[] for _ in range(L + 1)]
    cp_scores, min_margin = [[] for _ in range(L)], 1.0
    base_scores = [[] for _ in range(L)]
    counts = None
    if a.match:
        with open(a.match) as f:
            counts = [json.loads(line)["layer_tokens"] for line in f if line.strip()]
    for si, n in enumerate(lengths):
        ids = [2] + list(rng.integers(5, V, size=n - 1)) if n > 1 else [2]
        types = [0] * n
        if a.pairs and n >= 4:  # [CLS] A [SEP] B [SEP]
            cut = int(rng.integers(2, n - 1))
            ids[cut - 1] = 3
            ids[n - 1] = 3
            types = [0] * cut + [1] * (n - cut)
        scores = []
        bl = Baseline(a, W, L, n, si, counts[si] if counts else None) if a.baseline else None
        if a.baseline == "saliency":
            import ref_saliency  # here: it imports this module
            _, gap, bl.sal = ref_saliency.saliency_scores(cfg, W, torch.tensor(ids), torch.tensor(types))
            bl.margin = min(bl.margin, gap)  # the predicted class must not be a near tie
        lg, st = forward_one(cfg, W, torch.tensor(ids), torch.tensor(types), frac, a.point,
                             (a.eta_scale, scores) if a.adapler else None, bl)
        if bl is not None:
            min_margin = min(min_margin, bl.margin)
            for l in range(L):  # rows entering layer l: the previous stage's survivors
                live = len(st[l][1])
                sc = bl.scores.get(l)
                base_scores[l].append(sc.numpy() if sc is not None else np.full(live, np.nan))
        for l, c, margin in scores:
            cp_scores[l].append(c.numpy())
            min_margin = min(min_margin, margin)
        all_ids += ids
        all_types += types
        offsets.append(offsets[-1] + n)
        logits.append(lg.numpy())
        for i, s in enumerate(st):
            stages_all[i].append(s)
    out = {"input_ids": np.array(all_ids, np.int32), "token_type_ids": np.array(all_types, np.int32),
           "offsets": np.array(offsets, np.int32), "logits": np.array(logits, np.float32)}
    for i, per_seq in enumerate(stages_all):
        name = "emb" if i == 0 else str(i - 1)
        out["hidden_" + name] = np.concatenate([s[0].numpy() for s in per_seq]).astype(np.float32)
        out["positions_" + name] = np.array([p for s in per_seq for p in s[1]], np.int32)
        out["offsets_" + name] = np.cumsum([0] + [len(s[1]) for s in per_seq]).astype(np.int32)
    if a.adapler:
        for l in range(L):
            out[f"cp_score_{l}"] = np.concatenate(cp_scores[l]).astype(np.float32)
        # how close the nearest keep decision came to its threshold (relative); a C run may
        # legitimately decide differently only when this is at float rounding level
        out["min_margin"] = np.array([min_margin], np.float32)
    if a.baseline:
        for l in range(L):
            out[f"score_{l}"] = np.concatenate(base_scores[l]).astype(np.float32)
        out["min_margin"] = np.array([min_margin], np.float32)
    st_io.save(a.out, out)


def check_saved(a):
    _, mine = load_model(a.model)
    _, orig = load_model(a.like)
    if set(mine) != set(orig):
        print("tensor names differ:", sorted(set(mine) ^ set(orig)))
        sys.exit(1)
    raw = st_io.load(os.path.join(a.model, "model.safetensors"))
    for k, v in raw.items():
        if k.startswith("bert.") or k.startswith("classifier."):
            pass
        else:
            print("unexpected name", k)
            sys.exit(1)
        if v.dtype != np.float32:
            print("not F32:", k)
            sys.exit(1)
    for k in orig:
        if not torch.equal(mine[k], orig[k]):
            print("tensor differs:", k)
            sys.exit(1)
    # and torch itself can read the tensors back by name into a module's state dict
    sd = {k: torch.tensor(v) for k, v in raw.items()}
    lin = torch.nn.Linear(sd["classifier.weight"].shape[1], sd["classifier.weight"].shape[0]).float()
    lin.load_state_dict({"weight": sd["classifier.weight"], "bias": sd["classifier.bias"]})
    print("ok", len(raw), "tensors")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--out", required=True)
    m.add_argument("--layers", type=int, default=2)
    m.add_argument("--hidden", type=int, default=64)
    m.add_argument("--heads", type=int, default=4)
    m.add_argument("--inter", type=int, default=256)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--std", type=float, default=0.08)
    m.add_argument("--eps", type=float, default=1e-12)
    m.add_argument("--ln-style", default="weight", choices=["weight", "gamma"])
    m.add_argument("--no-prefix", action="store_true")
    m.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"])
    m.add_argument("--adapler", action="store_true")
    m.add_argument("--labels", type=int, default=3)
    m.add_argument("--ltp-threshold", default="")
    m.add_argument("--power-retention", default="")
    r = sub.add_parser("run")
    r.add_argument("--model", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--lengths", required=True)
    r.add_argument("--pairs", action="store_true")
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--schedule", default="")
    r.add_argument("--point", default="input", choices=["input", "attention"])
    r.add_argument("--adapler", action="store_true")
    r.add_argument("--eta-scale", type=float, default=1.0)
    r.add_argument("--baseline", choices=["cascade", "ltp", "power", "random", "saliency", "truncate"])
    r.add_argument("--eta", type=float)
    r.add_argument("--saliency-layer", default="input", choices=["input", "each"])
    r.add_argument("--keep-rate", default="")
    r.add_argument("--final-threshold", type=float)
    r.add_argument("--retention", default="")
    r.add_argument("--keep", default="")
    r.add_argument("--method-seed", type=int, default=1)
    r.add_argument("--match", default="")
    c = sub.add_parser("check-saved")
    c.add_argument("--model", required=True)
    c.add_argument("--like", required=True)
    a = ap.parse_args()
    {"make": make, "run": run, "check-saved": check_saved}[a.cmd](a)


if __name__ == "__main__":
    main()
