// The MatMul-free LM (equations in matmul_free_lm.h).
#include "nn/linear_rnn/matmul_free_lm.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "nn/ffn/mlp.h"

namespace tz::nn {
namespace {

constexpr double kQb = 127;    // 8-bit activations: integers in [-127, 127]
constexpr double kEps = 1e-5;  // keeps gamma and beta away from 0
constexpr double kRmsEps = 1e-6;

// round-half-even of a tensor, outside the graph (the STE carries the gradient around it).
Tensor rounded(const Tensor& t) {
  std::vector<double> v = t.detach().to_vector<double>();
  for (double& e : v) e = std::nearbyint(e);
  return from_vector(v, t.shape()).to(t.dtype());
}

struct Quantised {
  Tensor q;      // integer activations [..., K]
  Tensor gamma;  // absmax per token [..., 1]
};
Quantised quantise_activations(const Tensor& u) {
  Tensor gamma = clamp(max(abs(u.detach()), -1, true), kEps, INFINITY);
  return {clamp(rounded(u.detach() * kQb / gamma), -kQb, kQb), gamma};
}

}  // namespace

std::vector<int64_t> ternary_product_addsub(const std::vector<int64_t>& q, const std::vector<int8_t>& t, int64_t M,
                                            int64_t K, int64_t N) {
  TZ_CHECK(int64_t(q.size()) == M * K && int64_t(t.size()) == N * K, "ternary_product_addsub: q must hold ", M * K,
           " and t ", N * K, " values, got ", q.size(), " and ", t.size());
  std::vector<int64_t> y(size_t(M * N), 0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      int64_t acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        const int8_t w = t[size_t(n * K + k)];
        TZ_CHECK(w >= -1 && w <= 1, "ternary_product_addsub: weight ", int(w), " at [", n, ", ", k, "] is not ternary");
        if (w > 0)
          acc += q[size_t(m * K + k)];
        else if (w < 0)
          acc -= q[size_t(m * K + k)];
      }
      y[size_t(m * N + n)] = acc;
    }
  return y;
}

BitLinear::BitLinear(const BitLinearOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.in > 0 && o.out > 0, "BitLinear: in and out must be positive, got in=", o.in, " out=", o.out);
  weight = register_parameter("weight", randn({o.out, o.in}, gen, DType::f32, 0, o.init_std));
}

double BitLinear::beta() const { return mean(abs(weight.detach())).item(); }

Tensor BitLinear::ternary() const { return clamp(rounded(weight.detach() / (beta() + kEps)), -1, 1); }

Tensor BitLinear::forward(const Tensor& x) const {
  TZ_CHECK(x.dim() >= 1 && x.size(-1) == options.in, "BitLinear: expected input [..., ", options.in, "], got ",
           x.shape());
  Tensor u = rms_norm(x, Tensor(), kRmsEps);
  if (!options.quantize) return linear(u, weight);
  Quantised a = quantise_activations(u);
  Tensor u_q = u + (a.q * a.gamma / kQb - u).detach();           // STE: forward u~, backward identity
  Tensor w_q = weight + (ternary() * beta() - weight).detach();  // STE: forward W~, backward identity
  return linear(u_q, w_q);
}

Tensor BitLinear::forward_addsub(const Tensor& x) const {
  TZ_CHECK(options.quantize, describe(), ": forward_addsub needs the quantised layer");
  NoGradGuard no_grad;
  const int64_t K = options.in, N = options.out, M = x.numel() / K;
  Quantised a = quantise_activations(rms_norm(x, Tensor(), kRmsEps));
  std::vector<double> qd = a.q.to_vector<double>(), td = ternary().to_vector<double>();
  std::vector<int64_t> q(qd.begin(), qd.end());
  std::vector<int8_t> t(td.size());
  for (size_t i = 0; i < td.size(); ++i) t[i] = int8_t(td[i]);
  std::vector<int64_t> yi = ternary_product_addsub(q, t, M, K, N);
  std::vector<double> y(yi.begin(), yi.end());
  Shape shape = x.shape();
  shape.back() = N;
  Tensor scale = a.gamma.reshape({M, 1}) * (beta() / kQb);  // the one multiply per output, not per product
  return (from_vector(y, {M, N}).to(x.dtype()) * scale).reshape(shape);
}

std::string BitLinear::describe() const {
  return "BitLinear(" + std::to_string(options.in) + " -> " + std::to_string(options.out) +
         (options.quantize ? ", ternary)" : ", full precision)");
}

namespace {
std::shared_ptr<BitLinear> bit(int64_t in, int64_t out, bool quantize, Generator& gen) {
  return std::make_shared<BitLinear>(
      BitLinearOptions{.in = in, .out = out, .quantize = quantize, .init_std = 1 / std::sqrt(double(in))}, gen);
}
}  // namespace

Mlgru::Mlgru(const MlgruOptions& o, Generator& gen) : options(o) {
  f_proj = register_module("f_proj", bit(o.dim, o.dim, o.quantize, gen));
  c_proj = register_module("c_proj", bit(o.dim, o.dim, o.quantize, gen));
  g_proj = register_module("g_proj", bit(o.dim, o.dim, o.quantize, gen));
  out_proj = register_module("out_proj", bit(o.dim, o.dim, o.quantize, gen));
}

Mlgru::ScanInputs Mlgru::scan_inputs(const Tensor& x) const {
  const double lb = options.lower_bound;
  Tensor f = sigmoid(f_proj->forward(x)) * (1 - lb) + lb;  // >= gamma_l
  return {f, (1.0 - f) * silu(c_proj->forward(x))};
}

Tensor Mlgru::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": a recurrence has no keys to mask and takes no segment memory");
  MlgruState* s = state ? &own_state<MlgruState>(state, ctx) : nullptr;
  ScanInputs in = scan_inputs(x);
  Tensor h = scan(in.a, in.b, s ? s->h : Tensor());  // [B, T, C]
  if (s) {
    s->h = h.select(1, h.size(1) - 1).contiguous();
    s->length += x.size(1);
  }
  return out_proj->forward(sigmoid(g_proj->forward(x)) * h);
}

std::unique_ptr<MixerState> Mlgru::make_state(int64_t batch, int64_t, DType dtype) const {
  auto s = std::make_unique<MlgruState>();
  s->h = zeros({batch, options.dim}, dtype);
  return s;
}

std::string Mlgru::describe() const {
  return "MLGRU(dim " + std::to_string(options.dim) + ", forget gate >= " + std::to_string(options.lower_bound) +
         (options.quantize ? ", ternary)" : ", full precision)");
}

TernaryGlu::TernaryGlu(const TernaryGluOptions& o, Generator& gen) : options(o) {
  gate = register_module("gate", bit(o.dim, o.hidden, o.quantize, gen));
  up = register_module("up", bit(o.dim, o.hidden, o.quantize, gen));
  down = register_module("down", bit(o.hidden, o.dim, o.quantize, gen));
}

Tensor TernaryGlu::forward(const Tensor& x) const { return down->forward(silu(gate->forward(x)) * up->forward(x)); }

std::string TernaryGlu::describe() const {
  return "TernaryGLU(" + std::to_string(options.dim) + " -> " + std::to_string(options.hidden) + ")";
}

}  // namespace tz::nn

namespace tz::zoo {

void register_matmul_free_lm(nn::Registry& r) {
  r.add({.id = "matmul_free_lm",
         .summary = "MatMul-free LM: MLGRU on the scan, every projection a ternary BitLinear (add/sub only)",
         .keys = {nn::kBitQuantize},
         .test_config = R"({"mixer": "matmul_free_lm", "ffn": "ternary_glu", "norm": "rmsnorm", "dim": 32,
                            "bitlinear_quantize": false})",
         .example = R"({"dim": 256, "mixer": "matmul_free_lm", "ffn": "ternary_glu", "norm": "rmsnorm"})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               TZ_CHECK(d.causal, c.source(), ": matmul_free_lm's MLGRU is causal; it has no bidirectional form");
               return std::make_shared<nn::Mlgru>(nn::MlgruOptions{.dim = d.dim, .quantize = c.get(nn::kBitQuantize)},
                                                  gen);
             },
         .learn_steps = 3000,
         .learn_reason = "the copied tokens must pass through a real elementwise state: copy 0.18 after 400 "
                         "steps, 0.85 after 1500, 1.00 after 3000 (dim 32)"});
}

void register_ternary_glu(nn::Registry& r) {
  r.add({.id = "ternary_glu",
         .family = "ffn",
         .kind = "ffn",
         .paper = "arXiv:2406.02528",
         .summary = "MatMul-free LM's channel mixer: a SiLU GLU of ternary BitLinear layers, hidden 2/3 of the MLP's",
         .keys = {nn::kBitQuantize, nn::kFfnMult},
         .test_config = R"({"ffn": "ternary_glu", "bitlinear_quantize": false})",
         .example = R"({"ffn": "ternary_glu"})",
         .extra = true,
         .ffn = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           const int64_t hidden = 2 * c.get(nn::kFfnMult) * d.dim / 3;
           TZ_CHECK(hidden > 0, c.source(), ": ffn_mult ", c.get(nn::kFfnMult), " x dim ", d.dim,
                    " gives no hidden units");
           return std::make_shared<nn::TernaryGlu>(
               nn::TernaryGluOptions{.dim = d.dim, .hidden = hidden, .quantize = c.get(nn::kBitQuantize)}, gen);
         }});
}

}  // namespace tz::zoo
