// Layout pictures: see layout_image.h.
#include "core/layout_image.h"

#include <memory>

#include "core/error.h"

namespace tz {

TileUse tile_use(const kernels::LayoutMask& mask, int64_t h, int64_t qb, int64_t kb, bool causal) {
  if (causal && kb > qb) return TileUse::future;
  const kernels::BlockLayout& L = *mask.layout;
  const int64_t p0 = qb * L.tile, p1 = std::min(L.N, p0 + L.tile), j0 = kb * L.tile, j1 = std::min(L.N, j0 + L.tile);
  const kernels::Tile t = mask.classify(0, h, p0, p1, j0, j1, 0);
  if (t == kernels::Tile::hidden) return TileUse::skipped;
  // The diagonal tile under the causal rule needs the element mask whatever the pattern says.
  return t == kernels::Tile::visible && !(causal && kb == qb) ? TileUse::full : TileUse::partial;
}

Pixel cell_origin(const kernels::BlockLayout& L, const LayoutDrawing& d, int64_t h, int64_t qb, int64_t kb) {
  const int64_t panel = L.nb * (d.cell + 1) + 1;
  return {h * (panel + d.gap) + 1 + kb * (d.cell + 1), 1 + qb * (d.cell + 1)};
}

Image draw_layout(const kernels::BlockLayout& L, const LayoutDrawing& d) {
  TZ_CHECK(d.cell >= 1 && d.gap >= 0, "draw_layout: expected cell >= 1 and gap >= 0 pixels, got ", d.cell, " and ",
           d.gap);
  TZ_CHECK(L.nb >= 1, "draw_layout: the layout of ", L.pattern.name, " has no positions");
  const int64_t panel = L.nb * (d.cell + 1) + 1;
  Image im(L.H * panel + (L.H - 1) * d.gap, panel, kGridColour);
  const kernels::LayoutMask mask(std::shared_ptr<const kernels::BlockLayout>(&L, [](const kernels::BlockLayout*) {}));
  for (int64_t h = 0; h < L.H; ++h)
    for (int64_t qb = 0; qb < L.nb; ++qb)
      for (int64_t kb = 0; kb < L.nb; ++kb) {
        const Pixel o = cell_origin(L, d, h, qb, kb);
        im.fill(o.x, o.y, d.cell, d.cell, kTileColour[int(tile_use(mask, h, qb, kb, d.causal))]);
      }
  return im;
}

}  // namespace tz
