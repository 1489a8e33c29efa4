#!/usr/bin/env bash
# The installed package as an application uses it (run by scripts/test.sh after the suite):
# the static library (the default) and the shared one (BUILD_SHARED_LIBS), each installed to a
# scratch prefix and moved elsewhere (the package must not depend on where it was installed),
# then the C++ and C programs of examples/ built against it through CMake
# (find_package(tensorzoo)) and through pkg-config, and run on a small exported model.
# Usage: scripts/check_install.sh BUILD_DIR   (a configured and built release tree)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
scratch=$(mktemp -d)

# A tiny model to run the examples on.
$build/tensorzoo train --dim 32 --depth 1 --heads 2 --context 64 --seq-len 64 --batch 4 --steps 20 \
    --builtin-bytes 20000 --sample 0 --threads 1 --out "$scratch/run" >/dev/null
$build/tensorzoo export --run "$scratch/run" --out "$scratch/model.safetensors" --dtype bf16

# The test build makes both libraries from the same objects; BUILD_SHARED_LIBS only says which
# one (and which package files) `cmake --install` installs. Switched for the shared install,
# and back when done.
trap 'cmake -S . -B $build -DBUILD_SHARED_LIBS=OFF >/dev/null; rm -rf "$scratch"' EXIT
echo "shared library: $(nm -D --defined-only $build/libtensorzoo.so | wc -l) exported symbols"

for kind in static shared; do
  if [ $kind = shared ]; then
    cmake -S . -B $build -DBUILD_SHARED_LIBS=ON >/dev/null
  else
    cmake -S . -B $build -DBUILD_SHARED_LIBS=OFF >/dev/null
  fi
  cmake --build $build -j2 --target tensorzoo tensorzoo_shared >/dev/null
  # The library, its headers and package files (the tool is the component "tool").
  cmake --install $build --prefix "$scratch/installing" --component Unspecified >/dev/null
  mv "$scratch/installing" "$scratch/$kind"  # relocated after installing
  prefix="$scratch/$kind"
  libdir=$(dirname "$(find "$prefix" -name tensorzoo.pc)")/..
  # CMake: find_package(tensorzoo) with nothing but the prefix (no fmt, no nlohmann-json asked for).
  cmake -S examples/consumer -B "$scratch/cmake-$kind" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
  cmake --build "$scratch/cmake-$kind" -j2 >/dev/null
  # pkg-config, without --static, as most builds run it.
  export PKG_CONFIG_PATH="$libdir/pkgconfig"
  out="$scratch/pc-$kind"
  mkdir -p "$out"
  # (the consumer's own data/tokenizer.h is found after tensorzoo's include directory)
  c++ -std=c++20 examples/consumer/main.cpp $(pkg-config --cflags --libs tensorzoo) -I examples/consumer \
      -o "$out/consumer"
  c++ -std=c++20 examples/embed_generate.cpp $(pkg-config --cflags --libs tensorzoo) -o "$out/embed_generate"
  cc -std=c11 -Wall -Werror examples/embed_generate_c.c $(pkg-config --cflags --libs tensorzoo) -o "$out/embed_generate_c"
  unset PKG_CONFIG_PATH
  export LD_LIBRARY_PATH="$libdir"  # the shared library, from its moved prefix
  for dir in "$scratch/cmake-$kind" "$out"; do
    "$dir/consumer" >/dev/null
    "$dir/embed_generate" "$scratch/model.safetensors" "The " >/dev/null
    "$dir/embed_generate_c" "$scratch/model.safetensors" "The " >/dev/null
  done
  unset LD_LIBRARY_PATH
  if [ $kind = shared ]; then  # really the shared library, found from the moved prefix
    LD_LIBRARY_PATH="$libdir" ldd "$out/embed_generate_c" > "$scratch/ldd.txt"
    grep -q "libtensorzoo.so" "$scratch/ldd.txt" || { echo "not linked to the shared library"; exit 1; }
  fi
  echo "installed $kind library: CMake and pkg-config builds of the C++ and C examples run"
done
echo "embed_generate (static, stripped copy): $(strip -o "$scratch/eg" "$scratch/pc-static/embed_generate" && stat -c %s "$scratch/eg") bytes"
