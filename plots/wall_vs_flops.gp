# wall_vs_flops.gp: measured wall-clock speedup against FLOPs speedup (view `latency`),
# one panel per batch size, one colour per method, one symbol size per truncation length;
# bars span the lowest and highest per-repeat ratio; the diagonal is wall = FLOPs.  Cells
# with fp32 weights only (cells run with --weights f16 are in the view, with their column).
load 'plots/common.gp'
batches = s("SELECT group_concat(batch, ' ') FROM (SELECT DISTINCT batch FROM latency WHERE weights = 'f32' ORDER BY batch)")
nb = words(batches)
meths = s("SELECT group_concat(method, ' ') FROM (SELECT DISTINCT method FROM latency WHERE weights = 'f32' ORDER BY method)")
maxs = s("SELECT coalesce(max(max(flops_speedup), max(wall_speedup_hi)), 4) * 1.15 FROM latency WHERE weights = 'f32'") + 0
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
    set multiplot layout 1, cols title "Measured wall-clock vs FLOPs speedup\n(dense and pruned timed in turn, same process and threads)" font ",13"
    do for [i = 1:nb] {
        b = word(batches, i)
        set title sprintf("batch %s", b)
        set xlabel "FLOPs speedup (x)"
        set ylabel "wall-clock speedup (x, median; bars: min-max over repeats)"
        set grid
        set key top left box opaque font ",9"
        set xrange [0.9:maxs]
        set yrange [0:maxs]
        plot x with lines dt 2 lc rgb "#555555" title "wall = FLOPs", \
             for [m in meths] q("SELECT flops_speedup, wall_speedup, wall_speedup_lo, wall_speedup_hi FROM latency WHERE weights = 'f32' AND batch = ".b." AND method = ".lit(m)." ORDER BY flops_speedup") \
                 using 1:2:3:4 with yerrorbars pt mpt(m) ps 1.2 lc rgb mcolor(m) title m
    }
    unset multiplot
    unset output
}
