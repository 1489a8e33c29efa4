// RWKV-4 time mixing (the WKV operator). "RWKV: Reinventing RNNs for the Transformer Era",
// Peng et al. 2023, arXiv:2305.13048 (Findings of EMNLP 2023), sec. 4.
//
// Shapes: B batch, T time, C model dim (RWKV-4 has no heads: every channel is its own RNN).
// Token shift (rwkv6.h's token_shift, x_{-1} from the state or 0), per channel μ_j [C]:
//   x'_j,t = x_t + (x_{t-1} - x_t) ⊙ μ_j,   j ∈ {k, v, r}
//   k, v, r = x'_k W_k, x'_v W_v, x'_r W_r
// WKV, per channel c, with w = exp(ŵ) > 0 (ŵ the learned decay parameter, the step decay e^-w)
// and the bonus u of the current token:
//   wkv_t = (Σ_{i<t} e^{-(t-1-i) w + k_i} v_i + e^{u + k_t} v_t)
//         / (Σ_{i<t} e^{-(t-1-i) w + k_i}     + e^{u + k_t})
//   out = (σ(r) ⊙ wkv) W_o
// Three forms of WKV compute the same function (tests/zoo/proofs_rwkv4_based.cpp):
//   recurrent  the paper's numerically stable loop (its appendix / the reference CUDA kernel):
//              the state after t tokens is (a, b, p) with A_t = a e^p, B_t = b e^p the sums of
//              the numerator and denominator over i < t, p a running max exponent:
//                q = max(p, u + k_t):    wkv_t = (e^{p-q} a + e^{u+k_t-q} v_t) / (e^{p-q} b + e^{u+k_t-q})
//                q' = max(p - w, k_t):   a ← e^{p-w-q'} a + e^{k_t-q'} v_t,  b ← e^{p-w-q'} b + e^{k_t-q'},  p ← q'
//              the reference and the decode step;
//   parallel   the materialised T x T exponents E_ti = -(t-1-i) w + k_i (i < t), u + k_t
//              (i = t), plus the state's column p - t w, each row less its max before exp;
//   chunked    the parallel form over chunks of C tokens, (a, b, p) carried between them.
// No exp ever sees an unsubtracted exponent, so k of any size and w from 1e-9 to 1e4 stay
// finite (a direct e^{k_i} overflows f32 from k = 89).
// The max is a stabiliser: the outputs do not depend on it, so it is held constant (detached)
// and the gradient is exact.
// The RWKV block x += TimeMix(LN(x)); x += ChannelMix(LN(x)) is the layout "ss" with the
// mixers [rwkv4, rwkv6_channel_mix] (the id's test config): RWKV-4's channel mix is
// RWKV-6's, σ(x'_r W_r) ⊙ (relu(x'_k W_k)^2 W_v) (rwkv6.h's RwkvChannelMix).
// Initialisation as the reference code in layer l of L: ŵ_c = -5 + 8 (c / (C-1))^(0.7 + 1.3 l/(L-1)),
// u_c = log 0.3 + 0.5 ((c + 1) mod 3 - 1), token-shift mixes from rwkv_mix_schedule.
// Deviations: the channel mix's hidden width is RWKV-6's 3.5 C, not RWKV-4's 4 C; no
// biases (as the reference); the state's p starts at -1e38 as the reference kernel's.
#pragma once

#include "core/random.h"
#include "nn/layers.h"
#include "nn/linear_rnn/common.h"

namespace tz::nn {

// The WKV state after t tokens, each [B, C]: A_t = a e^p, B_t = b e^p.
struct WkvState {
  Tensor a, b, p;
};
WkvState wkv_initial_state(int64_t batch, int64_t C, DType dtype);  // a = b = 0, p = -1e38

// wkv [B, T, C] of k, v [B, T, C], the decay rate w [C] (> 0, or 0 for no decay) and the bonus
// u [C], continuing `state`, which receives the state after the T tokens.
Tensor wkv_recurrent(const Tensor& k, const Tensor& v, const Tensor& w, const Tensor& u, WkvState& state);
Tensor wkv_parallel(const Tensor& k, const Tensor& v, const Tensor& w, const Tensor& u, WkvState& state);
Tensor wkv_chunked(const Tensor& k, const Tensor& v, const Tensor& w, const Tensor& u, WkvState& state, int64_t chunk);

struct Rwkv4Options {
  int64_t dim = 0;  // C
  int64_t chunk = 64;
  LinearAttentionForm form = LinearAttentionForm::chunked;
  int64_t layer = 0, depth = 1;  // l, L: the initial schedules
};

// The WKV state (a, b, p) and the previous token x_{t-1} [B, C].
struct Rwkv4State : MixerState {
  Tensor a, b, p, shift;
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("a", a);
    v.tensor("b", b);
    v.tensor("p", p);
    v.tensor("shift", shift);
  }
};

class Rwkv4 : public Mixer {
 public:
  Rwkv4(const Rwkv4Options& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  Rwkv4Options options;
  std::shared_ptr<Linear> k_proj, v_proj, r_proj, o_proj;
  Tensor mu_k, mu_v, mu_r;  // [C]
  Tensor decay, bonus;      // ŵ (w = exp ŵ) and u [C]
};

}  // namespace tz::nn
