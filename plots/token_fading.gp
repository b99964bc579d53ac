# token_fading.gp: one example's tokens fading out layer by layer.  From the per-example
# rows (sweep --per-example): for every WordPiece, the layers it entered; a dark cell is a
# token present in that layer, a light one a token already dropped.  The example is
# chosen by query: among the AdapLeR cells (else another pruning method's) holding a
# correctly classified example of 12 to 40 pieces (a readable row of WordPieces; the movie
# reviews' have hundreds), the fastest within 1 point of the unpruned accuracy (the paper's
# operating point; else within 10 points), and in it such an example whose share of tokens
# reaching the last layer is closest to the cell's mean.
load 'plots/common.gp'
pickq = "WITH cand AS (SELECT c.cell_key, c.method, c.flops_speedup, c.accuracy, r.ref_accuracy, c.last_tokens / c.mean_length AS frac, EXISTS (SELECT 1 FROM examples x WHERE x.cell_key = c.cell_key AND x.label = x.pred AND json_array_length(x.pieces) BETWEEN 12 AND 40) AS short FROM current_cells c LEFT JOIN reference r USING (dataset, split, max_len) WHERE c.has_examples = 1 AND c.method <> 'none'), best AS (SELECT cell_key, frac FROM cand ORDER BY method = 'adapler' DESC, short DESC, (flops_speedup > 1.1 AND accuracy >= coalesce(ref_accuracy, 0) - 0.01) DESC, (flops_speedup > 1.1 AND accuracy >= coalesce(ref_accuracy, 0) - 0.1) DESC, flops_speedup DESC LIMIT 1) SELECT e.cell_key, e.idx FROM examples e JOIN best b USING (cell_key) ORDER BY (e.label = e.pred AND json_array_length(e.pieces) BETWEEN 12 AND 40) DESC, json_array_length(e.pieces) <= 60 DESC, abs(json_extract(e.layer_tokens, '$[#-1]') * 1.0 / json_array_length(e.pieces) - b.frac), e.idx LIMIT 1"
sel = s(pickq)
do for [fmt in formats] {
    eval set_term(fmt, 1300, 520)
    set output out.".".fmt
    if (words(sel) < 2) {
        set title "Token fading: no per-example rows in ".db." (run the sweep with --per-example)"
        set xlabel "WordPiece position"; set ylabel "layer"
        set xrange [0:10]; set yrange [0:6]
        plot NaN title "no data"
        unset output
        continue
    }
    key = word(sel, 1); ix = word(sel, 2)
    ex = "e.cell_key = ".lit(key)." AND e.idx = ".ix
    L = s("SELECT m.layers FROM current_cells c JOIN models m USING (model_hash) WHERE c.cell_key = ".lit(key)) + 0
    desc = s("SELECT c.dataset || ' example ' || e.example_id || ', ' || trim(".label_sql("c.method", "c.knob").") || printf(' (%.1fx fewer FLOPs on the split)', c.flops_speedup) || ', label ' || e.label || ', predicted ' || e.pred FROM examples e JOIN current_cells c USING (cell_key) WHERE ".ex)
    n = s("SELECT json_array_length(pieces) FROM examples e WHERE ".ex) + 0
    set title "Tokens entering each layer: ".desc
    set xlabel "WordPiece (input order)"
    set ylabel "layer"
    set yrange [L - 0.5:-0.5]
    set xrange [-0.5:n - 0.5]
    set ytics 1
    set xtics rotate by 60 right font ",10"
    set palette defined (0 "#e8e8e8", 1 "#1f4e79")
    set cbrange [0:1]
    unset colorbox
    set key outside right top box
    set bmargin 7
    cells = "WITH RECURSIVE lay(l) AS (SELECT 0 UNION ALL SELECT l + 1 FROM lay WHERE l < ".(L - 1).") SELECT t.key, lay.l, CASE WHEN t.value > lay.l THEN 1 ELSE 0 END FROM examples e, json_each(e.token_layers) t, lay WHERE ".ex." ORDER BY lay.l, t.key"
    tics = "SELECT p.key, replace(replace(p.value, char(34), char(39)), char(9), ' ') FROM examples e, json_each(e.pieces) p WHERE ".ex." ORDER BY p.key"
    plot q(cells) using 1:2:3 with image notitle, \
         q(tics) using 1:(NaN):xtic(2) with points notitle, \
         NaN with boxes fs solid lc rgb "#1f4e79" title "token present", \
         NaN with boxes fs solid lc rgb "#e8e8e8" title "token dropped"
    unset output
}
