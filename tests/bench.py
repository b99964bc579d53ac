"""`make bench`: the C engine against PyTorch on this machine, same shapes, same weights,
same threads, measured in one run.

PyTorch side: an eager float32 BERT written like Hugging Face's BertModel (nn.Linear for
Q, K, V, O and the FFN, softmax attention, erf GELU, post-LN), under torch.inference_mode,
torch.set_num_threads(T).  Both sides use the same OpenBLAS (Debian's python3-torch calls
the system libblas, i.e. OpenBLAS) with the same OPENBLAS_CORETYPE; the C binary sets it
itself on CPUs OpenBLAS 0.3.21 does not recognise, so this script sets it for PyTorch the
same way.  Timings are medians over repeats of at least --min-time seconds, after warm-up.

Run with /usr/bin/python3 (Debian's interpreter with python3-torch)."""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def coretype():
    """The OPENBLAS_CORETYPE the C binary would pick (same rule as adp_blas_fix_coretype)."""
    if os.environ.get("OPENBLAS_CORETYPE"):
        return os.environ["OPENBLAS_CORETYPE"]
    flags = open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0].split()
    if all(f in flags for f in ("avx512f", "avx512bw", "avx512vl", "avx512dq")):
        return "SkylakeX"
    if "avx2" in flags and "fma" in flags:
        return "Haswell"
    return ""


def torch_worker(args):
    """Runs in a child process (so OPENBLAS_CORETYPE is set before torch loads)."""
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    L, H, A, I = args.layers, args.hidden, args.heads, args.inter
    dh = H // A

    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = torch.nn.Linear(H, H), torch.nn.Linear(H, H), torch.nn.Linear(H, H)
            self.o, self.ln1 = torch.nn.Linear(H, H), torch.nn.LayerNorm(H, eps=1e-12)
            self.i, self.out, self.ln2 = torch.nn.Linear(H, I), torch.nn.Linear(I, H), torch.nn.LayerNorm(H, eps=1e-12)

        def forward(self, x, mask):
            B, N, _ = x.shape
            def heads(t):
                return t.view(B, N, A, dh).permute(0, 2, 1, 3)
            q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
            s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(dh)
            if mask is not None:
                s = s + mask
            p = torch.softmax(s, dim=-1)
            c = torch.matmul(p, v).permute(0, 2, 1, 3).reshape(B, N, H)
            x = self.ln1(self.o(c) + x)
            return self.ln2(self.out(torch.nn.functional.gelu(self.i(x))) + x)

    class Bert(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.word, self.pos, self.typ = torch.nn.Embedding(1000, H), torch.nn.Embedding(512, H), torch.nn.Embedding(2, H)
            self.ln = torch.nn.LayerNorm(H, eps=1e-12)
            self.layers = torch.nn.ModuleList([Layer() for _ in range(L)])
            self.pool, self.cls = torch.nn.Linear(H, H), torch.nn.Linear(H, 2)

        def forward(self, ids, mask=None):
            N = ids.shape[1]
            x = self.ln(self.word(ids) + self.typ(torch.zeros_like(ids)) + self.pos(torch.arange(N)[None, :]))
            for layer in self.layers:
                x = layer(x, mask)
            return self.cls(torch.tanh(self.pool(x[:, 0])))

    model = Bert().eval()
    out = []
    with torch.inference_mode():
        for B, N in args.shapes:
            ids = torch.randint(5, 1000, (B, N))
            for _ in range(2):
                model(ids)
            times, t0 = [], time.perf_counter()
            while len(times) < 5 or time.perf_counter() - t0 < args.min_time:
                t = time.perf_counter()
                model(ids)
                times.append(time.perf_counter() - t)
            times.sort()
            out.append({"batch": B, "seq": N, "ms_median": 1e3 * times[len(times) // 2]})
        if args.padded_lengths:  # batches padded to their longest sequence, as usual in PyTorch
            batches = json.load(open(args.padded_lengths))
            tensors = []
            for lens in batches:
                n = max(lens)
                ids = torch.randint(5, 1000, (len(lens), n))
                mask = torch.zeros(len(lens), 1, 1, n)
                for i, l in enumerate(lens):
                    mask[i, 0, 0, l:] = -10000.0
                tensors.append((ids, mask))
            for ids, mask in tensors[:2]:
                model(ids, mask)
            reps = []
            t0 = time.perf_counter()
            while len(reps) < 3 or time.perf_counter() - t0 < args.min_time:
                t = time.perf_counter()
                for ids, mask in tensors:
                    model(ids, mask)
                reps.append(time.perf_counter() - t)
            reps.sort()
            out.append({"padded_total_ms": 1e3 * reps[len(reps) // 2]})
    print(json.dumps(out))


def torch_times(shape_args, shapes, threads, min_time, padded=None):
    env = dict(os.environ)
    ct = coretype()
    if ct:
        env["OPENBLAS_CORETYPE"] = ct
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker", "--threads", str(threads),
           "--min-time", str(min_time), "--shapes", ";".join(f"{b}x{n}" for b, n in shapes)] + shape_args
    if padded:
        cmd += ["--padded-lengths", padded]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("bench: PyTorch worker failed:\n" + r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def c_bench(adapler, dims, B, N, threads, min_time, schedule=None, extra=()):
    cmd = [adapler, "bench", "--layers", str(dims[0]), "--hidden", str(dims[1]), "--heads", str(dims[2]),
           "--inter", str(dims[3]), "--batch", str(B), "--threads", str(threads),
           "--min-time", str(min_time), "--json"] + (["--seq", str(N)] if N else [])
    if schedule:
        cmd += ["--schedule", schedule]
    cmd += list(extra)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("bench: adapler bench failed:\n" + r.stderr)
    return json.loads(r.stdout)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed:\n" + r.stderr)
    return r.stdout


def sst2_section(args, base, small, T, mt):
    """Real lengths: SST-2 dev sentences, batches of 32, packed (C) vs padded to the batch's
    longest sequence (PyTorch), same shape, same threads."""
    root = os.path.join(HERE, "..")
    if not os.path.exists(os.path.join(root, "data", "sst2", "dev.tsv")):
        print("\nSST-2 section skipped: no data/sst2 (run `make data`)")
        return
    work = tempfile.mkdtemp(prefix="adapler-bench-")
    vocab = os.path.join(work, "vocab.txt")
    run([args.adapler, "vocab", "--dataset", "sst2", "--size", "8000", "--out", vocab])
    print()
    print("Tokenizer (SST-2, one core): ", end="")
    tb = json.loads(run([args.adapler, "data", "bench", "--dataset", "sst2", "--vocab", vocab]).strip().splitlines()[-1])
    print(", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in tb.items()
                    if isinstance(v, (int, float))))
    lens = [len(json.loads(l)["input_ids"]) for l in
            run([args.adapler, "data", "dump", "--dataset", "sst2", "--split", "dev", "--vocab", vocab]).splitlines() if l]
    lens_path = os.path.join(work, "lengths.txt")
    with open(lens_path, "w") as f:
        f.write(" ".join(map(str, lens)) + "\n")
    B = 32
    batches = [lens[i:i + B] for i in range(0, len(lens), B)]
    padded_path = os.path.join(work, "batches.json")
    with open(padded_path, "w") as f:
        json.dump(batches, f)
    real, padded = sum(lens), sum(len(b) * max(b) for b in batches)
    print(f"SST-2 dev: {len(lens)} sentences, {real} WordPieces; padded per batch of {B}: {padded} "
          f"({100 * (padded / real - 1):.0f}% padding)")
    print(f"{'shape':<22}{'C packed tok/s':>16}{'torch padded tok/s':>20}{'ratio':>8}{'target':>10}")
    for dims, name in [(small, "small L6 H256"), (base, "BERT-base L12 H768")]:
        dim_args = ["--layers", str(dims[0]), "--hidden", str(dims[1]), "--heads", str(dims[2]), "--inter", str(dims[3])]
        tr = torch_times(dim_args, [], T, mt, padded=padded_path)[-1]
        c = c_bench(args.adapler, dims, B, 0, T, mt, extra=["--lengths", lens_path])
        ttok = real / (tr["padded_total_ms"] / 1e3)
        ratio = c["tokens_per_s"] / ttok
        print(f"{name:<22}{c['tokens_per_s']:>16.0f}{ttok:>20.0f}{ratio:>7.2f}x{'1.5x ' + ('ok' if ratio >= 1.5 else 'MISSED'):>10}")


def flops_dense(dims, n):
    L, H, A, I = dims
    return L * (8 * n * H * H + 4 * n * n * H + 4 * n * H * I) + 2 * H * H + 4 * H


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapler", default=os.path.join(HERE, "..", "bin", "adapler"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--shapes", help=argparse.SUPPRESS)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--inter", type=int)
    ap.add_argument("--padded-lengths", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        args.shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(";") if s]
        torch_worker(args)
        return

    base, small = (12, 768, 12, 3072), (6, 256, 4, 1024)
    T, mt = args.threads, args.min_time
    print(f"AdapLeR-C benchmark: {T} threads, OPENBLAS_CORETYPE={coretype() or '(auto)'}, min {mt}s per timing")
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"WARNING: load average {load:.2f} before starting: other processes compete for the cores, and")
        print("         OpenMP threads waiting on a descheduled peer make every figure below unreliable.")
    print()
    print("Dense forward, C engine vs PyTorch (same shapes, same threads)")
    hdr = f"{'shape':<22}{'batch x seq':>12}{'C tok/s':>11}{'C GFLOP/s':>11}{'torch tok/s':>13}{'torch GFLOP/s':>15}{'ratio':>8}{'target':>8}"
    print(hdr)
    rows = [(base, "BERT-base L12 H768", [(1, 128, None), (8, 128, 1.0), (8, 512, None)]),
            (small, "small L6 H256", [(32, 128, 1.1), (8, 512, 1.5), (1, 24, 1.2)])]
    summary = []
    for dims, name, shapes in rows:
        dim_args = ["--layers", str(dims[0]), "--hidden", str(dims[1]), "--heads", str(dims[2]), "--inter", str(dims[3])]
        tt = torch_times(dim_args, [(b, n) for b, n, _ in shapes], T, mt)
        for (B, N, target), tr in zip(shapes, tt):
            c = c_bench(args.adapler, dims, B, N, T, mt)
            ttok = B * N / (tr["ms_median"] / 1e3)
            tgf = B * flops_dense(dims, N) / (tr["ms_median"] / 1e3) / 1e9
            ratio = c["tokens_per_s"] / ttok
            ok = "" if target is None else ("ok" if ratio >= target else "MISSED")
            print(f"{name:<22}{f'{B} x {N}':>12}{c['tokens_per_s']:>11.0f}{c['gflops_per_s']:>11.1f}{ttok:>13.0f}"
                  f"{tgf:>15.1f}{ratio:>7.2f}x{(f'{target}x ' + ok) if target else '':>10}")
            summary.append({"shape": name, "batch": B, "seq": N, "c_tokens_per_s": c["tokens_per_s"],
                            "c_gflops_per_s": c["gflops_per_s"], "torch_tokens_per_s": ttok, "ratio": ratio})
    print()
    print("Pruned path (BERT-base, 'schedule' control keeping half the remaining tokens before layers 4 and 8)")
    print(f"{'batch x seq':>12}{'dense ms':>10}{'pruned ms':>11}{'wall speedup':>14}{'FLOPs speedup':>15}{'wall/FLOPs':>12}{'target':>8}")
    for B, N in [(1, 128), (32, 128)]:
        c = c_bench(args.adapler, base, B, N, T, mt, schedule="4:0.5,8:0.5")
        r = c["wall_speedup"] / c["flops_speedup"]
        print(f"{f'{B} x {N}':>12}{c['ms_median']:>10.2f}{c['pruned_ms_median']:>11.2f}{c['wall_speedup']:>13.3f}x"
              f"{c['flops_speedup']:>14.3f}x{r:>12.3f} {'0.9 ' + ('ok' if r >= 0.9 else 'MISSED'):>10}")
    print()
    # AdapLeR on the README's SST-2 proxy at 4.59x fewer FLOPs leaves about 10, 8, 5, 5, 4, 3
    # of 26 tokens in the six layers (README, AdapLeR): the same counts through the 'schedule'
    # control, on the small shape (the real kept point, 4.16x, leaves about 2 in layers 3-5)
    sched = "0:0.37,1:0.8,2:0.6,4:0.8,5:0.7"
    print("Pruned to a few tokens (small shape, 26 tokens, schedule " + sched + ": 10, 8, 5, 5, 4, 3 per layer,")
    print("as AdapLeR on SST-2 at 4.6x); every layer streams its weights whatever its rows, so batch 1")
    print("is bounded by the one-token pass below.  --weights f16 (the projections in IEEE half:")
    print("half the bytes, other numerics) lowers that bound, bf16 (bfloat16, as many bytes, cheaper")
    print("to convert) a little more, --weights i8 (int8, one scale per output")
    print("row: a quarter) lowers it again where the weights come from memory; BERT-base, whose weights")
    print("do, with the same schedule over its first six layers")
    print(f"{'shape':>9}{'weights':>8}{'batch x seq':>12}{'dense ms':>10}{'pruned ms':>11}{'wall speedup':>14}"
          f"{'FLOPs speedup':>15}{'wall/FLOPs':>12}{'target':>8}")
    for name, dims, B in [("small", small, 1), ("small", small, 32), ("BERT-base", base, 1)]:
        for w in ("f32", "f16", "bf16", "i8"):
            c = c_bench(args.adapler, dims, B, 26, T, mt, schedule=sched, extra=["--weights", w])
            r = c["wall_speedup"] / c["flops_speedup"]
            print(f"{name:>9}{w:>8}{f'{B} x 26':>12}{c['ms_median']:>10.3f}{c['pruned_ms_median']:>11.3f}"
                  f"{c['wall_speedup']:>13.3f}x{c['flops_speedup']:>14.3f}x{r:>12.3f}"
                  f" {'0.9 ' + ('ok' if r >= 0.9 else 'MISSED'):>10}")
    for w in ("f32", "f16", "bf16", "i8"):
        one = c_bench(args.adapler, small, 1, 1, T, mt, extra=["--weights", w])
        print(f"  one-token pass, small, batch 1, {w}: {one['ms_median']:.3f} ms, "
              f"{1e3 * one['ms_median'] / small[0]:.1f} us a layer")
    print()
    print("Cost of the pruning interface: a strategy acting at both points of every layer, asking for")
    print("the attention probabilities and keeping every token, against no strategy (small, 32 x 128)")
    c = c_bench(args.adapler, small, 32, 128, T, mt, extra=["--keep-all"])
    print(f"  dense {c['ms_median']:.2f} ms, keep-all {c['keep_all_ms_median']:.2f} ms: overhead {100 * c['keep_all_overhead']:+.1f}%"
          " (the 'none' strategy takes the dense path itself: no call, no copy)")

    sst2_section(args, base, small, T, mt)
    blas = c_bench(args.adapler, small, 1, 8, T, 0.1)["blas"]
    print()
    print("BLAS:", blas)


if __name__ == "__main__":
    main()
