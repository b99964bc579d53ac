# accuracy_speedup.gp: the paper's main figure.  Accuracy against FLOPs speedup, one panel
# per dataset, one curve per method and model (a method trained per point, as PoWER-BERT and
# LTP in paper.sweep, apart from its training-free form): the Pareto points (view `frontier`,
# means over seeds), the unpruned model as a dashed line and the "1 point below" line dotted.
# Panels use each dataset's most common truncation length; split dev.
load 'plots/common.gp'
datasets = s("SELECT group_concat(dataset, ' ') FROM (SELECT DISTINCT dataset FROM points WHERE split = 'dev' ORDER BY dataset)")
nd = words(datasets)
ml(d) = s("SELECT max_len FROM points WHERE dataset = ".lit(d)." AND split = 'dev' GROUP BY max_len ORDER BY count(*) DESC, max_len DESC LIMIT 1")
where(d) = "dataset = ".lit(d)." AND split = 'dev' AND max_len = ".ml(d)
sers(d) = s(series_sql("points WHERE ".where(d)))
# the unpruned model's accuracy; NaN (no line drawn) while a sweep has not run it yet
ref(d) = s("SELECT coalesce((SELECT 100 * ref_accuracy FROM reference WHERE ".where(d)."), 'NaN')")
cols = nd > 1 ? 2 : 1
rows = panel_rows(nd, cols)
do for [fmt in formats] {
    eval set_term(fmt, 700 * cols, 620 * rows + 40)
    set output out.".".fmt
    if (nd == 0) {
        set title "Accuracy vs FLOPs speedup:\nno cells in ".db
        set xlabel "FLOPs speedup (x, dense / pruned FLOPs)"
        set ylabel "accuracy (%)"
        set xrange [1:10]; set yrange [0:100]
        plot NaN title "no data"
        unset output
        continue
    }
    set multiplot layout rows, cols title "Accuracy vs FLOPs speedup per dataset\n(dev split; each method's Pareto points)" font ",13"
    do for [i = 1:nd] {
        d = word(datasets, i)
        r = ref(d) + 0
        set title sprintf("%s (max_len %s)", d, ml(d))
        set xlabel "FLOPs speedup (x, dense FLOPs / method FLOPs, log scale)"
        set ylabel "accuracy (%)"
        set logscale x 2
        set grid
        set key below box font ",9" maxrows 4
        set bmargin 9
        set autoscale
        # saliency's speedup is below 1 (its gradient pass counts): start left of it
        set xrange [s("SELECT min(0.9, 0.8 * min(flops_speedup)) FROM frontier WHERE ".where(d)) + 0:*]
        set yrange [*:101]
        sl = sers(d)
        plot for [sid in sl] q("SELECT flops_speedup, 100 * accuracy FROM frontier WHERE ".where(d)." AND ".ser_sql(sid)." ORDER BY flops_speedup") \
                 using 1:2 with linespoints lw 2 dt sdt(sl, sid) pt mpt(smeth(sid)) ps 1.2 lc rgb mcolor(smeth(sid)) title slabel(sl, sid), \
             r with lines dt 2 lc rgb "#555555" title "unpruned", \
             r - 1 with lines dt 3 lc rgb "#999999" title "unpruned - 1 point"
        unset logscale x
    }
    unset multiplot
    unset output
}
