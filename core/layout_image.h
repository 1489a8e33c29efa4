// Pictures of sparse-attention layouts for students: which (query tile, key tile) pairs the
// fused attention kernel visits for a pattern (core/kernels/attention_layout.h), drawn from
// the layout's own mask term, one panel per head, as a PNG (core/png.h).
//
// Panel of head h: nb x nb cells (nb = ceil(N / tile)), query tiles down, key tiles across;
// cell (qb, kb) is `cell` pixels square with a 1-pixel white grid line before it. Its colour
// is what the kernel does with that tile of scores:
//   full      every pair visible: computed without a per-element mask     dark blue
//   partial   visited, the mask filled element by element                  light blue
//   skipped   no pair visible: never read                                  light grey
//   future    above the diagonal under the causal rule: never read         near white
// Panels stand side by side, `gap` white pixels apart.
#pragma once

#include <cstdint>

#include "core/kernels/attention_layout.h"
#include "core/png.h"

namespace tz {

struct LayoutDrawing {
  int64_t cell = 7;    // pixels a tile
  int64_t gap = 12;    // pixels between head panels
  bool causal = true;  // the language-model form: the pattern AND j <= p
};

enum class TileUse { full, partial, skipped, future };
inline constexpr uint32_t kTileColour[4] = {0x1f4e79, 0x74a9cf, 0xe3e3e3, 0xfafafa};  // by TileUse
inline constexpr uint32_t kGridColour = 0xffffff;

// What the kernel does with tile (qb, kb) of head h (queries and keys from position 0).
TileUse tile_use(const kernels::LayoutMask& mask, int64_t h, int64_t qb, int64_t kb, bool causal);
// The top-left pixel of cell (qb, kb) in head h's panel.
struct Pixel {
  int64_t x, y;
};
Pixel cell_origin(const kernels::BlockLayout& layout, const LayoutDrawing& d, int64_t h, int64_t qb, int64_t kb);
Image draw_layout(const kernels::BlockLayout& layout, const LayoutDrawing& d = {});

}  // namespace tz
