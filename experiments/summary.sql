-- summary.sql: the tables `make demo` prints (sqlite3 -header -column DB < summary.sql).
.print ''
.print '== Per method: the fastest point within 1 point of the unpruned model (view paper_table)'
SELECT dataset, method, model_name AS model, printf('%.1f', 100 * ref_accuracy) AS unpruned_acc,
       CASE WHEN accuracy IS NULL THEN '-' ELSE printf('%.1f', 100 * accuracy) END AS accuracy,
       CASE WHEN flops_speedup IS NULL THEN '-' ELSE printf('%.2fx', flops_speedup) END AS flops_speedup,
       CASE WHEN wall_speedup_b1 IS NULL THEN '-' ELSE printf('%.2fx', wall_speedup_b1) END AS wall_b1,
       CASE WHEN wall_speedup_b32 IS NULL THEN '-' ELSE printf('%.2fx', wall_speedup_b32) END AS wall_b32,
       coalesce(knob, '(no point within 1 point)') AS knob
FROM paper_table ORDER BY dataset, flops_speedup DESC;
.print ''
.print '== AdapLeR over --eta-scale: accuracy, FLOPs speedup, tokens entering the last layer, ERASER FPR/TPR of the kept words'
SELECT dataset, knob, printf('%.1f', 100 * accuracy) AS accuracy, printf('%.2fx', flops_speedup) AS flops_speedup,
       printf('%.1f / %.1f', last_tokens, mean_length) AS last_layer_tokens_of_length,
       printf('%.1f', 100 * eraser_fpr) AS fpr_pct, printf('%.1f', 100 * eraser_tpr) AS tpr_pct
FROM current_cells WHERE method = 'adapler' AND timing = 'none' ORDER BY dataset, knob_value;
.print ''
.print '== Measured wall-clock vs FLOPs speedup (view latency; median of the repeats, [min, max])'
SELECT dataset, method, knob, batch, threads, weights, printf('%.2fx', flops_speedup) AS flops_speedup,
       printf('%.2fx [%.2f, %.2f]', wall_speedup, wall_speedup_lo, wall_speedup_hi) AS wall_speedup
FROM latency;
.print ''
SELECT count(*) || ' cells in the database, ' ||
       (SELECT count(DISTINCT cell_key) FROM failures WHERE cell_key NOT IN (SELECT cell_key FROM cells)) ||
       ' failed and not yet redone' AS totals FROM cells;
