"""PyTorch autograd reference for gradient x input saliency (tests/test_saliency.c):
s_j = || d z_c / d e_j * e_j ||_2 with e the embedding output (after its LayerNorm).

  ref_saliency.py --model DIR --out FILE --lengths 1,9,40

writes input_ids, offsets, cls (the class differentiated, random) and saliency (n_tok).
saliency_scores() is also the saliency baseline's oracle (ref_bert.py run --baseline
saliency): the predicted class, and the scores at every layer's input."""
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


def encoder_from_embeddings(cfg, W, e, inputs=None):
    """Logits of the dense model from the embedding output e; the input of every layer is
    appended to `inputs` if given."""
    H, A, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg.get("layer_norm_eps", 1e-12)
    dh, n, x = H // A, e.shape[0], e

    def lin(x, name):
        return x @ W[name + ".weight"].T + W[name + ".bias"]

    for l in range(cfg["num_hidden_layers"]):
        if inputs is not None:
            inputs.append(x)
        p = f"bert.encoder.layer.{l}."
        q = lin(x, p + "attention.self.query").view(n, A, dh).transpose(0, 1)
        k = lin(x, p + "attention.self.key").view(n, A, dh).transpose(0, 1)
        v = lin(x, p + "attention.self.value").view(n, A, dh).transpose(0, 1)
        c = (torch.softmax(q @ k.transpose(1, 2) / math.sqrt(dh), -1) @ v).transpose(0, 1).reshape(n, H)
        x = layer_norm(lin(c, p + "attention.output.dense") + x, W[p + "attention.output.LayerNorm.weight"],
                       W[p + "attention.output.LayerNorm.bias"], eps)
        x = layer_norm(lin(gelu(lin(x, p + "intermediate.dense")), p + "output.dense") + x,
                       W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)
    return lin(torch.tanh(lin(x[0:1], "bert.pooler.dense")), "classifier")[0]


def embed(cfg, W, ids, types):
    eps, e_, n = cfg.get("layer_norm_eps", 1e-12), "bert.embeddings.", len(ids)
    return layer_norm(W[e_ + "word_embeddings.weight"][ids] + W[e_ + "token_type_embeddings.weight"][types]
                      + W[e_ + "position_embeddings.weight"][list(range(n))], W[e_ + "LayerNorm.weight"],
                      W[e_ + "LayerNorm.bias"], eps)


def saliency_scores(cfg, W, ids, types):
    """One sequence, the dense model, dropout off: the predicted class c (argmax, ties to
    the lower class), the relative gap between the two best logits, and the scores
    || d z_c / d h * h ||_2 at every layer's input h (layer 0's input is the embedding
    output)."""
    e = embed(cfg, W, ids, types).detach().requires_grad_(True)
    xs = []
    logits = encoder_from_embeddings(cfg, W, e, xs)
    c = int(torch.argmax(logits))
    top = torch.sort(logits.detach(), descending=True).values
    gap = float((top[0] - top[1]) / max(abs(float(top[0])), 1e-30)) if len(top) > 1 else 1.0
    grads = torch.autograd.grad(logits[c], xs)
    return c, gap, [torch.linalg.norm(g * x, dim=1).detach() for g, x in zip(grads, xs)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lengths", required=True)
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    cfg, W = load_model(a.model)
    rng = np.random.default_rng(a.seed)
    V, C = cfg["vocab_size"], len(cfg.get("id2label", {})) or 2
    ids_all, offs, cls_all, sal_all = [], [0], [], []
    eps = cfg.get("layer_norm_eps", 1e-12)
    e_ = "bert.embeddings."
    for n in [int(s) for s in a.lengths.split(",")]:
        ids = [2] + list(rng.integers(5, V, size=n - 1))
        c = int(rng.integers(0, C))
        e = layer_norm(W[e_ + "word_embeddings.weight"][ids] + W[e_ + "token_type_embeddings.weight"][[0] * n]
                       + W[e_ + "position_embeddings.weight"][list(range(n))], W[e_ + "LayerNorm.weight"],
                       W[e_ + "LayerNorm.bias"], eps).detach().requires_grad_(True)
        (g,) = torch.autograd.grad(encoder_from_embeddings(cfg, W, e)[c], [e])
        sal_all += list(torch.linalg.norm(g * e, dim=1).detach().numpy())
        ids_all += ids
        offs.append(offs[-1] + n)
        cls_all.append(c)
    st_io.save(a.out, {"input_ids": np.array(ids_all, np.int32), "offsets": np.array(offs, np.int32),
                       "cls": np.array(cls_all, np.int32), "saliency": np.array(sal_all, np.float32)})


if __name__ == "__main__":
    main()
