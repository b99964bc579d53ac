# wall_vs_flops.gp: measured wall-clock speedup against FLOPs speedup (view `latency`),
# one panel per batch size; one colour per dataset, one symbol per method (a dataset's
# truncation lengths share its colour); bars span the lowest and highest per-repeat ratio.
# Both axes logarithmic (the points run from 1.04x to tens of x); the dashed diagonal is
# wall = FLOPs, the dotted one wall = 0.9 x FLOPs (the share AdapLeR's wall-clock gain is
# expected to reach at batch 1 and 32, README).  Cells with fp32 weights only (cells run
# with --weights f16 are in the view, with their column).
load 'plots/common.gp'
batches = s("SELECT group_concat(batch, ' ') FROM (SELECT DISTINCT batch FROM latency WHERE weights = 'f32' ORDER BY batch)")
nb = words(batches)
# series METHOD/DATASET, split by common.gp's smeth and smodel
sers = s("SELECT group_concat(method || '/' || dataset, ' ') FROM (SELECT DISTINCT method, dataset FROM latency WHERE weights = 'f32' ORDER BY method, dataset)")
dsets = s("SELECT group_concat(dataset, ' ') FROM (SELECT DISTINCT dataset FROM latency WHERE weights = 'f32' ORDER BY dataset)")
dcolor(d) = word("#1b9e77 #d95f02 #7570b3 #e7298a #66a61e #e6ab02 #a6761d #666666", (spos(dsets, d) - 1) % 8 + 1)
maxs = s("SELECT coalesce(max(max(flops_speedup), max(wall_speedup_hi)), 4) * 1.25 FROM latency WHERE weights = 'f32'") + 0
mins = s("SELECT min(0.9, coalesce(min(wall_speedup_lo), 1) * 0.95) FROM latency WHERE weights = 'f32'") + 0
cols = nb > 1 ? (nb > 2 ? 3 : 2) : 1
do for [fmt in formats] {
    eval set_term(fmt, 620 * cols, 600)
    set output out.".".fmt
    if (nb == 0) {
        set title "Measured wall-clock vs FLOPs speedup:\nno timed cells in ".db
        set xlabel "FLOPs speedup (x)"; set ylabel "wall-clock speedup (x)"
        set xrange [1:4]; set yrange [0:4]
        plot x with lines dt 2 lc rgb "#555555" title "wall = FLOPs"
        unset output
        continue
    }
    set multiplot layout 1, cols title "Measured wall-clock vs FLOPs speedup\n(dense and pruned timed in turn, same process and threads; log scales)" font ",13"
    do for [i = 1:nb] {
        b = word(batches, i)
        set title sprintf("batch %s", b)
        set xlabel "FLOPs speedup (x)"
        set ylabel "wall-clock speedup (x, median; bars: min-max over repeats)"
        set logscale xy
        set xtics (1, 1.5, 2, 3, 5, 10, 20, 50, 100)
        set ytics (1, 1.5, 2, 3, 5, 10, 20, 50, 100)
        set grid xtics ytics
        set key top left box opaque font ",9"
        set xrange [mins:maxs]
        set yrange [mins:maxs]
        set samples 50
        plot x with lines dt 2 lc rgb "#555555" title "wall = FLOPs", \
             0.9 * x with lines dt 3 lc rgb "#555555" title "wall = 0.9 x FLOPs", \
             for [sid in sers] q("SELECT flops_speedup, wall_speedup, wall_speedup_lo, wall_speedup_hi FROM latency WHERE weights = 'f32' AND batch = ".b." AND method = ".lit(smeth(sid))." AND dataset = ".lit(smodel(sid))." ORDER BY flops_speedup") \
                 using 1:2:3:4 with yerrorbars pt mpt(smeth(sid)) ps 1.1 lc rgb dcolor(smodel(sid)) title smeth(sid)." ".smodel(sid)
    }
    unset multiplot
    unset output
}
