// LSSL (equations in lssl.h).
#include "nn/ssm/lssl.h"

#include <cmath>

#include "autograd/ops.h"
#include "autograd/ops_long_conv.h"
#include "core/creation.h"
#include "core/kernels/ssm_kernels.h"
#include "nn/ssm/mamba.h"  // the shared SSM keys

namespace tz::nn {

LsslOptions lssl_options(const ModelDims& dims, const Config& c) {
  LsslOptions o{.dim = dims.dim, .state = c.get(kSsmState), .dt_min = c.get(kSsmDtMin), .dt_max = c.get(kSsmDtMax)};
  const std::string src = c.source();
  TZ_CHECK(o.state >= 1 && o.state <= 512, src, ": ssm_state must be in [1, 512] (a dense N x N state matrix), got ",
           o.state);
  TZ_CHECK(o.dt_min > 0 && o.dt_max >= o.dt_min, src, ": need 0 < ssm_dt_min <= ssm_dt_max, got ", o.dt_min, " and ",
           o.dt_max);
  TZ_CHECK(dims.causal, src, ": lssl is a causal convolution here; it has no bidirectional form");
  return o;
}

Lssl::Lssl(const LsslOptions& o, Generator& gen) : SsmBlock(o.dim), options(o) {
  const int64_t Cn = o.dim, N = o.state;
  Tensor r = rand({Cn}, gen, DType::f64);
  log_dt = register_buffer("log_dt", std::log(o.dt_min) + r * (std::log(o.dt_max) - std::log(o.dt_min)));
  C = register_parameter("C", randn({Cn, N}, gen, DType::f32, 0.0, 1.0 / std::sqrt(double(N))));
  D = register_parameter("D", randn({Cn}, gen));
  out_proj = register_module("out_proj", std::make_shared<Linear>(LinearOptions{.in = Cn, .out = Cn}, gen));
}

const Lssl::Discrete& Lssl::discrete(int64_t L) const {
  const int64_t Cn = options.dim, N = options.state;
  std::vector<double> ld = log_dt.to_vector<double>();
  if (ld != cache_.log_dt) {  // first use, or the buffer was loaded or changed
    const kernels::DenseSsm s = kernels::hippo_legs(N);
    cache_ = Discrete{
        .log_dt = ld, .Ab = std::vector<double>(size_t(Cn * N * N)), .Bb = std::vector<double>(size_t(Cn * N))};
    for (int64_t c = 0; c < Cn; ++c)
      kernels::discretise_bilinear(cache_.Ab.data() + c * N * N, cache_.Bb.data() + c * N, s.A.data(), s.B.data(), N,
                                   std::exp(ld[size_t(c)]));
  }
  if (L > 0 && cache_.L != L) {  // L = 0: the step matrices only
    cache_.L = L;
    cache_.V.assign(size_t(Cn * L * N), 0.0);
    for (int64_t c = 0; c < Cn; ++c)
      kernels::krylov_vectors(cache_.V.data() + c * L * N, cache_.Ab.data() + c * N * N, cache_.Bb.data() + c * N, N,
                              L);
  }
  return cache_;
}

Tensor Lssl::kernel(int64_t L) const {
  const Discrete& d = discrete(L);
  Tensor V = from_vector(d.V, {options.dim, L, options.state}).to(C.dtype());
  return matmul(V, C.unsqueeze(-1)).squeeze(-1);  // K[c, l] = Σ_n V[c, l, n] C[c, n]
}

Tensor Lssl::convolve(const Tensor& u) const {
  return long_conv(u.transpose(1, 2), kernel(u.size(1)), D).transpose(1, 2);
}

Tensor Lssl::recur(const Tensor& u, Tensor* x) const {
  const int64_t B = u.size(0), T = u.size(1), Cn = options.dim, N = options.state;
  const Discrete& d = discrete(0);
  Tensor AbT = from_vector(d.Ab, {Cn, N, N}).to(C.dtype()).transpose(1, 2);  // x Āᵀ = (Ā x)ᵀ
  Tensor Bb = from_vector(d.Bb, {Cn, N}).to(C.dtype());
  Tensor h = x && x->defined() ? *x : zeros({B, Cn, N}, u.dtype());
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < T; ++t) {
    Tensor ut = u.select(1, t);                                            // [B, C]
    h = matmul(h.unsqueeze(-2), AbT).squeeze(-2) + ut.unsqueeze(-1) * Bb;  // [B, C, N]
    ys.push_back(sum(h * C, {-1}) + ut * D);                               // [B, C]
  }
  if (x) *x = h;
  return stack(ys, 1);
}

std::unique_ptr<MixerState> Lssl::make_state(int64_t batch, int64_t, DType dtype) const {
  return state_with(zeros({batch, options.dim, options.state}, dtype));
}

std::string Lssl::describe() const {
  return "LSSL(dim " + std::to_string(options.dim) + ", state " + std::to_string(options.state) +
         ", HiPPO-LegS, fixed A and dt)";
}

}  // namespace tz::nn

namespace tz::zoo {

void register_lssl(nn::Registry& r) {
  r.add({.id = "lssl",
         .summary = "LSSL: dense HiPPO-LegS SSM, bilinear, Krylov kernel by FFT long convolution, recurrent decoding",
         .keys = {nn::kSsmState, nn::kSsmDtMin, nn::kSsmDtMax},
         .test_config = R"({"mixer": "lssl", "ssm_state": 16, "ssm_dt_min": 0.05, "ssm_dt_max": 1.0})",
         .example = R"({"dim": 256, "mixer": "lssl", "ssm_state": 32, "norm": "layernorm"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::Lssl>(nn::lssl_options(d, c), gen);
         }});
}

}  // namespace tz::zoo
