#!/usr/bin/env bash
# The length-extrapolation study of docs/extrapolation.md: train each position scheme on the
# built-in grammar text at length 64, evaluate at 64, 128 and 256, then the xPos/ALiBi
# follow-up (xPos scale_base γ and ALiBi head subsets), and plot both.
#   scripts/extrapolation.sh [build dir, default build] [output dir, default runs/extrapolation]
set -euo pipefail
build=${1:-build}
out=${2:-runs/extrapolation}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
"$build/tensorzoo" arena --models learned_abs_pe,sinusoidal_pe,rope,xpos,alibi,t5_rel_bias \
  --task text --seq-len 64 --eval-lengths 1,2,4 --steps 1000 --batch 16 --out "$out/schemes"
"$build/tensorzoo" arena --spec scripts/extrapolation_xpos_spec.json --out "$out/xpos_alibi"
scripts/extrapolation_plot.sh docs/extrapolation.png \
  "six schemes, text, trained at 64" "$out/schemes/results.csv" \
  "xPos scale_base and ALiBi heads" "$out/xpos_alibi/results.csv"
