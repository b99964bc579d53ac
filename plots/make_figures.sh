#!/bin/sh
# make_figures.sh DB OUTDIR: every figure of plots/*.gp from the results database DB, as
# OUTDIR/NAME.png and OUTDIR/NAME.svg (`make figures` runs it).  Fails if a script fails or
# leaves an empty file.
set -eu
db=${1:-results/results.db}
outdir=${2:-plots/out}
[ -f "$db" ] || { echo "make_figures: $db: no such database (run a sweep first)" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "make_figures: gnuplot not found (make deps)" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "make_figures: sqlite3 not found (make deps)" >&2; exit 1; }
mkdir -p "$outdir"
for name in accuracy_speedup wall_vs_flops layer_tokens eraser_fpr token_fading; do
    gnuplot -e "db='$db'; out='$outdir/$name'" plots/$name.gp
    for ext in png svg; do
        [ -s "$outdir/$name.$ext" ] || { echo "make_figures: $outdir/$name.$ext is missing or empty" >&2; exit 1; }
    done
    echo "figure: $outdir/$name.png $outdir/$name.svg"
done
