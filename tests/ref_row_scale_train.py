"""PyTorch autograd reference for the training steps that scale rows of a layer's output
(the oracle of tests/test_row_scale_train.c), written from the method descriptions
(adapler-method.md 8.1 and 8.4, and the PoWER-BERT and LTP reference code's Soft_Extract and
soft mask), independently of the C code: one sequence at a time, float64, dropout off.

  ref_row_scale_train.py power --model DIR --out FILE --lengths 1,7,30 --lambda 1e-3 --max-len 64
  ref_row_scale_train.py ltp   --model DIR --out FILE --lengths 1,7,30 --lambda 0.1 --temperature 1e-2
  ref_row_scale_train.py hook  --model DIR --out FILE --lengths 1,7,30

power: PoWER-BERT's Soft-Extract after every layer's attention block (after its Add &
  LayerNorm): significance = head-averaged attention received from the other tokens
  (column sum minus the diagonal); the token of rank k (0 = most significant, ties to the
  earlier token) is multiplied by r_l[k]; loss = mean CE + sum_l lambda (l + 1) sum_k |r_l[k]|.
  The fixture holds r (L, N) (random in [0, 1]) and grad.power.r.
ltp: LTP's soft mask on every layer's output: s_t = mean attention received (over heads and
  the n query rows), mask_t = sigmoid((s_t - theta_l) / T), [CLS] kept at 1, no mask at
  layers with theta_l = 0; loss = mean CE + lambda sum_l (sum of the batch's masks / tokens).
  The fixture holds theta (L) and grad.ltp.theta.
hook: the engine's mechanism alone: fixed scales at both points (scale_mid_<l>,
  scale_out_<l>, random in [0.2, 1.2]) and loss = mean CE + sum_l sum_t w_l[t] recv_l[t],
  recv = attention received summed over heads and queries; the fixture holds w_<l> and the
  gradients with respect to the scales (grad.scale_mid_<l>, grad.scale_out_<l>).
Every mode writes input_ids, offsets, labels, the losses (loss_task, loss_reg) and
grad.<bert tensor name> for every encoder tensor; power also min_margin, the smallest
relative gap between two different significance values of one sequence (ranks can only
differ from a float32 run's when it is near float rounding; exact ties come from rows that
r = 0 zeroed, which are identical from then on, so their order does not matter)."""
import argparse
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
from ref_bert import gelu, layer_norm, load_model  # noqa: E402

torch.set_default_dtype(torch.float64)


def forward_seq(cfg, W, ids, label, a, P, tok0, stats):
    """One sequence (its tokens are tok0 .. tok0 + n of the batch).  P: the mode's
    parameters.  Returns the task loss and this sequence's regulariser terms."""
    H, A, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    eps = cfg.get("layer_norm_eps", 1e-12)
    dh, n = H // A, len(ids)
    e = "bert.embeddings."
    x = W[e + "word_embeddings.weight"][ids] + W[e + "token_type_embeddings.weight"][[0] * n] \
        + W[e + "position_embeddings.weight"][list(range(n))]
    x = layer_norm(x, W[e + "LayerNorm.weight"], W[e + "LayerNorm.bias"], eps)

    def lin(x, name):
        return x @ W[name + ".weight"].T + W[name + ".bias"]

    reg = 0.0
    for l in range(L):
        q = f"bert.encoder.layer.{l}."
        qh = lin(x, q + "attention.self.query").view(n, A, dh).transpose(0, 1)
        kh = lin(x, q + "attention.self.key").view(n, A, dh).transpose(0, 1)
        vh = lin(x, q + "attention.self.value").view(n, A, dh).transpose(0, 1)
        att = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(dh), dim=-1)
        ctx = (att @ vh).transpose(0, 1).reshape(n, H)
        x = layer_norm(lin(ctx, q + "attention.output.dense") + x, W[q + "attention.output.LayerNorm.weight"],
                       W[q + "attention.output.LayerNorm.bias"], eps)
        if a.mode == "power":
            avg = att.detach().mean(dim=0)
            sig = avg.sum(dim=0) - torch.diagonal(avg)
            order = sorted(range(n), key=lambda i: (-float(sig[i]), i))
            s_sorted = [float(sig[i]) for i in order]
            for k in range(n - 1):
                gap = abs(s_sorted[k] - s_sorted[k + 1]) / max(abs(s_sorted[k]), 1e-30)
                stats["margin"] = min(stats["margin"], gap)
            rank = [0] * n
            for k, i in enumerate(order):
                rank[i] = k
            x = x * P["r"][l][rank][:, None]
        if a.mode == "hook":
            x = x * P["scale_mid"][l][tok0:tok0 + n][:, None]
        h = gelu(lin(x, q + "intermediate.dense"))
        x = layer_norm(lin(h, q + "output.dense") + x, W[q + "output.LayerNorm.weight"], W[q + "output.LayerNorm.bias"], eps)
        recv = att.sum(dim=(0, 1))  # attention received, over heads and queries
        if a.mode == "ltp" and float(P["theta_init"][l]) != 0.0:
            m = torch.sigmoid((recv / (A * n) - P["theta"][l]) / a.temperature)
            m = torch.cat([torch.ones(1), m[1:]])  # [CLS] is never masked
            x = x * m[:, None]
            reg = reg + m.sum()  # / the batch's tokens, by the caller
        if a.mode == "hook":
            x = x * P["scale_out"][l][tok0:tok0 + n][:, None]
            reg = reg + (P["w"][l][tok0:tok0 + n] * recv).sum()
    logits = lin(torch.tanh(lin(x[0:1], "bert.pooler.dense")), "classifier")[0]
    task = -torch.log_softmax(logits, dim=0)[label]
    return task, reg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["power", "ltp", "hook"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lengths", required=True)
    ap.add_argument("--lambda", dest="lam", type=float, default=1e-3)
    ap.add_argument("--temperature", type=float, default=1e-2)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    cfg, W = load_model(a.model)
    for v in W.values():
        v.requires_grad_(True)
    L = cfg["num_hidden_layers"]
    rng = np.random.default_rng(a.seed)
    V, C = cfg["vocab_size"], len(cfg.get("id2label", {})) or cfg.get("num_labels", 2)
    lengths = [int(s) for s in a.lengths.split(",")]
    T = sum(lengths)
    P, out = {}, {}
    if a.mode == "power":
        r = rng.uniform(0.0, 1.0, (L, a.max_len))
        # some exactly 0, in the last layer only: |r| has no gradient there (Keras' L1 via
        # tf.abs). Not before it: rows zeroed at layer l are identical at layer l+1, so they tie
        # in significance, float32 rounding (which differs between BLAS kernels) orders them, and
        # although the forward does not change, each takes the other's r[l+1][rank] and so the
        # other's share of d loss / d r[l][k].
        r[-1, ::7] = 0.0
        P["r"] = torch.tensor(r, requires_grad=True)
        out["r"] = r.astype(np.float32)
    elif a.mode == "ltp":
        # a threshold near the typical score (1/n): masks neither 0 nor 1
        th = np.array([0.0] + list(rng.uniform(0.02, 0.2, L - 1)))
        P["theta_init"] = th
        P["theta"] = torch.tensor(th, requires_grad=True)
        out["theta"] = th.astype(np.float32)
    else:
        for name in ("scale_mid", "scale_out"):
            v = rng.uniform(0.2, 1.2, (L, T))
            P[name] = torch.tensor(v, requires_grad=True)
            for l in range(L):
                out[f"{name}_{l}"] = v[l].astype(np.float32)
        w = rng.standard_normal((L, T)) * 0.1
        P["w"] = torch.tensor(w)
        for l in range(L):
            out[f"w_{l}"] = w[l].astype(np.float32)
    ids_all, offs, labels = [], [0], []
    task = reg = 0.0
    stats = {"margin": 1.0}
    for n in lengths:
        ids = [2] + list(rng.integers(5, V, size=n - 1))
        label = int(rng.integers(0, C))
        t, g = forward_seq(cfg, W, torch.tensor(ids), label, a, P, offs[-1], stats)
        task, reg = task + t, reg + g
        ids_all += ids
        offs.append(offs[-1] + n)
        labels.append(label)
    B = len(lengths)
    task = task / B
    if a.mode == "power":
        reg = sum(a.lam * (l + 1) * P["r"][l].abs().sum() for l in range(L))
    elif a.mode == "ltp":
        reg = a.lam * reg / T
    obj = task + reg
    names = list(W)
    extra = {"power": ["r"], "ltp": ["theta"], "hook": ["scale_mid", "scale_out"]}[a.mode]
    grads = torch.autograd.grad(obj, [W[k] for k in names] + [P[k] for k in extra], allow_unused=True)
    out.update({"input_ids": np.array(ids_all, np.int32), "offsets": np.array(offs, np.int32),
                "labels": np.array(labels, np.int32), "loss_task": np.array([float(task)], np.float32),
                "loss_reg": np.array([float(reg)], np.float32)})
    if a.mode == "power":
        out["min_margin"] = np.array([stats["margin"]], np.float32)
    for k, g in zip(names, grads[:len(names)]):
        out["grad." + k] = (g if g is not None else torch.zeros_like(W[k])).detach().numpy().astype(np.float32)
    for k, g in zip(extra, grads[len(names):]):
        g = g if g is not None else torch.zeros_like(P[k])
        if a.mode == "power":
            out["grad.power.r"] = g.detach().numpy().astype(np.float32)
        elif a.mode == "ltp":
            out["grad.ltp.theta"] = g.detach().numpy().astype(np.float32)
        else:
            for l in range(L):
                out[f"grad.{k}_{l}"] = g[l].detach().numpy().astype(np.float32)
    st_io.save(a.out, out)


if __name__ == "__main__":
    main()
