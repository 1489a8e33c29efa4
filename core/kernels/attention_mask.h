// Attention masks as data for the fused attention kernels (core/kernels/attention.h): the
// counterpart of FlexAttention's mask_mod (PyTorch, "FlexAttention: A Programming Model for
// Generating Optimized Attention Kernels", arXiv:2412.05496), asked per tile instead of per
// element so that the kernel can skip whole tiles.
//
// Shape letters as in attention.h: B batch, H query heads, T queries, S keys. Query i
// (0 <= i < T) sits at key position q_offset + i; key j is 0 <= j < S.
//
// A MaskTerm answers two questions about a tile of queries [i0, i1) x keys [j0, j1) of one
// (b, h):
//   classify -> hidden  (no pair visible: the kernel skips the tile, never reads its keys),
//               visible (every pair visible: the tile needs no per-element mask),
//               partial (anything else, or when unsure: classify may be conservative);
//   fill     -> the visibility of every pair of a partial tile, one byte each (1 = visible),
//               one virtual call per tile.
// An AttentionMask ANDs its terms. The kernel's own `causal` flag (AttnSizes) is kept apart:
// plain causal attention never calls through a MaskTerm.
//
// Terms here:
//   WindowMask{w}         visible iff (q_offset + i) - j < w; with causal: the last w keys up
//                         to the query (sliding window, Longformer/Mistral style).
//   KeyPaddingMask        visible iff keep[b*S + j] != 0 (padding keys of batch row b hidden).
//   ForgottenKeysMask     Forgetful Causal Masking (Liu et al., "FCM: Forgetful Causal
//                         Masking Makes Causal Language Models Better Zero-Shot Learners",
//                         arXiv:2210.13432): a key j forgotten in sequence b is hidden from
//                         every query at position q_offset + i > j (the query at j still
//                         sees it, so no causal row is left empty).
//   SegmentMask{L, M}     Transformer-XL's segment recurrence as one mask (Dai et al.,
//                         arXiv:1901.02860): with segments of L positions and a memory of M,
//                         key j is visible to the query at p iff j >= floor(p / L) L - M
//                         (the block staircase; with causal, a query sees its own segment up
//                         to itself and the M positions before the segment).
// Room for more: a block-sparse layout (BigBird, Sparse Transformer), strided or dilated
// patterns and global tokens are terms of the same shape. Each classifies a tile from its
// layout (a block-sparse term whose blocks align with the kernel's 32 x 32 tiles is exact
// at tile level and needs no fill), and per-head patterns read h.
//
// Lifetime: the terms hold raw pointers to their flags (no Tensor in core/kernels); whoever
// builds one keeps the flags alive for as long as the mask is used, backward included
// (core/attention.h has versions that own their flag tensors).
// Thread safety: classify and fill are const and called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tz::kernels {

enum class Tile : uint8_t { hidden, visible, partial };

class MaskTerm {
 public:
  virtual ~MaskTerm() = default;
  // Tile of queries [i0, i1) x keys [j0, j1) (half-open, non-empty) of batch row b, query
  // head h.
  virtual Tile classify(int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                        int64_t q_offset) const = 0;
  // out[r*ld + c] = 1 if key j0 + c is visible to query i0 + r, else 0 (r < ni, c < nj).
  virtual void fill(int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset,
                    uint8_t* out, int64_t ld) const = 0;
  virtual std::string describe() const = 0;
  // Throws tz::Error when the term cannot serve B batch rows, H heads, S keys (e.g. its
  // flags were built for another size). Called once per kernel call, before any tile.
  virtual void check(int64_t B, int64_t H, int64_t S) const {}
};

// Sliding window: key j is visible to query i iff (q_offset + i) - j < w (w >= 1). Alone it
// hides only keys w or more positions before the query; with causal it leaves the last w.
class WindowMask : public MaskTerm {
 public:
  explicit WindowMask(int64_t w);
  Tile classify(int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t q_offset) const override;
  void fill(int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset, uint8_t* out,
            int64_t ld) const override;
  std::string describe() const override;
  int64_t w;
};

// Segment staircase: key j is visible to the query at p = q_offset + i iff
// j >= floor(p / L) L - M (L >= 1, M >= 0).
class SegmentMask : public MaskTerm {
 public:
  SegmentMask(int64_t L, int64_t M);
  Tile classify(int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t q_offset) const override;
  void fill(int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset, uint8_t* out,
            int64_t ld) const override;
  std::string describe() const override;
  // The first key visible to the query at position p.
  int64_t first_key(int64_t p) const { return p / L * L - M; }
  int64_t L, M;
};

// Key padding: key j of batch row b is visible iff keep[b*S + j] != 0 (keep is [B, S]). A
// batch row with no kept key leaves its queries empty (see attention.h: output 0).
class KeyPaddingMask : public MaskTerm {
 public:
  KeyPaddingMask(const int64_t* keep, int64_t B, int64_t S);
  Tile classify(int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t q_offset) const override;
  void fill(int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset, uint8_t* out,
            int64_t ld) const override;
  std::string describe() const override;
  void check(int64_t B, int64_t H, int64_t S) const override;
  const int64_t* keep;
  int64_t B, S;
};

// Forgetful Causal Masking: forgotten[b*S + j] != 0 hides key j of sequence b from every
// query at position q_offset + i > j. Flags as bytes or as i64 (exactly one is non-null).
class ForgottenKeysMask : public MaskTerm {
 public:
  ForgottenKeysMask(const uint8_t* forgotten, int64_t B, int64_t S);
  ForgottenKeysMask(const int64_t* forgotten, int64_t B, int64_t S);
  Tile classify(int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t q_offset) const override;
  void fill(int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset, uint8_t* out,
            int64_t ld) const override;
  std::string describe() const override;
  void check(int64_t B, int64_t H, int64_t S) const override;
  bool forgotten(int64_t b, int64_t j) const { return f8 ? f8[b * S + j] != 0 : f64[b * S + j] != 0; }
  const uint8_t* f8 = nullptr;
  const int64_t* f64 = nullptr;
  int64_t B, S;
};

// The AND of its terms. No terms: every pair visible.
struct AttentionMask {
  std::vector<std::shared_ptr<const MaskTerm>> terms;

  bool empty() const { return terms.empty(); }
  // Any term hidden -> hidden; every term visible -> visible; else partial.
  Tile classify(int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t q_offset) const;
  // The AND of the terms' fills (every term is filled; call it for partial tiles).
  void fill(int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset, uint8_t* out,
            int64_t ld) const;
  std::string describe() const;  // "window(w=5) & key_padding(B=2, S=70)"
  void check(int64_t B, int64_t H, int64_t S) const;
};

}  // namespace tz::kernels
