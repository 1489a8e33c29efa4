#!/usr/bin/env bash
# Plots validation loss against the evaluation length (as a multiple of the training length)
# for every model of one or more arena results.csv files (columns: model, task, seq_len, params,
# train_loss, val_loss_x1, acc@1x, val_loss_x2, ...).
#   scripts/extrapolation_plot.sh OUT.png "title 1" runs/a/results.csv ["title 2" runs/b/results.csv ...]
set -euo pipefail
out=$1; shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
panels=$(($# / 2))
{
  echo "set terminal pngcairo size $((520 * panels)),420 font ',10'"
  echo "set output '$out'"
  echo "set termoption noenhanced"
  echo "set multiplot layout 1,$panels"
  echo "set logscale x 2; set xtics (1, 2, 4); set xrange [0.9:4.4]"
  echo "set xlabel 'eval length / train length'; set ylabel 'validation loss (nats/token)'"
  echo "set key top left; set grid"
} > "$tmp/plot.gp"
i=0
while [ $# -ge 2 ]; do
  title=$1 csv=$2; shift 2
  i=$((i + 1))
  # One data block per model: "multiple loss" rows, from the val_loss_xM columns.
  awk -F, 'NR == 1 { for (c = 1; c <= NF; c++) if ($c ~ /^val_loss_x/) { m[c] = substr($c, 11) } next }
           { print "# " $1; for (c in m) if ($c != "") print m[c], $c; print ""; print "" }' "$csv" |
    awk 'BEGIN { RS = ""; ORS = "\n\n\n" } { n = split($0, l, "\n"); printf "%s\n", l[1];
         # sort the rows of a block by multiple
         for (a = 2; a <= n; a++) for (b = a + 1; b <= n; b++) { split(l[a], x, " "); split(l[b], y, " ");
           if (x[1] + 0 > y[1] + 0) { t = l[a]; l[a] = l[b]; l[b] = t } }
         for (a = 2; a <= n; a++) printf "%s\n", l[a]; printf "\n\n" }' > "$tmp/data$i.txt"
  models=$(awk -F, 'NR > 1 { print $1 }' "$csv")
  echo "set title '$title'" >> "$tmp/plot.gp"
  plot="plot"
  k=0
  for m in $models; do
    plot="$plot '$tmp/data$i.txt' index $k using 1:2 with linespoints lw 2 title '$m',"
    k=$((k + 1))
  done
  echo "${plot%,}" >> "$tmp/plot.gp"
done
echo "unset multiplot" >> "$tmp/plot.gp"
gnuplot "$tmp/plot.gp"
echo "wrote $out"
