// Sparse attention patterns as mask terms of the fused attention (attention_mask.h): a
// pattern says, per head, which key positions each query position sees; a BlockLayout
// computes once per shape which key tiles each query tile visits (hidden, visible, partial),
// and the LayoutMask term answers the kernel's classify from it in O(1) per tile.
//
// Shape letters as in attention.h: H query heads, T queries, S keys. Positions: query i sits
// at key position p = q_offset + i; key j at position j. Patterns are written on (h, p, j)
// as the papers define them; the kernel's own `causal` flag cuts j > p, so the patterns below
// are symmetric in p - j where the paper's bidirectional form is (the causal language-model
// form is the pattern AND causal).
//
// Patterns (visible(h, p, j); l, w, d, c, g in positions, blocks of b positions):
//   window(w)           |p - j| < w                                   (local attention)
//   strided(l)          Sparse Transformer, "Generating Long Sequences with Sparse
//                       Transformers", Child, Gray, Radford, Sutskever 2019, arXiv:1904.10509,
//                       sec. 4.2: A1 = {|p - j| < l}, A2 = {(p - j) mod l = 0}
//   fixed(l, c)         the same paper: A1 = {floor(j / l) = floor(p / l)},
//                       A2 = {j mod l >= l - c} (the c summary positions of every block)
//                       Both take `split`: head h sees A1 if h is even, A2 if odd (the
//                       factorised heads); else every head sees A1 u A2 (the merged head).
//   dilated_window(w, d_h)  Longformer, "Longformer: The Long-Document Transformer", Beltagy,
//                       Peters, Cohan 2020, arXiv:2004.05150, sec. 3.1: |p - j| < w d_h and
//                       (p - j) mod d_h = 0, dilation d_h per head (cycled over the heads).
//   global_tokens(g)    p < g or j < g (global rows and columns; causal: a prefix every
//                       query sees).
//   random_blocks(b, r, seed, H, N)  BigBird, "Big Bird: Transformers for Longer Sequences",
//                       Zaheer et al. 2020, arXiv:2007.14062: query block qb of head h also
//                       sees r key blocks drawn without replacement from blocks 0..qb (the
//                       causal form) by a generator seeded with (seed, h, qb); positions < N.
//   bigbird(b, wb, gb, r, seed, H, N)  blocks |qb - kb| <= wb  u  global blocks (qb < gb or
//                       kb < gb)  u  random_blocks(b, r, ...).
//   longformer(w, d_h, g)  dilated_window(w, d_h) u global_tokens(g).
//   union_of(a, b, ...) visible in any.
//   segment_dilated(w, r) LongNet, "LongNet: Scaling Transformers to 1,000,000,000 Tokens",
//                       Ding et al. 2023, arXiv:2307.02486, sec. 2.2: p, j in the same
//                       segment of w (floor(p / w) = floor(j / w)) and both on the dilation
//                       grid (p mod r = j mod r = h mod r: head h takes offset h mod r).
//
// Exactness: the layout's tile states are computed from the pattern element by element
// (exact over the positions < S of each tile); a kernel tile covering parts of several layout
// tiles (q_offset not a multiple of the tile) takes their AND/OR, which may say partial where
// the part it covers is uniform (conservative, as classify may be). With q_offset a multiple
// of the tile (training, prefill from 0) every classify is exact. Patterns whose blocks are
// multiples of the tile (BigBird with b = 32) leave no partial tile off the diagonal.
// Thread safety: layouts and terms are immutable once built; LayoutCache locks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/kernels/attention_mask.h"

namespace tz::kernels {

struct SparsePattern {
  std::string name;   // "strided(l=8)"
  int64_t heads = 0;  // 0: every head the same (any H); else the pattern is for exactly H heads
  std::function<bool(int64_t h, int64_t p, int64_t j)> visible;
  // The pattern is constant on granule x granule squares of positions ([a g, (a+1) g) x
  // [c g, (c+1) g)): the layout then asks one pair per square instead of every pair
  // (BigBird's blocks: O((N / 32)^2) calls instead of O(N^2)). 1 = no such promise; 0 =
  // constant everywhere. A union's granule is the gcd of its parts'.
  int64_t granule = 1;
};

SparsePattern window_pattern(int64_t w);
SparsePattern strided_pattern(int64_t l, bool split);
SparsePattern fixed_pattern(int64_t l, int64_t c, bool split);
SparsePattern dilated_window_pattern(int64_t w, std::vector<int64_t> dilations);
SparsePattern global_tokens_pattern(int64_t g);
SparsePattern random_blocks_pattern(int64_t b, int64_t r, uint64_t seed, int64_t H, int64_t N);
SparsePattern bigbird_pattern(int64_t b, int64_t wb, int64_t gb, int64_t r, uint64_t seed, int64_t H, int64_t N);
SparsePattern longformer_pattern(int64_t w, std::vector<int64_t> dilations, int64_t g);
SparsePattern segment_dilated_pattern(int64_t w, int64_t r);
SparsePattern union_of(std::vector<SparsePattern> parts);

// Tile states of a pattern for H heads over positions [0, N) x [0, N), tiles of `tile`
// positions (the kernel's 32): nb = ceil(N / tile) tiles a side, with 2-D prefix counts of
// visible and hidden tiles so that any rectangle of tiles classifies in O(1).
class BlockLayout {
 public:
  static constexpr int64_t kTile = 32;
  BlockLayout(SparsePattern pattern, int64_t H, int64_t N, int64_t tile = kTile);
  // Positions [p0, p1) x keys [j0, j1) of head h (p1 <= N and j1 <= N, else partial).
  Tile classify(int64_t h, int64_t p0, int64_t p1, int64_t j0, int64_t j1) const;
  Tile state(int64_t h, int64_t qb, int64_t kb) const { return states_[size_t((h * nb + qb) * nb + kb)]; }
  bool visible(int64_t h, int64_t p, int64_t j) const { return pattern.visible(h, p, j); }
  // Key tiles query tile qb of head h visits (not hidden), in order.
  std::vector<int64_t> visited(int64_t h, int64_t qb) const;
  SparsePattern pattern;
  int64_t H, N, tile, nb;

 private:
  int64_t count(const std::vector<int32_t>& pre, int64_t h, int64_t q0, int64_t q1, int64_t k0, int64_t k1) const;
  std::vector<Tile> states_;                   // [H, nb, nb]
  std::vector<int32_t> n_visible_, n_hidden_;  // [H, nb + 1, nb + 1] prefix sums
};

// The mask term of a layout: hides what the pattern hides. check() refuses other H or S.
class LayoutMask : public MaskTerm {
 public:
  explicit LayoutMask(std::shared_ptr<const BlockLayout> layout);
  Tile classify(int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t q_offset) const override;
  void fill(int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset, uint8_t* out,
            int64_t ld) const override;
  std::string describe() const override;
  void check(int64_t B, int64_t H, int64_t S) const override;
  std::shared_ptr<const BlockLayout> layout;
};

// Layout masks of one pattern, built once per (H, S) and kept. A pattern that depends on the
// shape (BigBird's random blocks drawn for H heads) is given as a function of (H, S).
class LayoutCache {
 public:
  using PatternFor = std::function<SparsePattern(int64_t H, int64_t S)>;
  explicit LayoutCache(SparsePattern pattern);
  explicit LayoutCache(PatternFor pattern_for) : pattern_for_(std::move(pattern_for)) {}
  std::shared_ptr<const LayoutMask> get(int64_t H, int64_t S) const;

 private:
  PatternFor pattern_for_;
  mutable std::mutex mutex_;
  mutable std::map<std::pair<int64_t, int64_t>, std::shared_ptr<const LayoutMask>> masks_;
};

// An explicit boolean mask [Hm, P, S] (Hm = 1: shared by the heads) over query positions
// [0, P) and keys [0, S): the dense reference form of any pattern. classify scans the tile.
class DenseMask : public MaskTerm {
 public:
  DenseMask(std::vector<uint8_t> visible, int64_t Hm, int64_t P, int64_t S);
  // The pattern written out for H heads over P query positions and S keys.
  static std::shared_ptr<DenseMask> of(const std::function<bool(int64_t h, int64_t p, int64_t j)>& visible, int64_t H,
                                       int64_t P, int64_t S);
  Tile classify(int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t q_offset) const override;
  void fill(int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset, uint8_t* out,
            int64_t ld) const override;
  std::string describe() const override;
  void check(int64_t B, int64_t H, int64_t S) const override;
  bool at(int64_t h, int64_t p, int64_t j) const { return vis[size_t(((Hm == 1 ? 0 : h) * P + p) * S + j)] != 0; }
  std::vector<uint8_t> vis;
  int64_t Hm, P, S;
};

}  // namespace tz::kernels
