// MEGALODON's layer (equations in megalodon.h; the CEMA and the gated attention in mega.cpp).
#include "nn/ssm/megalodon.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"

namespace tz::nn {

MegaOptions megalodon_options(const ModelDims& dims, const Config& c) {
  MegaOptions o = mega_options(dims, c);
  o.complex = true;
  o.norm_z = true;
  o.groups = c.get(kMegalodonGroups);
  TZ_CHECK(o.groups >= 1 && o.dim % o.groups == 0, c.source(), ": megalodon_groups must divide dim ", o.dim, ", got ",
           o.groups);
  return o;
}

Tensor timestep_norm(const Tensor& x, int64_t G, const Tensor& weight, const Tensor& bias, Tensor* sum_prev,
                     Tensor* sum_sq_prev, int64_t start, double eps) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), Cg = C / G;
  TZ_CHECK(C % G == 0, "timestep_norm: groups ", G, " must divide the width ", C);
  Tensor xg = x.reshape({B, T, G, Cg});
  Tensor s1 = cumsum(sum(xg, {-1}), 1), s2 = cumsum(sum(xg * xg, {-1}), 1);  // [B, T, G]
  if (sum_prev && sum_prev->defined()) {
    s1 = s1 + sum_prev->unsqueeze(1);
    s2 = s2 + sum_sq_prev->unsqueeze(1);
  }
  // n_t = (start + t + 1) Cg entries per group so far
  Tensor n = (arange(double(start + 1), double(start + T + 1), 1.0, x.dtype()) * double(Cg)).reshape({1, T, 1});
  Tensor mean = s1 / n, var = s2 / n - mean * mean;
  Tensor y = (xg - mean.unsqueeze(-1)) * rsqrt(var.unsqueeze(-1) + eps);
  if (sum_prev) {
    NoGradGuard no_grad;
    *sum_prev = s1.select(1, T - 1).detach().contiguous();
    *sum_sq_prev = s2.select(1, T - 1).detach().contiguous();
  }
  return y.reshape({B, T, C}) * weight + bias;
}

void timestep_norm_ref(double* out, const double* x, int64_t B, int64_t T, int64_t C, int64_t G, double eps) {
  const int64_t Cg = C / G;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < G; ++g) {
      double mean = 0, m2 = 0;  // Welford: running mean and sum of squared deviations
      int64_t n = 0;
      for (int64_t t = 0; t < T; ++t) {
        const double* xt = x + (b * T + t) * C + g * Cg;
        for (int64_t c = 0; c < Cg; ++c) {
          ++n;
          const double delta = xt[c] - mean;
          mean += delta / double(n);
          m2 += delta * (xt[c] - mean);
        }
        const double inv = 1.0 / std::sqrt(m2 / double(n) + eps);
        for (int64_t c = 0; c < Cg; ++c) out[(b * T + t) * C + g * Cg + c] = (xt[c] - mean) * inv;
      }
    }
}

Megalodon::Megalodon(const MegaOptions& o, Generator& gen) : Mega(o, gen) {
  norm_weight = register_parameter("norm_weight", ones({o.dim}));
  norm_bias = register_parameter("norm_bias", zeros({o.dim}));
}

Tensor Megalodon::prepare(const Tensor& x, MegaState* s) const {
  return timestep_norm(x, options.groups, norm_weight, norm_bias, s ? &s->sum : nullptr, s ? &s->sum_sq : nullptr,
                       s ? s->length : 0);
}

}  // namespace tz::nn

namespace tz::zoo {

void register_megalodon(nn::Registry& r) {
  r.add(
      {.id = "megalodon",
       .summary = "MEGALODON: timestep norm (causal cumulative statistics), complex EMA, normalised gated attention",
       .keys = {nn::kMegaEmaDim, nn::kMegaZDim, nn::kMegaVDim, nn::kMegaChunk, nn::kMegalodonGroups},
       .test_config = R"({"mixer": "megalodon", "mega_ema_dim": 4, "mega_chunk": 8, "megalodon_groups": 2})",
       .example = R"({"dim": 256, "mixer": "megalodon", "mega_ema_dim": 16, "mega_chunk": 128, "megalodon_groups": 4})",
       .mixer = [](const nn::ModelDims& d, const nn::Config& c,
                   Generator& gen) { return std::make_shared<nn::Megalodon>(nn::megalodon_options(d, c), gen); },
       .chunk = 8});
}

}  // namespace tz::zoo
