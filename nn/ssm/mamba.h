// Mamba, the selective state-space mixer. "Mamba: Linear-Time Sequence Modeling with Selective
// State Spaces", Gu and Dao 2023, arXiv:2312.00752 (sec. 3, algorithm 2, fig. 3).
//
// Shape letters: B batch, T time, C model width, E = expand C inner channels, N state size per
// channel, R the rank of delta's projection, K the conv width.
//   (u, z) = in_proj(x)                                [B, T, E] each
//   u = silu(causal depthwise conv1d_K(u))             (conv state: the last K - 1 inputs)
//   (dt, Bm, Cm) = x_proj(u)                           [B, T, R], [B, T, N], [B, T, N]
//   delta = softplus(dt_proj(dt))                      [B, T, E] (dt_proj has the bias)
//   A = -exp(A_log)                                    [E, N], S4D-real init A = -(n + 1)
//   h_t = exp(delta_t A) h_{t-1} + delta_t Bm_t u_t    (the selective scan, state [B, E, N])
//   y_t = Cm_t . h_t + D u_t;  out = out_proj(y silu(z))
// The residual block of the reference implementation, x + mixer(RMSNorm(x)) with no FFN, is
// the LM's layout "s...s" with "norm": "rmsnorm" (the test_config and the example).
// Initialisation as the reference code: dt_proj.weight ~ U(-R^-1/2, R^-1/2), dt_proj.bias =
// softplus^-1(dt) with dt log-uniform in [ssm_dt_min, ssm_dt_max] (floor 1e-4), A_log = log(n + 1),
// D = 1, the conv's weight and bias ~ U(-K^-1/2, K^-1/2) (PyTorch's default for Conv1d); the
// other linear layers PyTorch's default scale (std 1/sqrt(3 in), from a normal here), as the
// reference keeps them, not the zoo's N(0, 0.02).
// ssm_lti (the paper's LTI ablation, table 1): delta = softplus(dt_proj.bias), Bm and Cm learned
// vectors [N], all the same at every step; the gate z and the conv stay.
// Decoding: the state holds the conv's last K - 1 inputs and the SSM state h; a step, a chunk
// or a continuation runs the same code as the full forward.
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"
#include "nn/ssm/densemamba.h"

namespace tz::nn {

inline const Key<int64_t> kSsmState{"ssm_state", 16, "N: the state size per channel (Mamba d_state)"};
inline const Key<int64_t> kSsmExpand{"ssm_expand", 2, "E / C: inner channels per model channel (Mamba expand)"};
inline const Key<int64_t> kSsmConv{"ssm_conv", 4, "K: the width of the causal depthwise conv (Mamba d_conv)"};
inline const Key<int64_t> kSsmDtRank{"ssm_dt_rank", 0, "R: rank of delta's projection; 0 = ceil(C / 16)"};
inline const Key<double> kSsmDtMin{"ssm_dt_min", 0.001, "smallest initial delta (log-uniform init)"};
inline const Key<double> kSsmDtMax{"ssm_dt_max", 0.1, "largest initial delta (log-uniform init)"};
inline const Key<bool> kSsmLti{"ssm_lti", false, "delta, B, C input-independent (the LTI ablation of table 1)"};
inline const Key<int64_t> kSsmChunk{"ssm_chunk", 64, "steps between the states the scan saves for its backward"};

struct MambaOptions {
  int64_t dim = 0;      // C
  int64_t state = 16;   // N
  int64_t expand = 2;   // E = expand C
  int64_t conv = 4;     // K
  int64_t dt_rank = 0;  // R; 0 = ceil(C / 16)
  double dt_min = 0.001, dt_max = 0.1;
  bool lti = false;     // input-independent delta, B, C
  int64_t chunk = 64;   // the scan's checkpoint interval
  int64_t dense_m = 0;  // DenseMamba (densemamba.h): earlier layers' outputs fused in
  int64_t layer = 0;    // this layer's index in the stack (for dense_m)
};
MambaOptions mamba_options(const ModelDims& dims, const Config& config);

struct MambaState : MixerState {
  Tensor conv;  // [B, K - 1, E]: the conv's last inputs
  Tensor ssm;   // [B, E, N]
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("conv", conv);
    v.tensor("ssm", ssm);
  }
};

class Mamba : public Mixer {
 public:
  Mamba(const MambaOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // The scan's inputs for x (after in_proj, the conv from `conv_state` and the projections),
  // for tests: u, delta, A, Bm, Cm, z.
  struct ScanInputs {
    Tensor u, delta, A, Bm, Cm, z;
  };
  ScanInputs scan_inputs(const Tensor& x, Tensor* conv_state) const;

  MambaOptions options;
  std::shared_ptr<Linear> in_proj, x_proj, dt_proj, out_proj;
  std::shared_ptr<DenseHidden> dense;                     // with dense_m > 0
  Tensor conv_weight, conv_bias, A_log, D, B_lti, C_lti;  // B_lti, C_lti only with lti
};

}  // namespace tz::nn
