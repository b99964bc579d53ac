# layer_tokens.gp: tokens entering each layer, as a share of the input length, for every
# method (and model, see common.gp) at its operating point in `paper_table` (the fastest
# point within 1 point of the unpruned model's accuracy), one panel per dataset.  From the
# per-layer rows.
load 'plots/common.gp'
datasets = s("SELECT group_concat(dataset, ' ') FROM (SELECT DISTINCT dataset FROM paper_table WHERE split = 'dev' AND knob IS NOT NULL ORDER BY dataset)")
nd = words(datasets)
sers(d) = s(series_sql("paper_table WHERE dataset = ".lit(d)." AND split = 'dev' AND knob IS NOT NULL"))
pick(d, sid) = "FROM cell_layers l JOIN current_cells c USING (cell_key) JOIN paper_table p ON p.dataset = c.dataset AND p.split = c.split AND p.max_len = c.max_len AND p.method = c.method AND p.knob IS c.knob AND p.model_name IS c.model_name WHERE c.split = 'dev' AND c.dataset = ".lit(d)." AND c.method = ".lit(smeth(sid))." AND coalesce(c.model_name, '') = ".lit(smodel(sid))
label(d, sl, sid) = slabel(sl, sid).s("SELECT coalesce(' ' || nullif(trim(".knob_cut_sql("knob")."), ''), '') || printf(' (%.1fx)', flops_speedup) FROM paper_table WHERE split = 'dev' AND dataset = ".lit(d)." AND ".ser_sql(sid)." LIMIT 1")
cols = nd > 1 ? 2 : 1
rows = panel_rows(nd, cols)
do for [fmt in formats] {
    eval set_term(fmt, 700 * cols, 680 * rows + 40)
    set output out.".".fmt
    if (nd == 0) {
        set title "Tokens per layer:\nno operating points (unpruned and pruned cells) in ".db
        set xlabel "layer"; set ylabel "tokens entering the layer (% of input length)"
        set xrange [0:1]; set yrange [0:100]
        plot NaN title "no data"
        unset output
        continue
    }
    set multiplot layout rows, cols title "Tokens entering each layer, at each method's fastest\npoint within 1 point of the unpruned model's accuracy" font ",13"
    do for [i = 1:nd] {
        d = word(datasets, i)
        set title d
        set xlabel "layer (0 = first)"
        set ylabel "tokens entering the layer (% of input length)"
        set grid
        set key below box font ",9" maxrows 4
        set bmargin 12
        set yrange [0:105]
        set xrange [-0.2:*]
        set xtics 1
        sl = sers(d)
        plot for [sid in sl] q("SELECT l.layer, 100 * avg(l.keep_fraction) ".pick(d, sid)." GROUP BY l.layer ORDER BY l.layer") \
                 using 1:2 with linespoints lw 2 dt sdt(sl, sid) pt mpt(smeth(sid)) lc rgb mcolor(smeth(sid)) title label(d, sl, sid)
    }
    unset multiplot
    unset output
}
