// Memory-compressed attention, the causal form (T-DMCA's compressed layers). "Generating
// Wikipedia by Summarizing Long Sequences", Liu, Saleh, Pot, Goodrich, Sepassi, Kaiser,
// Shazeer 2018, arXiv:1801.10198, sec. 4.2.3.
//
// Shapes and the layer: nn/sparse_attention/common.h; kappa the kernel = stride of the
// compression, M = floor(S / kappa) complete slots. Keys and values are compressed by a
// strided convolution along time (kernel = stride = kappa, C -> C channels):
//   kc_m = W_k [k_{m kappa}; ...; k_{m kappa + kappa - 1}],  vc_m likewise with W_v  [B, H, M, D]
// Causal rule on compressed blocks: slot m is visible to the query at position p only when
// it covers no position after p, (m + 1) kappa - 1 <= p. The positions after the last
// complete slot, floor((p + 1) / kappa) kappa <= j <= p, are read uncompressed, so that no
// query is left empty:
//   o = merge( attention(q, kc, vc | slots before p),  attention(q, k, v | own open block) )
// by log-sum-exp (core/attention_partial.h). With kappa = 1 and W = I it is full causal
// attention.
// Deviation: the paper interleaves these layers with local-attention layers; here that is
// the model's choice (a "mixer" list), and the open block read raw is an addition.
#pragma once

#include "nn/sparse_attention/common.h"

namespace tz::nn {

inline const Key<int64_t> kCompressStride{"compress_stride", 3,
                                          "memory-compressed attention: conv kernel = stride kappa"};

// Keys lo(p) <= j <= hi(p) visible to the query at p = q_offset + i, lo and hi non-decreasing
// in p (so a tile classifies from its corner rows).
class MonotoneRangeMask : public kernels::MaskTerm {
 public:
  MonotoneRangeMask(std::function<int64_t(int64_t)> lo, std::function<int64_t(int64_t)> hi, std::string name)
      : lo(std::move(lo)), hi(std::move(hi)), name(std::move(name)) {}
  kernels::Tile classify(int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                         int64_t q_offset) const override;
  void fill(int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset, uint8_t* out,
            int64_t ld) const override;
  std::string describe() const override { return name; }
  std::function<int64_t(int64_t)> lo, hi;
  std::string name;
};

class MemoryCompressedAttention : public SparseAttention {
 public:
  MemoryCompressedAttention(int64_t dim, int64_t heads, int64_t kappa, Generator& gen);
  // The attention above on split heads; conv_k, conv_v: Linear(kappa C -> C).
  static Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_offset, int64_t kappa,
                       Linear& conv_k, Linear& conv_v);
  int64_t kappa;
  std::shared_ptr<Linear> conv_k, conv_v;
};

}  // namespace tz::nn
