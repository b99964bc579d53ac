"""PyTorch autograd reference for the C training code (gradient parity and AdamW tests).

Written from the BERT paper, Hugging Face's BertForSequenceClassification / BertForMaskedLM
semantics and PyTorch's documented AdamW, independently of the C code.  One sequence at a
time (no packing), float64, autograd for every gradient.

  ref_train.py grads --out DIR --layers L --hidden H --heads A --inter I --lengths 1,7,30
                     [--seed S] [--pairs] [--schedule l:f,...] [--point input|attention]
                     [--softmask] [--inject] [--mlm] [--saliency]
      writes DIR/model (config.json, model.safetensors; with --mlm the MLM head too) and
      DIR/fx.safetensors holding the inputs and what the C side must reproduce:
        input_ids, token_type_ids, offsets, labels        the packed batch
        logmask (L, T0)       --softmask: log-mask of each token (by original position) at
                              each layer, added to the attention scores of that key
        inject (L, T0, H)     --inject: loss += sum_l sum_rows h_l[row] . inject[l, row]
                              over the rows entering layer l (before its drop)
        mlm_labels (T0)       --mlm: target id of masked positions, -1 elsewhere
        loss, logits
        grad.<param name>     d loss / d param, for every parameter (HF names)
        dhidden_<l>           d loss / d (rows entering layer l, before its drop), packed
        dlogmask_<l>          d loss / d logmask at layer l (same rows)
        positions_<l>         original positions of those rows
      loss = mean over sequences of CE(logits, label)  [+ mean over masked tokens of the MLM CE]
             [+ the inject term].  With --saliency instead loss = sum over sequences of
             logits[label]: the dhidden_<l> are then d logit_c / d h_l.  Dropout off.
  ref_train.py steps --model DIR --fx FILE --out FILE --steps N --lr LR --warmup W --total T
                     --wd WD --clip C [--eps E]
      N steps of torch.optim.AdamW (weight decay on 2-D weights only) on the batch of FILE
      with the CE loss, global grad-norm clipping (torch.nn.utils.clip_grad_norm_) and the
      schedule lr(s) = LR (s+1)/W for s < W, else LR (T-s)/(T-W) (s = 0-based step);
      writes the final parameters.
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
V, P = 200, 128


def param_shapes(L, H, I, C, mlm):
    s = {"bert.embeddings.word_embeddings.weight": (V, H), "bert.embeddings.position_embeddings.weight": (P, H),
         "bert.embeddings.token_type_embeddings.weight": (2, H), "bert.embeddings.LayerNorm.weight": (H,),
         "bert.embeddings.LayerNorm.bias": (H,)}
    for l in range(L):
        p = f"bert.encoder.layer.{l}."
        for n in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]:
            s[p + n + ".weight"], s[p + n + ".bias"] = (H, H), (H,)
        s[p + "attention.output.LayerNorm.weight"], s[p + "attention.output.LayerNorm.bias"] = (H,), (H,)
        s[p + "intermediate.dense.weight"], s[p + "intermediate.dense.bias"] = (I, H), (I,)
        s[p + "output.dense.weight"], s[p + "output.dense.bias"] = (H, I), (H,)
        s[p + "output.LayerNorm.weight"], s[p + "output.LayerNorm.bias"] = (H,), (H,)
    s["bert.pooler.dense.weight"], s["bert.pooler.dense.bias"] = (H, H), (H,)
    s["classifier.weight"], s["classifier.bias"] = (C, H), (C,)
    if mlm:
        s["cls.predictions.transform.dense.weight"], s["cls.predictions.transform.dense.bias"] = (H, H), (H,)
        s["cls.predictions.transform.LayerNorm.weight"] = (H,)
        s["cls.predictions.transform.LayerNorm.bias"] = (H,)
        s["cls.predictions.bias"] = (V,)
    return s


def make_model(out, L, H, A, I, C, seed, mlm):
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    cfg = {"model_type": "bert", "vocab_size": V, "hidden_size": H, "num_hidden_layers": L,
           "num_attention_heads": A, "intermediate_size": I, "hidden_act": "gelu", "max_position_embeddings": P,
           "type_vocab_size": 2, "layer_norm_eps": 1e-12, "id2label": {str(i): f"L{i}" for i in range(C)}}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    W = {}
    for n, s in param_shapes(L, H, I, C, mlm).items():
        if "LayerNorm.weight" in n:
            v = 1.0 + 0.2 * rng.standard_normal(s)
        elif len(s) == 1:
            v = 0.1 * rng.standard_normal(s)
        else:
            v = 0.1 * rng.standard_normal(s)
        W[n] = v.astype(np.float32)
    st_io.save(os.path.join(out, "model.safetensors"), W)
    with open(os.path.join(out, "vocab.txt"), "w") as f:
        f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(V - 5)]) + "\n")
    return cfg


def load(d):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    raw = st_io.load(os.path.join(d, "model.safetensors"))
    return cfg, {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in raw.items()}


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * g + b


def schedule_keep(n, f):
    """engine/prune.h's 'schedule' rule: [CLS] and row i >= 1 iff floor(i f) != floor((i-1) f)."""
    return [0] + [i for i in range(1, n) if math.floor(i * f) != math.floor((i - 1) * f)]


def forward_seq(cfg, W, ids, types, frac, point, logmask, inject, taps):
    """One sequence.  logmask: (L, n) or None; inject: (L, n, H) or None (by original
    position).  taps[l] collects (h_l, logmask leaf, positions) for the gradients.
    Returns (logits, final hidden, final positions, extra loss)."""
    H, A, eps, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"], cfg["num_hidden_layers"]
    dh = H // A
    n = len(ids)
    pos = list(range(n))
    e = "bert.embeddings."
    x = W[e + "word_embeddings.weight"][ids] + W[e + "token_type_embeddings.weight"][types] \
        + W[e + "position_embeddings.weight"][pos]
    x = layer_norm(x, W[e + "LayerNorm.weight"], W[e + "LayerNorm.bias"], eps)
    extra = torch.zeros(())

    def lin(t, name):
        return t @ W[name + ".weight"].T + W[name + ".bias"]

    for l in range(L):
        p = f"bert.encoder.layer.{l}."
        x.retain_grad()
        lm = torch.tensor([logmask[l][q] for q in pos] if logmask is not None else [0.0] * len(pos),
                          requires_grad=True)
        taps[l].append((x, lm, list(pos)))
        if inject is not None:
            extra = extra + (x * torch.tensor(np.array([inject[l][q] for q in pos]))).sum()
        if point == "input" and frac[l] < 1.0:
            keep = schedule_keep(x.shape[0], frac[l])
            x, pos, lmk = x[keep], [pos[i] for i in keep], lm[keep]
        else:
            lmk = lm
        m = x.shape[0]
        q = lin(x, p + "attention.self.query").view(m, A, dh).transpose(0, 1)
        k = lin(x, p + "attention.self.key").view(m, A, dh).transpose(0, 1)
        v = lin(x, p + "attention.self.value").view(m, A, dh).transpose(0, 1)
        scores = q @ k.transpose(1, 2) / math.sqrt(dh) + lmk[None, None, :]
        c = (torch.softmax(scores, dim=-1) @ v).transpose(0, 1).reshape(m, H)
        x = layer_norm(lin(c, p + "attention.output.dense") + x, W[p + "attention.output.LayerNorm.weight"],
                       W[p + "attention.output.LayerNorm.bias"], eps)
        if point == "attention" and frac[l] < 1.0:
            keep = schedule_keep(x.shape[0], frac[l])
            x, pos = x[keep], [pos[i] for i in keep]
        h = gelu(lin(x, p + "intermediate.dense"))
        x = layer_norm(lin(h, p + "output.dense") + x, W[p + "output.LayerNorm.weight"],
                       W[p + "output.LayerNorm.bias"], eps)
    pooled = torch.tanh(lin(x[0:1], "bert.pooler.dense"))
    return lin(pooled, "classifier")[0], x, pos, extra


def mlm_logits(cfg, W, h):
    t = gelu(h @ W["cls.predictions.transform.dense.weight"].T + W["cls.predictions.transform.dense.bias"])
    t = layer_norm(t, W["cls.predictions.transform.LayerNorm.weight"], W["cls.predictions.transform.LayerNorm.bias"],
                   cfg["layer_norm_eps"])
    return t @ W["bert.embeddings.word_embeddings.weight"].T + W["cls.predictions.bias"]


def parse_schedule(s, L):
    frac = [1.0] * L
    if s:
        for item in s.split(","):
            l, f = item.split(":")
            frac[int(l)] = float(np.float32(float(f)))  # the C side holds a float
    return frac


def grads(a):
    C = 3
    cfg = make_model(os.path.join(a.out, "model"), a.layers, a.hidden, a.heads, a.inter, C, a.seed, a.mlm)
    cfg, W = load(os.path.join(a.out, "model"))
    L, H = a.layers, a.hidden
    rng = np.random.default_rng(a.seed + 1000)
    lengths = [int(s) for s in a.lengths.split(",")]
    frac = parse_schedule(a.schedule, L)
    T0 = sum(lengths)
    logmask = rng.uniform(-4.0, 0.0, size=(L, T0)) if a.softmask else None
    inject = rng.standard_normal((L, T0, H)) * 0.05 if a.inject else None
    all_ids, all_types, offsets, labels, mlm_labels = [], [], [0], [], []
    taps = [[] for _ in range(L)]
    loss = torch.zeros(())
    logits_all = []
    mlm_terms = []
    for s, n in enumerate(lengths):
        ids = [2] + [int(i) for i in rng.integers(5, V, size=n - 1)]
        types = [0] * n
        if a.pairs and n >= 4:
            cut = int(rng.integers(2, n - 1))
            ids[cut - 1] = 3
            ids[n - 1] = 3
            types = [0] * cut + [1] * (n - cut)
        y = int(rng.integers(0, C))
        o0 = offsets[-1]
        lm = None if logmask is None else [logmask[l][o0:o0 + n] for l in range(L)]
        inj = None if inject is None else [inject[l][o0:o0 + n] for l in range(L)]
        logits, hfin, pos, extra = forward_seq(cfg, W, torch.tensor(ids), torch.tensor(types), frac, a.point, lm, inj,
                                               taps)
        if a.saliency:
            loss = loss + logits[y] + extra
        else:
            loss = loss + torch.nn.functional.cross_entropy(logits[None], torch.tensor([y])) / len(lengths) + extra
        logits_all.append(logits.detach().numpy())
        ml = [-1] * n
        if a.mlm:
            for i in range(1, n):
                if rng.uniform() < 0.3:
                    ml[i] = int(rng.integers(5, V))
            rows = [i for i in range(n) if ml[i] >= 0]
            assert pos == list(range(n)), "--mlm runs without pruning"
            if rows:
                z = mlm_logits(cfg, W, hfin[rows])
                mlm_terms.append(torch.nn.functional.cross_entropy(z, torch.tensor([ml[i] for i in rows]),
                                                                   reduction="sum"))
        all_ids += ids
        all_types += types
        offsets.append(o0 + n)
        labels.append(y)
        mlm_labels += ml
    n_masked = sum(1 for v in mlm_labels if v >= 0)
    if mlm_terms:
        loss = loss + sum(mlm_terms) / n_masked
    loss.backward()
    out = {"input_ids": np.array(all_ids, np.int32), "token_type_ids": np.array(all_types, np.int32),
           "offsets": np.array(offsets, np.int32), "labels": np.array(labels, np.int32),
           "loss": np.array([loss.item()], np.float32), "logits": np.array(logits_all, np.float32)}
    if a.softmask:
        out["logmask"] = logmask.astype(np.float32)
    if a.inject:
        out["inject"] = inject.astype(np.float32)
    if a.mlm:
        out["mlm_labels"] = np.array(mlm_labels, np.int32)
    for name, t in W.items():
        out["grad." + name] = (t.grad if t.grad is not None else torch.zeros_like(t)).numpy().astype(np.float32)
    for l in range(L):
        out[f"dhidden_{l}"] = np.concatenate([x.grad.numpy() for x, _, _ in taps[l]]).astype(np.float32)
        out[f"dlogmask_{l}"] = np.concatenate([m.grad.numpy() for _, m, _ in taps[l]]).astype(np.float32)
        out[f"positions_{l}"] = np.array([q for _, _, ps in taps[l] for q in ps], np.int32)
    st_io.save(os.path.join(a.out, "fx.safetensors"), out)


def steps(a):
    cfg, W = load(a.model)
    fx = st_io.load(a.fx)
    offs, ids, types, labels = fx["offsets"], fx["input_ids"], fx["token_type_ids"], fx["labels"]
    L = cfg["num_hidden_layers"]
    frac = [1.0] * L
    decay = [t for n, t in W.items() if t.dim() == 2]
    no_decay = [t for n, t in W.items() if t.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.999), eps=a.eps)

    def lr_at(s):
        return (s + 1) / a.warmup if s < a.warmup else (a.total - s) / (a.total - a.warmup)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    for _ in range(a.steps):
        opt.zero_grad()
        loss = torch.zeros(())
        n_seq = len(offs) - 1
        for s in range(n_seq):
            sl = slice(offs[s], offs[s + 1])
            taps = [[] for _ in range(L)]
            logits, _, _, _ = forward_seq(cfg, W, torch.tensor(ids[sl]).long(), torch.tensor(types[sl]).long(), frac, "input", None,
                                          None, taps)
            loss = loss + torch.nn.functional.cross_entropy(logits[None], torch.tensor([int(labels[s])])) / n_seq
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(W.values()), a.clip)
        opt.step()
        sched.step()
    st_io.save(a.out, {k: v.detach().numpy().astype(np.float32) for k, v in W.items()})


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grads")
    g.add_argument("--out", required=True)
    g.add_argument("--layers", type=int, default=2)
    g.add_argument("--hidden", type=int, default=32)
    g.add_argument("--heads", type=int, default=2)
    g.add_argument("--inter", type=int, default=64)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--lengths", required=True)
    g.add_argument("--pairs", action="store_true")
    g.add_argument("--schedule", default="")
    g.add_argument("--point", default="input", choices=["input", "attention"])
    g.add_argument("--softmask", action="store_true")
    g.add_argument("--inject", action="store_true")
    g.add_argument("--mlm", action="store_true")
    g.add_argument("--saliency", action="store_true")
    s = sub.add_parser("steps")
    s.add_argument("--model", required=True)
    s.add_argument("--fx", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--steps", type=int, default=3)
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--warmup", type=int, default=2)
    s.add_argument("--total", type=int, default=10)
    s.add_argument("--wd", type=float, default=0.01)
    s.add_argument("--clip", type=float, default=1.0)
    s.add_argument("--eps", type=float, default=1e-6)
    a = ap.parse_args()
    {"grads": grads, "steps": steps}[a.cmd](a)


if __name__ == "__main__":
    main()
