// The gallery of layouts: see layout_gallery.h. Parameters are fractions of N so that every
// picture shows its structure at the default N 1024 (tiles of 32: 32 x 32 cells a head).
#include "nn/sparse_attention/layout_gallery.h"

#include "nn/sparse_attention/blockwise_attention.h"
#include "nn/sparse_attention/moa.h"
#include "nn/sparse_attention/sparse_transformer.h"

namespace tz::nn {

std::vector<GalleryLayout> layout_gallery(int64_t N, int64_t H) {
  TZ_CHECK(N >= 256 && H >= 1, "layout_gallery: expected N >= 256 positions and H >= 1 heads, got N ", N, ", H ", H);
  const int64_t w = N / 4, l = N / 8, b = N / 16, g = N / 32;
  std::vector<GalleryLayout> r;
  auto add = [&](std::string file, std::string variant, std::string what, kernels::SparsePattern p) {
    r.push_back({std::move(file), std::move(variant), std::move(what), std::move(p)});
  };
  add("window", "local_attention", cat_str("sliding window: the last ", w, " keys"), kernels::window_pattern(w));
  add("strided", "sparse_transformer",
      cat_str("strided, merged heads: the last ", l, " keys and every ", l, "-th key before"),
      sparse_transformer_pattern("strided", l, 0, "merged"));
  add("strided_split", "sparse_transformer",
      cat_str("strided, split heads: even heads the last ", l, " keys, odd heads every ", l, "-th key"),
      sparse_transformer_pattern("strided", l, 0, "split"));
  add("fixed", "sparse_transformer",
      cat_str("fixed: the own block of ", l, " and the last ", l / 8, " positions of every block"),
      sparse_transformer_pattern("fixed", l, l / 8, "merged"));
  std::vector<int64_t> dil;
  for (int64_t h = 0; h < H; ++h) dil.push_back(int64_t(1) << (h % 4));
  add("dilated", "longformer (its window part)",
      cat_str("dilated windows: ", l, " keys spaced d_h = 1, 2, 4, 8 apart by head"),
      kernels::dilated_window_pattern(l, dil));
  add("global", "longformer, bigbird (their global part)",
      cat_str("global tokens: the first ", g, " positions, seen by every query"), kernels::global_tokens_pattern(g));
  add("random", "bigbird (its random part)",
      cat_str("random blocks: 3 earlier blocks of ", b, " per query block, drawn per head"),
      kernels::random_blocks_pattern(b, 3, 0, H, N));
  add("bigbird", "bigbird",
      cat_str("BigBird: blocks of ", b, ": one window block each side, one global block, 3 random blocks"),
      kernels::bigbird_pattern(b, 1, 1, 3, 0, H, N));
  add("longformer", "longformer",
      cat_str("Longformer: dilated windows of ", l, " keys (d_h = 1, 1, 2, 4) and ", g, " global tokens"),
      kernels::longformer_pattern(l, {1, 1, 2, 4}, g));
  add("blockwise", "blockwise_attention",
      cat_str("BlockBERT: blocks of ", l, ", even heads their own block, odd heads the block before"),
      blockwise_pattern(l));
  std::vector<kernels::SparsePattern> branches;
  for (int64_t n = 0; n < 3; ++n) branches.push_back(kernels::segment_dilated_pattern(w << n, int64_t(1) << n));
  add("longnet", "longnet_dilated",
      cat_str("LongNet: segments of ", w, ", ", 2 * w, ", ", 4 * w,
              " with dilation 1, 2, 4 (three kernel calls, "
              "merged by log-sum-exp; their tiles drawn together)"),
      kernels::union_of(branches));
  add("moa", "moa",
      cat_str("MoA: per-head elastic windows S_h(N) = alpha_h + beta_h N (", g, " + 0 N, ", g, " + N/8, ", 2 * g,
              " + N/4, 0 + N/2) and ", g, " initial tokens"),
      moa_pattern({{double(g), 0}, {double(g), 0.125}, {double(2 * g), 0.25}, {0, 0.5}}, g));
  return r;
}

}  // namespace tz::nn
