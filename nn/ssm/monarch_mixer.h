// Monarch Mixer (M2): Monarch matrices for the channel maps, a gated causal long convolution
// for the sequence. "Monarch Mixer: A Simple Sub-Quadratic GEMM-Based Architecture", Fu,
// Arora, Grogan, Johnson, Eyuboglu, Thomas, Spector, Poli, Rudra and Ré 2023, arXiv:2310.12109.
//
// Shape letters: B batch, T time (L = positions so far), C model width = b1 b2, K the short
// conv's width.
// A Monarch matrix of order n = b1 b2 (the paper's order-2 Monarch, eq. 1):
//   M = P^T L P R
//   R = blockdiag(R_0 .. R_{b1-1}), R_i [b2, b2]   (mixes within each of the b1 groups)
//   P the stride permutation: index i1 b2 + k2 -> k2 b1 + i1  (a [b1, b2] -> [b2, b1] transpose)
//   L = blockdiag(L_0 .. L_{b2-1}), L_k [b1, b1]   (mixes across the groups)
//   entrywise: M[(k1 b2 + k2), (i1 b2 + i2)] = L[k2, k1, i1] R[i1, k2, i2]
// y = M x costs n (b1 + b2) multiply-adds instead of n^2 (O(n^{3/2}) for b1 = b2), as two
// batched matmuls and two transposes, so its gradients come from those ops.
// The sequence mixer (the paper's causal M2 block, in its FFT-convolution special case: the
// DFT is itself a Monarch product, and the causal variant zero-pads to 2L, which is exactly
// core/long_conv.h's FFT path; we call that kernel instead of spelling the DFT as Monarch
// factors):
//   (q, k, v) = short_conv_K(M_q x, M_k x, M_v x)     depthwise causal, [B, T, C] each
//   y = M_o (q ⊙ (h * (k ⊙ v) + D ⊙ (k ⊙ v)))        h [C, context] a learned causal filter
// Decoding: the filter has no recurrence; the state keeps the short conv's last K - 1 inputs
// and the history of k ⊙ v, and a step convolves it at the new positions only.
// Deviations: the filter is explicit (the paper's code also offers a Hyena-style implicit one);
// the channel-mixing MLP with Monarch matrices is the host model's FFN.
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"

namespace tz::nn {

inline const Key<int64_t> kM2Blocks{
    "m2_blocks", 0, "b1: blocks of the Monarch matrices (divides dim); 0 = the divisor nearest sqrt(dim)"};
inline const Key<int64_t> kM2ShortConv{"m2_short_conv", 3, "K: width of the short depthwise conv on q, k, v"};

// y = M x for x [..., b1 b2], L [b2, b1, b1], R [b1, b2, b2] (the formula above).
Tensor monarch_multiply(const Tensor& x, const Tensor& L, const Tensor& R);

// A learned Monarch matrix of order b1 b2 with a bias.
class Monarch : public Module {
 public:
  Monarch(int64_t b1, int64_t b2, Generator& gen);
  Tensor forward(const Tensor& x) const;
  std::string describe() const override;
  Tensor L, R, bias;  // [b2, b1, b1], [b1, b2, b2], [b1 b2]
};

struct MonarchMixerOptions {
  int64_t dim = 0;         // C
  int64_t blocks = 0;      // b1 (b2 = C / b1)
  int64_t short_conv = 3;  // K
  int64_t context = 0;     // the filter's length
};
MonarchMixerOptions monarch_mixer_options(const ModelDims& dims, const Config& config);

struct MonarchMixerState : MixerState {
  Tensor conv;  // [B, K - 1, 3 C]
  Tensor kv;    // [B, capacity, C]: k ⊙ v so far
  void visit(StateVisitor& vis) override {
    MixerState::visit(vis);
    vis.tensor("conv", conv);
    vis.tensor("kv", kv);
  }
};

class MonarchMixer : public Mixer {
 public:
  MonarchMixer(const MonarchMixerOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  MonarchMixerOptions options;
  std::shared_ptr<Monarch> q_proj, k_proj, v_proj, o_proj;
  Tensor conv_weight, conv_bias, filter, D;  // [3 C, K], [3 C], [C, context], [C]
};

}  // namespace tz::nn
