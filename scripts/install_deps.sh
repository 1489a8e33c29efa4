#!/usr/bin/env bash
# Installs, with apt-get, the Debian 12 packages tensorzoo builds with — only those missing —
# and any more packages given as arguments (scripts/fuzz.sh adds clang).
set -euo pipefail
packages=(g++ cmake make pkg-config libopenblas-openmp-dev libfmt-dev doctest-dev
          nlohmann-json3-dev libcli11-dev gnuplot-nox "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "dependencies: all present"
  exit 0
fi
echo "dependencies: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
