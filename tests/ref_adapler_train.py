"""PyTorch autograd reference for AdapLeR's soft-removal training step (the oracle of
tests/test_adapler_train.c), written from adapler-method.md sections 3-4, independently of
the C code: one sequence at a time, float64, dropout off.

  ref_adapler_train.py --model DIR --out FILE --lengths 1,7,30 --lambda 10 --gamma 0.5 --phi 0.05

DIR holds a model made by `ref_bert.py make --adapler`.  FILE (safetensors) receives the
inputs (input_ids, offsets, labels, saliency), the losses (loss_task, loss_cp, loss_len),
the per-layer soft masks (mask_<l>: the running log-mask a_l), and the gradients:
grad.<bert or CP tensor name> of L_task + gamma L_CP, and grad.adapler.eta of
L_task + phi L_len."""
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
BETA, FLOOR, EPS = 0.1, -10000.0, 1e-7


def soft_S(x, delta, lam):
    steep = (lam / delta) * (x - delta) - BETA / lam
    flat = (BETA / lam) * (x - 1.0) / (1.0 - delta)
    return torch.clamp(torch.where(x < delta, steep, flat), max=0.0)


def forward_seq(cfg, W, ids, label, sal, lam):
    H, A, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    eps = cfg.get("layer_norm_eps", 1e-12)
    dh, n = H // A, len(ids)
    e = "bert.embeddings."
    x = W[e + "word_embeddings.weight"][ids] + W[e + "token_type_embeddings.weight"][[0] * n] \
        + W[e + "position_embeddings.weight"][list(range(n))]
    x = layer_norm(x, W[e + "LayerNorm.weight"], W[e + "LayerNorm.bias"], eps)

    def lin(x, name):
        return x @ W[name + ".weight"].T + W[name + ".bias"]

    a = torch.zeros(n)
    not_cls = torch.ones(n)
    not_cls[0] = 0
    kl_terms, lens, masks = [], [], []
    for l in range(L):
        p = f"adapler.predictor.{l}."
        z = (gelu(x @ W[p + "dense1.weight"].T + W[p + "dense1.bias"]) @ W[p + "dense2.weight"].T
             + W[p + "dense2.bias"])[:, 0]
        c = torch.softmax(z + a, dim=0)
        m = torch.exp(a)
        nprev = 1.0 + (m * not_cls).sum()
        gate = (m * not_cls).max().detach() if n > 1 else torch.tensor(0.0)
        t = (sal * m).detach()
        t = t / t.sum()
        tc, cc = torch.clamp(t, EPS, 1.0), torch.clamp(c, EPS, 1.0)
        kl_terms.append((L - l) * gate * (tc * torch.log(tc / cc)).sum())
        delta = torch.clamp(W["adapler.eta"][l] / nprev, max=1.0 - 1e-6)
        S = soft_S(c, delta, lam) * not_cls
        a = torch.clamp(a + S, min=FLOOR)
        masks.append(a)
        lens.append(1.0 + (torch.exp(a) * not_cls).sum())
        q = f"bert.encoder.layer.{l}."
        qh = lin(x, q + "attention.self.query").view(n, A, dh).transpose(0, 1)
        kh = lin(x, q + "attention.self.key").view(n, A, dh).transpose(0, 1)
        vh = lin(x, q + "attention.self.value").view(n, A, dh).transpose(0, 1)
        att = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(dh) + a[None, None, :], dim=-1)
        ctx = (att @ vh).transpose(0, 1).reshape(n, H)
        x = layer_norm(lin(ctx, q + "attention.output.dense") + x, W[q + "attention.output.LayerNorm.weight"],
                       W[q + "attention.output.LayerNorm.bias"], eps)
        h = gelu(lin(x, q + "intermediate.dense"))
        x = layer_norm(lin(h, q + "output.dense") + x, W[q + "output.LayerNorm.weight"], W[q + "output.LayerNorm.bias"], eps)
    logits = lin(torch.tanh(lin(x[0:1], "bert.pooler.dense")), "classifier")[0]
    task = -torch.log_softmax(logits, dim=0)[label]
    return task, sum(kl_terms), sum(lens), masks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lengths", required=True)
    ap.add_argument("--lambda", dest="lam", type=float, default=10.0)
    ap.add_argument("--gamma", type=float, default=0.5)
    ap.add_argument("--phi", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    cfg, W = load_model(a.model)
    for v in W.values():
        v.requires_grad_(True)
    rng = np.random.default_rng(a.seed)
    V, C = cfg["vocab_size"], len(cfg.get("id2label", {})) or cfg.get("num_labels", 2)
    lengths = [int(s) for s in a.lengths.split(",")]
    ids_all, offs, labels, sal_all = [], [0], [], []
    task = kl = ln = 0.0
    masks_all = None
    for n in lengths:
        ids = [2] + list(rng.integers(5, V, size=n - 1))
        label = int(rng.integers(0, C))
        sal = rng.uniform(0.01, 1.0, n) ** 3  # skewed, like real saliency
        t, k, le, masks = forward_seq(cfg, W, torch.tensor(ids), label, torch.tensor(sal), a.lam)
        task, kl, ln = task + t, kl + k, ln + le
        masks_all = [m.detach() for m in masks] if masks_all is None else \
            [torch.cat([x, m.detach()]) for x, m in zip(masks_all, masks)]
        ids_all += ids
        offs.append(offs[-1] + n)
        labels.append(label)
        sal_all += list(sal)
    B = len(lengths)
    task, kl, ln = task / B, kl / B, ln / B
    obj_a = task + a.gamma * kl
    names = [k for k in W if k != "adapler.eta"]
    grads_a = torch.autograd.grad(obj_a, [W[k] for k in names], retain_graph=True, allow_unused=True)
    obj_b = task + a.phi * ln
    (grad_eta,) = torch.autograd.grad(obj_b, [W["adapler.eta"]])
    out = {"input_ids": np.array(ids_all, np.int32), "offsets": np.array(offs, np.int32),
           "labels": np.array(labels, np.int32), "saliency": np.array(sal_all, np.float32),
           "loss_task": np.array([float(task)], np.float32), "loss_cp": np.array([float(kl)], np.float32),
           "loss_len": np.array([float(ln)], np.float32),
           "grad.adapler.eta": grad_eta.numpy().astype(np.float32)}
    for l, m in enumerate(masks_all):
        out[f"mask_{l}"] = m.numpy().astype(np.float32)
    for k, g in zip(names, grads_a):
        out["grad." + k] = (g if g is not None else torch.zeros_like(W[k])).detach().numpy().astype(np.float32)
    st_io.save(a.out, out)


if __name__ == "__main__":
    main()
