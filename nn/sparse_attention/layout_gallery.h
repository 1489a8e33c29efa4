// The layouts docs/sparse_attention.md draws for students: each sparse variant's pattern at
// N positions and H heads, with the parameters of its picture, built by the same functions
// the variants use (core/kernels/attention_layout.h and the variant files). `tensorzoo
// layouts` writes one PNG per entry (core/layout_image.h).
#pragma once

#include <string>
#include <vector>

#include "core/kernels/attention_layout.h"

namespace tz::nn {

struct GalleryLayout {
  std::string file;     // "window": the picture is <file>.png
  std::string variant;  // the registered ids that attend this way, or of which it is a part
  std::string what;     // one line: the pattern in words, with its parameters
  kernels::SparsePattern pattern;
};

// The gallery for N positions and H heads (parameters scale with N; N >= 256).
std::vector<GalleryLayout> layout_gallery(int64_t N, int64_t H);

}  // namespace tz::nn
