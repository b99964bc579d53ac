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
        W[k if k.startswith("adapler.") else canonical(k)] = torch.tensor(v.astype(np.float64))
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


def forward_one(cfg, W, ids, types, frac, point, adapler=None):
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
    for n in lengths:
        ids = [2] + list(rng.integers(5, V, size=n - 1)) if n > 1 else [2]
        types = [0] * n
        if a.pairs and n >= 4:  # [CLS] A [SEP] B [SEP]
            cut = int(rng.integers(2, n - 1))
            ids[cut - 1] = 3
            ids[n - 1] = 3
            types = [0] * cut + [1] * (n - cut)
        scores = []
        lg, st = forward_one(cfg, W, torch.tensor(ids), torch.tensor(types), frac, a.point,
                             (a.eta_scale, scores) if a.adapler else None)
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
    c = sub.add_parser("check-saved")
    c.add_argument("--model", required=True)
    c.add_argument("--like", required=True)
    a = ap.parse_args()
    {"make": make, "run": run, "check-saved": check_saved}[a.cmd](a)


if __name__ == "__main__":
    main()
