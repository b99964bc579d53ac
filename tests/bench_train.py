"""`make bench`, training part: a training step (forward + backward + gradient clipping +
AdamW) of the C engine against PyTorch on the same shape, same threads, in the same run.

C side:  `adapler train --bench` (random `small` model by default: L6 H256 A4 I1024, vocabulary
         16000; B sequences of N tokens packed without padding; dropout 0.1 on hidden states and
         attention probabilities; mean cross-entropy; clip 1.0; AdamW).  It also measures the
         machine's sgemm peak (median of 2048^3 cblas_sgemm on the same threads) and reports the
         training FLOP rate as a share of it (training FLOPs = 3x the forward's, engine/flops.c).
PyTorch: the same model written like Hugging Face's BertForSequenceClassification (nn.Linear,
         softmax attention, erf GELU, post-LN, dropout 0.1 at the same five places), float32,
         B x N without padding (all sequences of length N), CrossEntropyLoss, clip_grad_norm_,
         torch.optim.AdamW (no decay on biases and LayerNorm), torch.set_num_threads(T).  Both use
         Debian's OpenBLAS with the same OPENBLAS_CORETYPE.
Timings are medians over steps filling --min-time seconds, after two warm-up steps.

Run with /usr/bin/python3 (Debian's interpreter with python3-torch)."""
import argparse
import json
import math
import os
import subprocess
import sys
import time

SHAPES = {"tiny": (2, 128, 2, 512), "mini": (4, 256, 4, 1024), "small": (6, 256, 4, 1024), "base": (12, 768, 12, 3072)}


def coretype():
    """The OPENBLAS_CORETYPE the C binary picks on CPUs OpenBLAS 0.3.21 does not know."""
    if os.environ.get("OPENBLAS_CORETYPE"):
        return os.environ["OPENBLAS_CORETYPE"]
    flags = open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0].split()
    if all(f in flags for f in ("avx512f", "avx512bw", "avx512vl", "avx512dq")):
        return "SkylakeX"
    if "avx2" in flags and "fma" in flags:
        return "Haswell"
    return ""


def torch_worker(a):
    import torch
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    L, H, A, I = SHAPES[a.config]
    dh, V, p = H // A, 16000, 0.1
    drop = torch.nn.Dropout(p)

    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = torch.nn.Linear(H, H), torch.nn.Linear(H, H), torch.nn.Linear(H, H)
            self.o, self.ln1 = torch.nn.Linear(H, H), torch.nn.LayerNorm(H, eps=1e-12)
            self.i, self.out, self.ln2 = torch.nn.Linear(H, I), torch.nn.Linear(I, H), torch.nn.LayerNorm(H, eps=1e-12)

        def forward(self, x):
            B, N, _ = x.shape

            def heads(t):
                return t.view(B, N, A, dh).permute(0, 2, 1, 3)
            q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
            s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(dh)
            c = torch.matmul(drop(torch.softmax(s, dim=-1)), v).permute(0, 2, 1, 3).reshape(B, N, H)
            x = self.ln1(drop(self.o(c)) + x)
            return self.ln2(drop(self.out(torch.nn.functional.gelu(self.i(x)))) + x)

    class Bert(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.word, self.pos, self.typ = torch.nn.Embedding(V, H), torch.nn.Embedding(512, H), torch.nn.Embedding(2, H)
            self.ln = torch.nn.LayerNorm(H, eps=1e-12)
            self.layers = torch.nn.ModuleList([Layer() for _ in range(L)])
            self.pool, self.cls = torch.nn.Linear(H, H), torch.nn.Linear(H, 2)

        def forward(self, ids):
            N = ids.shape[1]
            x = drop(self.ln(self.word(ids) + self.typ(torch.zeros_like(ids)) + self.pos(torch.arange(N)[None, :])))
            for layer in self.layers:
                x = layer(x)
            return self.cls(drop(torch.tanh(self.pool(x[:, 0]))))

    model = Bert().train()
    decay = [q for n, q in model.named_parameters() if q.dim() == 2 and "word" not in n and "pos" not in n and "typ" not in n]
    decay += [model.word.weight, model.pos.weight, model.typ.weight]
    no_decay = [q for q in model.parameters() if q.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-4)
    ids = torch.randint(5, V, (a.batch, a.seq))
    labels = torch.randint(0, 2, (a.batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(ids), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    for _ in range(2):
        step()
    times, t0 = [], time.perf_counter()
    while len(times) < 3 or time.perf_counter() - t0 < a.min_time:
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({"step_ms": 1e3 * med, "tokens_per_s": a.batch * a.seq / med, "steps": len(times),
                      "torch": torch.__version__}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--adapler", default="bin/adapler")
    ap.add_argument("--config", default="small", choices=sorted(SHAPES))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--min-time", type=float, default=10.0)
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_worker:
        torch_worker(a)
        return
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.1f} before starting: other processes share the cores, so both "
              "figures are low and their ratio is unreliable", file=sys.stderr)
    common = ["--config", a.config, "--batch", str(a.batch), "--seq", str(a.seq), "--threads", str(a.threads),
              "--min-time", str(a.min_time)]
    c = json.loads(subprocess.run([a.adapler, "train", "--bench"] + common, check=True, capture_output=True,
                                  text=True).stdout)
    env = dict(os.environ)
    if coretype():
        env["OPENBLAS_CORETYPE"] = coretype()
    t = json.loads(subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-worker"] + common, env=env,
                                  check=True, capture_output=True, text=True).stdout)
    L, H, A, I = SHAPES[a.config]
    print(f"training step, {a.config} (L{L} H{H} A{A} I{I}, vocabulary 16000), {a.batch} x {a.seq} tokens, "
          f"{a.threads} threads, dropout 0.1, AdamW + clipping")
    print(f"  C engine   {c['step_ms']:8.1f} ms/step  {c['tokens_per_s']:8.0f} tokens/s  "
          f"{c['train_gflops']:6.1f} GFLOP/s = {c['pct_of_sgemm_peak']:.1f}% of sgemm peak ({c['sgemm_peak_gflops']:.1f} GFLOP/s)"
          f"   [forward {c['fwd_ms']:.0f} ms, backward {c['bwd_ms']:.0f} ms, clip+AdamW {c['opt_ms']:.0f} ms]")
    print(f"  PyTorch    {t['step_ms']:8.1f} ms/step  {t['tokens_per_s']:8.0f} tokens/s   (torch {t['torch']})")
    print(f"  C / PyTorch: {c['tokens_per_s'] / t['tokens_per_s']:.2f}x")
    print(json.dumps({"bench": "train_step", "config": a.config, "batch": a.batch, "seq": a.seq, "threads": a.threads,
                      "c": c, "torch": t, "speedup_vs_torch": c["tokens_per_s"] / t["tokens_per_s"]}))


if __name__ == "__main__":
    main()
