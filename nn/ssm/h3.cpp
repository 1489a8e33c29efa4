// H3 (equations in h3.h).
#include "nn/ssm/h3.h"

#include <cmath>

#include "autograd/ops.h"
#include "autograd/ops_long_conv.h"
#include "core/creation.h"
#include "nn/ssm/mamba.h"  // the shared SSM keys

namespace tz::nn {

H3Options h3_options(const ModelDims& dims, const Config& c) {
  H3Options o{.dim = dims.dim,
              .head_dim = c.get(kH3HeadDim),
              .shift = c.get(kH3Shift),
              .state = c.get(kSsmState),
              .dt_min = c.get(kSsmDtMin),
              .dt_max = c.get(kSsmDtMax)};
  const std::string src = c.source();
  TZ_CHECK(o.head_dim >= 1 && o.dim % o.head_dim == 0, src, ": h3_head_dim must divide dim (", o.dim, "), got ",
           o.head_dim);
  TZ_CHECK(o.shift >= 1, src, ": h3_shift must be >= 1, got ", o.shift);
  TZ_CHECK(dims.causal && dims.context_dim == 0, src, ": h3 is a causal self-mixer here (no encoder or cross use)");
  return o;
}

H3::H3(const H3Options& o, Generator& gen) : options(o) {
  const int64_t C = o.dim, M = o.shift;
  // PyTorch's default Linear scale (std 1/sqrt(3 C)), as the reference keeps it: the output is
  // a product of three projections, which the zoo's N(0, 0.02) would shrink to nothing.
  auto lin = [&](const char* name) {
    return register_module(
        name,
        std::make_shared<Linear>(LinearOptions{.in = C, .out = C, .init_std = 1.0 / std::sqrt(3.0 * double(C))}, gen));
  };
  q_proj = lin("q_proj");
  k_proj = lin("k_proj");
  v_proj = lin("v_proj");
  out_proj = lin("out_proj");
  shift_c = register_parameter("shift_c", randn({C, M}, gen, DType::f32, 0.0, 1.0 / std::sqrt(double(M))));
  ssm = register_module(
      "ssm_diag",
      std::make_shared<DiagonalSsm>(
          DiagonalSsmOptions{.channels = C * o.head_dim, .state = o.state, .dt_min = o.dt_min, .dt_max = o.dt_max},
          gen));
}

Tensor H3::shift_kernel(int64_t L) const {
  const int64_t M = options.shift;
  if (L <= M) return shift_c.narrow(1, 0, L);
  return cat({shift_c, zeros({options.dim, L - M}, shift_c.dtype())}, 1);
}

Tensor H3::shift_ssm(const Tensor& k, bool recurrent, Tensor* state) const {
  if (!recurrent) return long_conv(k.transpose(1, 2), shift_kernel(k.size(1))).transpose(1, 2);
  // the shift register: conv1d's weight[c, M - 1 - ℓ] multiplies the input ℓ steps back
  const int64_t M = options.shift;
  std::vector<int64_t> rev(static_cast<size_t>(M));
  for (int64_t j = 0; j < M; ++j) rev[size_t(j)] = M - 1 - j;
  Tensor w = index_select(shift_c, 1, from_vector(rev, {M}));
  return state ? conv1d_causal_continue(k, w, Tensor(), *state) : conv1d_causal(k, w);
}

Tensor H3::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": a convolution has no keys to mask and takes no segment memory");
  H3State* s = state ? &own_state<H3State>(state, ctx) : nullptr;
  const int64_t B = x.size(0), T = x.size(1), E = options.head_dim, H = options.dim / E;
  const bool rec = s || options.recurrent;
  Tensor q = q_proj->forward(x), k = k_proj->forward(x), v = v_proj->forward(x);
  Tensor kbar = shift_ssm(k, rec, s ? &s->shift : nullptr);
  Tensor kv = (kbar.view({B, T, H, E, 1}) * v.view({B, T, H, 1, E})).reshape({B, T, H * E * E});  // K̄^T ⊗ V
  Tensor S = rec ? ssm->recur(kv, s ? &s->h : nullptr) : ssm->convolve(kv);
  Tensor o = sum(q.view({B, T, H, E, 1}) * S.view({B, T, H, E, E}), {3});  // Q_t S_t per head [B, T, H, E]
  if (s) s->length += T;
  return out_proj->forward(o.reshape({B, T, options.dim}));
}

std::unique_ptr<MixerState> H3::make_state(int64_t batch, int64_t, DType dtype) const {
  auto s = std::make_unique<H3State>();
  s->shift = zeros({batch, options.shift - 1, options.dim}, dtype);
  s->h = zeros({batch, options.dim * options.head_dim * (options.state / 2), 2}, dtype);
  return s;
}

std::string H3::describe() const {
  return cat_str("H3(dim ", options.dim, ", head dim ", options.head_dim, ", shift ", options.shift, ", state ",
                 options.state, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_h3(nn::Registry& r) {
  r.add({.id = "h3",
         .summary = "H3: Q ⊙ SSM_diag(SSM_shift(K) ⊙ V), shift and diagonal SSMs by FFT long conv, recurrent decoding",
         .keys = {nn::kH3Shift, nn::kH3HeadDim, nn::kSsmState, nn::kSsmDtMin, nn::kSsmDtMax},
         .test_config = R"({"mixer": "h3", "ssm_state": 8, "ssm_dt_min": 0.01, "ssm_dt_max": 0.5})",
         .example = R"({"dim": 256, "mixer": "h3", "h3_shift": 4, "ssm_state": 64, "norm": "layernorm"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::H3>(nn::h3_options(d, c), gen);
         }});
}

}  // namespace tz::zoo
