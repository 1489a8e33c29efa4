// The MatMul-free LM: ternary BitLinear layers, the MLGRU token mixer and a ternary GLU
// channel mixer. "Scalable MatMul-free Language Modeling", Zhu et al. 2024, arXiv:2406.02528.
//
// Shape letters: B batch, T time, C model width, F the GLU's hidden width, K a layer's input
// width, N its output width.
// BitLinear (RMSNorm fused in front, then 8-bit activations and ternary weights):
//   u = x / rms(x)                                       (no gain: the norm is part of the layer)
//   gamma = max_k |u_k| (per token),  u~ = clip(round(127 u / gamma), -127, 127) gamma / 127
//   beta = mean |W|,                  W~ = clip(round(W / (beta + eps)), -1, 1) beta
//   y = u~ W~^T
// Both roundings pass the gradient straight through (STE): the backward treats u~ = u and
// W~ = W. With the integer activations q = round(127 u / gamma) and the ternary t = W~ / beta,
//   y = (beta gamma / 127) sum_k t_nk q_k
// and sum_k t_nk q_k needs only additions and subtractions: ternary_product_addsub.
// MLGRU (every product a BitLinear):
//   f_t = gamma_l + (1 - gamma_l) sigmoid(x_t W_f),  c_t = silu(x_t W_c)
//   h_t = f_t h_{t-1} + (1 - f_t) c_t                                        (the scan)
//   g_t = sigmoid(x_t W_g),  o_t = (g_t h_t) W_o
// Ternary GLU (the id ternary_glu): y = (silu(x W_g) * (x W_u)) W_d, F = 2/3 of ffn_mult * C.
// The forget gate's lower bound gamma_l is HGRN's (nn/linear_rnn/hgrn.h), which the authors'
// released code (HGRN-Bit) can add; the registered model leaves it at 0 (with l / L in a
// 2-layer model copy reached 0.29 after 1500 steps, without it 0.85).
// Deviation: the gradient check of the conformance suite compares analytic and numerical
// gradients, which an STE contradicts on purpose; the key bitlinear_quantize = false keeps
// the same layers in full precision for it (the proofs run the quantised path).
// Decoding: the state holds h [B, C].
#pragma once

#include <vector>

#include "core/random.h"
#include "nn/config.h"
#include "nn/mixer.h"
#include "nn/registry.h"

namespace tz::nn {

inline const Key<bool> kBitQuantize{"bitlinear_quantize", true,
                                    "BitLinear: ternary weights and 8-bit activations (false: full precision)"};

// y [M, N] = sum_k t[n, k] q[m, k] for t in {-1, 0, 1} [N, K] and integer q [M, K]: adds where
// t = 1, subtracts where t = -1, never multiplies.
std::vector<int64_t> ternary_product_addsub(const std::vector<int64_t>& q, const std::vector<int8_t>& t, int64_t M,
                                            int64_t K, int64_t N);

struct BitLinearOptions {
  int64_t in = 0;          // K
  int64_t out = 0;         // N
  bool quantize = true;    // ternary weights, 8-bit activations
  double init_std = 0.02;  // of the latent full-precision weight
};

class BitLinear : public Module {
 public:
  BitLinear(const BitLinearOptions& options, Generator& gen);
  Tensor forward(const Tensor& x) const;
  // The ternary weights t [N, K] (values in {-1, 0, 1}) and their scale beta.
  Tensor ternary() const;
  double beta() const;
  // The same product as forward (quantised), computed with ternary_product_addsub.
  Tensor forward_addsub(const Tensor& x) const;
  std::string describe() const override;
  BitLinearOptions options;
  Tensor weight;  // [N, K], the latent weights the optimiser updates
};

struct MlgruOptions {
  int64_t dim = 0;  // C
  bool quantize = true;
  double lower_bound = 0;  // gamma_l
};

struct MlgruState : MixerState {
  Tensor h;  // [B, C]
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("h", h);
  }
};

class Mlgru : public Mixer {
 public:
  Mlgru(const MlgruOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // The scan's inputs for x: a = f [B, T, C], b = (1 - f) c.
  struct ScanInputs {
    Tensor a, b;
  };
  ScanInputs scan_inputs(const Tensor& x) const;

  MlgruOptions options;
  std::shared_ptr<BitLinear> f_proj, c_proj, g_proj, out_proj;
};

struct TernaryGluOptions {
  int64_t dim = 0;     // C
  int64_t hidden = 0;  // F
  bool quantize = true;
};

class TernaryGlu : public UnaryModule {
 public:
  TernaryGlu(const TernaryGluOptions& options, Generator& gen);
  Tensor forward(const Tensor& x) const override;
  std::string describe() const override;
  TernaryGluOptions options;
  std::shared_ptr<BitLinear> gate, up, down;
};

}  // namespace tz::nn
