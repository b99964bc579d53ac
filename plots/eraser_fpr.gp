# eraser_fpr.gp: the paper's rationale comparison.  False-positive rate of the words each
# method keeps at the last layer (non-rationale words kept / non-rationale words, micro,
# view `eraser_table`) against FLOPs speedup, one panel per dataset with human rationales.
# --match runs keep AdapLeR's token counts, so their points sit at AdapLeR's speedups.  One
# line per method and model (common.gp), as in the main figure.
load 'plots/common.gp'
datasets = s("SELECT group_concat(dataset, ' ') FROM (SELECT DISTINCT dataset FROM eraser_table WHERE split = 'dev' ORDER BY dataset)")
nd = words(datasets)
# free: each method over its own knob (solid; a method's second model dash-dotted); matched:
# forced to another run's per-layer counts by `match=` (dashed), so the two kinds of point
# never share a line
FREE = "coalesce(knob, '') NOT LIKE 'match %'"
MATCHED = "knob LIKE 'match %'"
at_counts = " at AdapLeR's counts"
sers(d, kind) = s(series_sql("eraser_table WHERE dataset = ".lit(d)." AND split = 'dev' AND ".kind))
series(d, sid, kind) = q("SELECT avg(flops_speedup), 100 * avg(fpr) FROM eraser_table WHERE split = 'dev' AND dataset = ".lit(d)." AND ".ser_sql(sid)." AND ".kind." GROUP BY operating_point ORDER BY 1")
cols = nd > 1 ? 2 : 1
rows = panel_rows(nd, cols)
do for [fmt in formats] {
    eval set_term(fmt, 700 * cols, 500 * rows + 40)
    set output out.".".fmt
    if (nd == 0) {
        set title "ERASER false-positive rate:\nno dataset with rationales in ".db
        set xlabel "FLOPs speedup (x)"; set ylabel "false-positive rate (%)"
        set xrange [1:4]; set yrange [0:100]
        plot NaN title "no data"
        unset output
        continue
    }
    set multiplot layout rows, cols title "Rationale quality: non-rationale words kept\nat the last layer (ERASER FPR, lower is better)" font ",13"
    do for [i = 1:nd] {
        d = word(datasets, i)
        set title d
        set xlabel "FLOPs speedup (x, log scale)"
        set ylabel "false-positive rate (%, micro over words)"
        set logscale x 2
        set grid
        set key top right box opaque font ",9"
        set yrange [0:105]
        # saliency's speedup is below 1 (its gradient pass counts): start left of it
        set xrange [s("SELECT min(0.9, 0.8 * min(flops_speedup)) FROM eraser_table WHERE split = 'dev' AND dataset = ".lit(d)) + 0:*]
        fm = sers(d, FREE)
        mm = sers(d, MATCHED)
        # each kind's clause only when it has series: `for [m in ""]` (and for [j = 1:0])
        # still plots once, an empty series with an empty legend line
        free = "for [sid in fm] series(d, sid, FREE) using 1:2 with linespoints lw 2 dt sdt(fm, sid) pt mpt(smeth(sid)) ps 1.2 lc rgb mcolor(smeth(sid)) title slabel(fm, sid)"
        matched = "for [sid in mm] series(d, sid, MATCHED) using 1:2 with linespoints lw 2 dt 2 pt mpt(smeth(sid)) ps 1.2 lc rgb mcolor(smeth(sid)) title slabel(mm, sid).at_counts"
        eval "plot ".(words(fm) > 0 ? free : "").(words(fm) > 0 && words(mm) > 0 ? ", " : "").(words(mm) > 0 ? matched : "")
        unset logscale x
    }
    unset multiplot
    unset output
}
