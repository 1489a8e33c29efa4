// KERPLE kernelized relative positions (Chi et al. 2022, arXiv:2205.09921); see kerple.h.
#include "nn/position/kerple.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "nn/config.h"
#include "nn/position/alibi.h"
#include "nn/registry.h"

namespace tz::nn {

namespace {
double softplus_inverse(double r) { return std::log(std::expm1(r)); }
double sigmoid_inverse(double y) { return std::log(y / (1 - y)); }
}  // namespace

KerplePositions::KerplePositions(const KerpleOptions& o, Generator& gen) : options(o), power(o.variant == "power") {
  TZ_CHECK(o.variant == "log" || o.variant == "power", "kerple: 'kerple_variant' must be \"log\" or \"power\", got \"",
           o.variant, "\"");
  TZ_CHECK(o.heads > 0 && o.layers > 0, "kerple: heads and layers must be positive, got ", o.heads, ", ", o.layers);
  const int64_t N = o.layers, H = o.heads;
  rho1 = register_parameter("rho1", zeros({N, H}));
  rho2 = register_parameter("rho2", zeros({N, H}));
  for (int64_t n = 0; n < N; ++n) {
    if (power) {  // ALiBi: r1 = m_h, r2 = 1
      set(n, alibi_slopes(H), std::vector<double>(static_cast<size_t>(H), 1.0));
    } else {  // uniform draws, r1 in [0.5, 2], r2 in [0.25, 1]
      Tensor a = rand({H}, gen, DType::f64, 0.5, 2.0), b = rand({H}, gen, DType::f64, 0.25, 1.0);
      set(n, a.to_vector<double>(), b.to_vector<double>());
    }
  }
}

Tensor KerplePositions::r1() const { return softplus(rho1); }

Tensor KerplePositions::r2() const { return power ? sigmoid(rho2) * 2.0 : softplus(rho2); }

void KerplePositions::set(int64_t layer, const std::vector<double>& a, const std::vector<double>& b) {
  const int64_t H = options.heads;
  TZ_CHECK(layer >= 0 && layer < options.layers && int64_t(a.size()) == H && int64_t(b.size()) == H,
           "kerple: set needs a layer below ", options.layers, " and ", H, " values of r1 and r2");
  std::vector<double> p1(static_cast<size_t>(H)), p2(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h) {
    const double r1v = a[size_t(h)], r2v = b[size_t(h)];
    TZ_CHECK(r1v > 0 && r2v > 0 && (!power || r2v < 2), "kerple: r1 > 0 and r2 in (0, ", power ? "2)" : "inf)",
             " required, got r1 = ", r1v, ", r2 = ", r2v);
    p1[size_t(h)] = softplus_inverse(r1v);
    p2[size_t(h)] = power ? sigmoid_inverse(r2v / 2) : softplus_inverse(r2v);
  }
  NoGradGuard no_grad;
  core::copy_(rho1.select(0, layer), from_vector(p1).to(rho1.dtype()));
  core::copy_(rho2.select(0, layer), from_vector(p2).to(rho2.dtype()));
}

Tensor KerplePositions::table(int64_t layer, int64_t q_offset, int64_t T, int64_t S) const {
  TZ_CHECK(layer >= 0 && layer < options.layers, "kerple: layer ", layer, " but built for ", options.layers, " layers");
  const int64_t M = T + S - 1;
  // Column c: distance d = |q_offset + c - (S - 1)|, as a constant row [1, M].
  const size_t m = static_cast<size_t>(M);
  std::vector<double> d(m), log_d(m), nonzero(m);
  for (int64_t c = 0; c < M; ++c) {
    d[size_t(c)] = std::abs(double(q_offset + c - (S - 1)));
    log_d[size_t(c)] = d[size_t(c)] > 0 ? std::log(d[size_t(c)]) : 0.0;
    nonzero[size_t(c)] = d[size_t(c)] > 0;
  }
  const DType dt = rho1.dtype();
  Tensor a = r1().select(0, layer).unsqueeze(1), b = r2().select(0, layer).unsqueeze(1);  // [H, 1]
  if (!power) return neg(a * log(b * from_vector(d, {1, M}).to(dt) + 1.0));               // -r1 log(1 + r2 d)
  // -r1 d^r2 = -r1 exp(r2 log d) for d >= 1, and 0 at d = 0.
  return neg(a * exp(b * from_vector(log_d, {1, M}).to(dt)) * from_vector(nonzero, {1, M}).to(dt));
}

Tensor KerplePositions::score_bias(int64_t H, int64_t q_offset, int64_t T, int64_t S, DType dtype,
                                   const MixerContext* ctx) const {
  TZ_CHECK(H == options.heads, "kerple: built for ", options.heads, " heads, attention has ", H);
  Tensor t = table(ctx ? ctx->layer : 0, q_offset, T, S);
  return t.dtype() == dtype ? t : t.to(dtype);
}

std::string KerplePositions::describe() const {
  return cat_str("KerplePositions(heads=", options.heads, ", layers=", options.layers, ", ", options.variant, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

namespace {
const nn::Key<std::string> kKerpleVariant{"kerple_variant", "log",
                                          "\"log\": -r1 log(1 + r2 |i-j|); \"power\": -r1 |i-j|^r2, 0 < r2 < 2"};
}  // namespace

void register_kerple(nn::Registry& r) {
  r.add({.id = "kerple",
         .summary = "Learned kernel distance penalties per layer and head: -r1 log(1 + r2 |i-j|) or -r1 |i-j|^r2",
         .keys = {kKerpleVariant},
         .test_config = R"({"pos": "kerple", "heads": 4})",
         .example = R"({"pos": "kerple", "heads": 8, "kerple_variant": "log"})",
         .position =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               return std::make_shared<nn::KerplePositions>(
                   nn::KerpleOptions{
                       .heads = d.heads, .layers = std::max<int64_t>(d.depth, 1), .variant = c.get(kKerpleVariant)},
                   gen);
             },
         .learn_steps = 12000,
         .learn_reason = "a learned distance penalty that only grows with distance reads a token 9 back slowly: "
                         "copy 0.20 after 400 steps, 0.54 after 3000, 0.94 after 12000 (power kernel started at "
                         "ALiBi: 0.61 / 0.73 / 0.82 after 3000 / 6000 / 12000)"});
}

}  // namespace tz::zoo
