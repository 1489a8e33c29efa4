// ABC, attention with bounded-memory control. "ABC: Attention with Bounded-memory Control",
// Peng, Kasai, Pappas, Yogatama, Wu, Kong, Schwartz and Smith 2022, arXiv:2110.02488 (ACL 2022);
// the control of its ABC_MLP variant.
//
// Shapes: B batch, T time, C model dim, H heads, D = C / H per head, n memory slots per head.
// Per head, the keys and values are written into n slots, each slot a weighted average of the
// tokens so far, the weights given by a learned control φ:
//   q_t = x_t W_q / sqrt(D),  k_t = x_t W_k,  v_t = x_t W_v,  φ_t = exp(x_t W_φ)   [n]
//   Z_t = sum_{j<=t} φ_j                                 (ABC_MLP: φ normalised over time)
//   K̃_t = diag(1 / Z_t) sum_{j<=t} φ_j^T k_j,   Ṽ_t = diag(1 / Z_t) sum_{j<=t} φ_j^T v_j   [n, D]
//   out_t = softmax(q_t K̃_t^T) Ṽ_t,   out = merge_H(out) W_o
// So K̃_t^T q_t = (sum_j (q_t . k_j) φ_j) / Z_t is a linear attention with values φ (pass 1),
// and with p_t = softmax(.) the output sum_j ((p_t / Z_t) . φ_j) v_j is another one with
// query p_t / Z_t and key φ (pass 2): two passes of the kernel
// (core/kernels/linear_attention.h, no decay), a softmax between. Its chunked form runs a whole
// sequence (linear_form, linear_chunk), its recurrent form a decode step.
// A slot no token has written (Z_t = 0, only with a one-hot control) holds nothing and is left
// out of the softmax; then with n >= T and φ_t = e_t, K̃_t and Ṽ_t are the keys and values so
// far and ABC is softmax attention (the proof).
// Deviations: φ_t = exp(30 tanh(x_t W_φ / 30)) (a soft cap: the paper's exp overflows f32 past
// 88, and its sums sooner); one control per head (W_φ [C, H n]); no biases.
#pragma once

#include "core/random.h"
#include "nn/layers.h"
#include "nn/linear_rnn/common.h"

namespace tz::nn {

inline const Key<int64_t> kAbcSlots{"abc_slots", 32, "n: ABC's memory slots per head"};

struct AbcOptions {
  int64_t dim = 0;     // C
  int64_t heads = 0;   // H (divides C)
  int64_t slots = 32;  // n
  int64_t chunk = 64;
  LinearAttentionForm form = LinearAttentionForm::chunked;
};

// The two passes' states, K̃^T and Ṽ unnormalised: S1 [B, H, D, n], S2 [B, H, n, D], and Z [B, H, n].
struct AbcState : MixerState {
  Tensor S1, S2, Z;
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("S1", S1);
    v.tensor("S2", S2);
    v.tensor("Z", Z);
  }
};

class Abc : public Mixer {
 public:
  Abc(const AbcOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // log φ [B, H, T, n] of x [B, T, C] (capped).
  Tensor log_control(const Tensor& x) const;
  // The slots read by q, k, v [B, H, T, D] with the control log φ [B, H, T, n] (-inf: no
  // weight): out [B, H, T, D], continuing `state` when given.
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& log_phi, AbcState* state) const;

  AbcOptions options;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, phi_proj, o_proj;
};

}  // namespace tz::nn
