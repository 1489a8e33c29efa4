// What the linear-RNN mixers (nn/linear_rnn/) share: their decoding state, the kernel's
// chunk and form keys, the head split, the per-head GroupNorm, and one call of the linear
// attention kernel (core/kernels/linear_attention.h) that continues a state.
//
// Shapes: B batch, T time, C model dim, H heads, Dk key dim and Dv value dim per head.
#pragma once

#include <memory>

#include "autograd/ops.h"
#include "nn/config.h"
#include "nn/mixer.h"

namespace tz::nn {

inline const Key<int64_t> kLinearChunk{"linear_chunk", 64,
                                       "tokens per block of the chunked linear-attention kernel (C)"};
inline const Key<std::string> kLinearForm{
    "linear_form", "chunked",
    "kernel form of a whole-sequence forward: chunked, recurrent or parallel (all compute the same)"};

// Reads and checks linear_chunk and linear_form, naming the key on error.
int64_t linear_chunk(const Config& config);
LinearAttentionForm linear_form(const Config& config);
// "chunked chunk 64", "recurrent", "parallel": the form in a mixer's describe().
std::string form_text(LinearAttentionForm form, int64_t chunk);

// The matrix state S [B, H, Dk, Dv] (Dv + 1 with linear attention's normaliser column).
struct LinearRnnState : MixerState {
  Tensor S;
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("S", S);
  }
};
std::unique_ptr<MixerState> make_linear_state(int64_t batch, int64_t H, int64_t Dk, int64_t Dv, DType dtype);

Tensor split_heads(const Tensor& x, int64_t H);  // [B, T, H D] -> [B, H, T, D]
Tensor merge_heads(const Tensor& x);             // [B, H, T, D] -> [B, T, H D]

// GroupNorm with one group per head (RetNet, GLA): o [B, H, T, D] normalised over each
// head's D channels, merged to [B, T, H D], then the affine weight (1) and bias (0) [H D].
class HeadGroupNorm : public Module {
 public:
  explicit HeadGroupNorm(int64_t dim, double eps = 1e-5);
  Tensor forward(const Tensor& o) const;
  std::string describe() const override;
  Tensor weight, bias;
  double eps;
};

// o [B, H, T, Dv] of the kernel on q, k, v with spec's decay, bonus and normaliser, from
// `state` when given (its S is h0; it receives the final state and length += T). A call of
// one token with a state runs the recurrent form: the decode step.
Tensor run_linear_attention(const Tensor& q, const Tensor& k, const Tensor& v, LinearAttentionSpec spec,
                            LinearRnnState* state);

}  // namespace tz::nn
