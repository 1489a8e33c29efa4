// H3, the shift and diagonal SSMs with multiplicative interactions. "Hungry Hungry Hippos:
// Towards Language Modeling with State Space Models", Fu, Dao, Saab, Thomas, Rudra and Ré
// 2023, arXiv:2212.14052 (sec. 3, algorithm 1).
//
// Shape letters: B batch, T time (L the kernels' length), C model width, H heads, E = C / H
// the head size, M the shift SSM's state size, N the diagonal SSM's state size.
//   Q, K, V = x W_Q, x W_K, x W_V                              [B, T, C]
//   shift SSM, per channel: A = the M x M shift matrix (ones below the diagonal), B = e_1,
//     so the state is the last M inputs, x_t = (u_t, u_{t-1}, .., u_{t-M+1}), and the kernel
//     C A^ℓ B = c_ℓ (ℓ < M), 0 after: a short causal conv.   K̄ = SSM_shift(K)
//   per head h: the outer products K̄_t^T V_t [E, E], each of its C E channels through the
//     diagonal SSM (nn/ssm/diagonal_ssm.h, S4D-Lin):       S = SSM_diag(K̄^T ⊗ V)
//   O_t = Q_t S_t (per head: [1, E] x [E, E]), out = O W_O
// With E = 1 (the paper's default head size) this is out = (Q ⊙ SSM_diag(SSM_shift(K) ⊙ V)) W_O.
// Conv form (training): both SSMs by their kernels and the FFT long convolution; recurrent
// form (decoding): the shift register (the last M - 1 inputs of K) and the diagonal SSM's
// complex scan (state [B, C E P, 2]). Deviations: the reference code's SSMs have state size
// 64 each, h3_shift defaults to 4 here (a short conv: its kernel is zero past M anyway); the
// diagonal SSM's D skip term is kept (the shift SSM has none); no norm inside the layer.
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"
#include "nn/ssm/diagonal_ssm.h"

namespace tz::nn {

inline const Key<int64_t> kH3Shift{"h3_shift", 4, "M: the shift SSM's state size (its causal conv width)"};
inline const Key<int64_t> kH3HeadDim{"h3_head_dim", 1, "E: head size of the K^T V outer products (1 = elementwise)"};

struct H3Options {
  int64_t dim = 0;       // C
  int64_t head_dim = 1;  // E
  int64_t shift = 4;     // M
  int64_t state = 16;    // N
  double dt_min = 0.001, dt_max = 0.1;
  bool recurrent = false;  // a whole-sequence forward by the recurrent form (tests)
};
H3Options h3_options(const ModelDims& dims, const Config& config);

struct H3State : MixerState {
  Tensor shift;  // [B, M - 1, C]: the shift register
  Tensor h;      // [B, C E P, 2]: the diagonal SSM
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("shift", shift);
    v.tensor("h", h);
  }
};

class H3 : public Mixer {
 public:
  H3(const H3Options& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  Tensor shift_kernel(int64_t L) const;  // the shift SSM's kernel [C, L]: c_ℓ, then zeros
  // The shift SSM on k [B, T, C]: by its kernel and the FFT long convolution, or by the
  // shift register (from *state [B, M - 1, C] when given, which then holds the last inputs).
  Tensor shift_ssm(const Tensor& k, bool recurrent, Tensor* state = nullptr) const;

  H3Options options;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, out_proj;
  Tensor shift_c;  // [C, M]: c_ℓ, the weight of the input ℓ steps back
  std::shared_ptr<DiagonalSsm> ssm;
};

}  // namespace tz::nn
