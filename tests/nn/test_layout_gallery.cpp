// The layout pictures (core/layout_image.h) of every gallery entry
// (nn/sparse_attention/layout_gallery.h), encoded as PNG and read back by the test reader:
// each cell's colour is what the kernel does with that tile, checked against the layout's
// own list of visited key tiles and, for full against partial, against the pattern
// evaluated pair by pair with the causal rule; the grid lines between cells stay white.
#include <doctest/doctest.h>

#include <algorithm>

#include "core/layout_image.h"
#include "nn/sparse_attention/layout_gallery.h"
#include "tests/png_reader.h"

namespace tz::testing {
namespace {

TEST_CASE("layout gallery: drawn cells are the tiles the layout visits, full or partial") {
  const int64_t N = 1024, H = 4;
  const LayoutDrawing d{.cell = 3, .gap = 5};
  const auto gallery = nn::layout_gallery(N, H);
  CHECK(gallery.size() >= 10);
  for (const nn::GalleryLayout& g : gallery) {
    CAPTURE(g.file);
    const kernels::BlockLayout L(g.pattern, H, N);
    const DecodedPng png = decode_png(png_encode(draw_layout(L, d)));
    REQUIRE(png.error == "");
    const int64_t panel = L.nb * (d.cell + 1) + 1;
    CHECK(png.width == H * panel + (H - 1) * d.gap);
    CHECK(png.height == panel);
    int64_t visited = 0, full = 0, wrong = 0;
    for (int64_t h = 0; h < H; ++h)
      for (int64_t qb = 0; qb < L.nb; ++qb) {
        const std::vector<int64_t> keys = L.visited(h, qb);
        for (int64_t kb = 0; kb < L.nb; ++kb) {
          const Pixel o = cell_origin(L, d, h, qb, kb);
          const uint32_t c = png.at(o.x + d.cell / 2, o.y + d.cell / 2);
          wrong += png.at(o.x - 1, o.y - 1) != kGridColour;
          TileUse want = TileUse::future;
          if (kb <= qb) {
            want = TileUse::skipped;
            if (std::find(keys.begin(), keys.end(), kb) != keys.end()) {
              bool all = kb < qb;  // the diagonal tile always needs the causal mask
              for (int64_t p = qb * L.tile; all && p < (qb + 1) * L.tile; ++p)
                for (int64_t j = kb * L.tile; all && j < (kb + 1) * L.tile; ++j) all = g.pattern.visible(h, p, j);
              want = all ? TileUse::full : TileUse::partial;
              ++visited, full += all;
            }
          }
          wrong += c != kTileColour[int(want)];
        }
      }
    CHECK(wrong == 0);
    CHECK(visited > 0);  // every picture has something to show
    MESSAGE(g.file, ": ", visited, " tiles visited, ", full, " of them full");
  }
}

}  // namespace
}  // namespace tz::testing
