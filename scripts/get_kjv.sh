#!/usr/bin/env bash
# The King James Bible as plain text, for training on a real book: Debian's bible-kjv package
# ships it compressed for its `bible` program, which prints it back. One verse a line, the
# reference ("Ge1:1") removed; 4.1 MB, ASCII.
#   scripts/get_kjv.sh               writes runs/kjv.txt (runs/ is outside git)
#   scripts/get_kjv.sh FILE          writes FILE
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/kjv.txt}
command -v bible >/dev/null || scripts/install_deps.sh bible-kjv
mkdir -p "$(dirname "$out")"
# -f: plain output, one verse a line after its reference; the whole range, Genesis 1:1 to
# Revelation 22:21.
bible -f gen1:1-rev22:21 | sed 's/^[^ ]* //' >"$out.tmp"
lines=$(wc -l <"$out.tmp")
[ "$lines" -eq 31102 ] || { echo "get_kjv.sh: expected 31102 verses, got $lines" >&2; exit 1; }
mv "$out.tmp" "$out"
echo "$out: $lines verses, $(wc -c <"$out") bytes"
