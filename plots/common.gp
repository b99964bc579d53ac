# common.gp: shared by every figure script (loaded with `load 'plots/common.gp'`).
# Expects db (the results database) and out (output path without extension), set with
# gnuplot -e "db='results/results.db'; out='plots/out/NAME'".  Every number comes from
# the database through sqlite3; nothing is copied by hand.
if (!exists("db")) db = 'results/results.db'
if (!exists("out")) out = 'plots/out/figure'
# q(sql): a gnuplot data source running sql on the database, tab-separated.  SQL string
# literals use single quotes.
q(sql) = "< sqlite3 -batch -separator '\t' '".db."' \"".sql."\""
# s(sql): the first row of a query, as a string ('' if none).
s(sql) = system("sqlite3 -batch -separator ' ' '".db."' \"".sql."\"")
set datafile separator "\t"
set datafile commentschars ""
set datafile missing ""
# Method styles: the same colour and symbol for a method in every figure.
methods_all = "none adapler cascade ltp power random saliency truncate schedule"
midx(m) = sum [i=1:words(methods_all)] (word(methods_all, i) eq m ? i : 0)
mcolor(m) = word("#000000 #d62728 #1f77b4 #2ca02c #9467bd #8c564b #e377c2 #7f7f7f #bcbd22 #17becf", midx(m) > 0 ? midx(m) : 10)
mpt(m) = midx(m) + 4
# The two output formats of every figure.
formats = "png svg"
set_term(fmt, w, h) = fmt eq "png" ? \
    sprintf("set terminal pngcairo size %d,%d font 'Sans,11' noenhanced", w, h) : \
    sprintf("set terminal svg size %d,%d dynamic font 'Sans,11' noenhanced", w, h)
# A curve is a method on one model ("series" METHOD/MODEL_NAME: PoWER-BERT training-free on
# the fine-tuned model `small` and trained, `small-power`, are two).  series_sql(cond) lists
# them, space-separated; ser_sql(sid) selects one series' rows.  Within a list sl, a method
# on more than one model is labelled "METHOD (MODEL)" (a path model by its last component),
# and its second and later models are dash-dotted (dashes mark matched runs and references).
series_sql(cond) = "SELECT group_concat(method || '/' || coalesce(model_name, ''), ' ') FROM (SELECT DISTINCT method, model_name FROM ".cond." ORDER BY method = 'none' DESC, method, model_name)"
smeth(sid) = sid[1:strstrt(sid, "/") - 1]
smodel(sid) = sid[strstrt(sid, "/") + 1:]
ser_sql(sid) = "method = ".lit(smeth(sid))." AND coalesce(model_name, '') = ".lit(smodel(sid))
spos(sl, sid) = sum [i=1:words(sl)] (word(sl, i) eq sid ? i : 0)
srank(sl, sid) = sum [i=1:spos(sl, sid)] (smeth(word(sl, i)) eq smeth(sid) ? 1 : 0)
sbase(p) = strstrt(p, "/") > 0 ? sbase(p[strstrt(p, "/") + 1:]) : p
scount(sl, sid) = sum [i=1:words(sl)] (smeth(word(sl, i)) eq smeth(sid) ? 1 : 0)
slabel(sl, sid) = scount(sl, sid) > 1 ? smeth(sid)." (".sbase(smodel(sid)).")" : smeth(sid)
sdt(sl, sid) = srank(sl, sid) > 1 ? 4 : 1
# Rows of a multiplot of n panels in cols columns; one (the "no data" panel) when n is 0.
panel_rows(n, cols) = n > 0 ? (n + cols - 1) / cols : 1
# SQL for a short legend label of a cell from its method and knob columns: the knob from its
# first option on ('--eta-scale 1.25': the run line's model variables dropped), at most 30
# characters; a match= cell (knob 'match ...') reads "METHOD at AdapLeR's --eta-scale S".
knob_short_sql(k) = "(CASE WHEN instr(".k.", '--') > 0 THEN substr(".k.", instr(".k.", '--')) ELSE coalesce(".k.", '') END)"
knob_cut_sql(k) = "(CASE WHEN length(".knob_short_sql(k).") > 30 THEN substr(".knob_short_sql(k).", 1, 28) || '..' ELSE ".knob_short_sql(k)." END)"
label_sql(m, k) = m." || CASE WHEN ".k." LIKE 'match %' THEN ' at AdapLeR''s ' ELSE ' ' END || ".knob_cut_sql(k)
# sql literal escaping for strings read back from the database
lit(x) = "'".x."'"
