// The basic layers; see layers.h.
#include "nn/layers.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/low_rank.h"

namespace tz::nn {

namespace {
thread_local int t_skip_weight_init = 0;
thread_local int64_t t_linear_rank = 0;  // > 0 while a LowRankLinears is alive

// N(0, std) (zeros for std 0); under SkipWeightInit allocated but never written, the
// generator advanced as randn would, so every later draw is the same.
Tensor init_normal(const Shape& shape, double std, Generator& gen) {
  if (t_skip_weight_init > 0) {
    if (std != 0) gen.advance(uint64_t(shape_numel(shape)));
    return empty(shape);
  }
  return std == 0 ? zeros(shape) : randn(shape, gen, DType::f32, 0.0, std);
}
}  // namespace

SkipWeightInit::SkipWeightInit() { ++t_skip_weight_init; }
SkipWeightInit::~SkipWeightInit() { --t_skip_weight_init; }

LowRankLinears::LowRankLinears(int64_t rank) : previous_(t_linear_rank) {
  TZ_CHECK(rank >= 0, "LowRankLinears: the rank must be ≥ 0 (0: dense), got ", rank);
  t_linear_rank = rank;
}
LowRankLinears::~LowRankLinears() { t_linear_rank = previous_; }

int64_t linear_rank(const Linear& lin) {
  return lin.weight.defined() || lin.quantized() ? 0 : lin.named_parameters().front().second.size(0);
}

Linear::Linear(const LinearOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.in > 0 && o.out > 0, "Linear: in and out must be positive, got in=", o.in, " out=", o.out);
  if (const int64_t r = t_linear_rank; r > 0) {  // W = V U (nn/low_rank.h): weight_u, weight_v, no weight
    const double s = std::sqrt(o.init_std / std::sqrt(double(r)));
    register_parameter("weight_u", init_normal({r, o.in}, o.init_std == 0 ? 0.02 : s, gen));
    register_parameter("weight_v", init_normal({o.out, r}, s, gen));
  } else {
    weight = register_parameter("weight", init_normal({o.out, o.in}, o.init_std, gen));
  }
  if (o.bias) bias = register_parameter("bias", zeros({o.out}));
}

Tensor Linear::forward(const Tensor& x) const {
  TZ_CHECK(x.dim() >= 1 && x.size(-1) == options.in, "Linear: expected input [..., ", options.in, "], got ", x.shape());
  if (!weight.defined() && !quantized_) {  // factored: [weight_u, weight_v, bias]
    const NamedTensors p = named_parameters();
    return linear(linear(x, p[0].second, Tensor()), p[1].second, bias);
  }
  if (!quantized_) return linear(x, weight, bias);
  TZ_CHECK(!is_training(), describe(),
           ": weights stored quantized are for inference only; call eval(), or train from the f32 checkpoint");
  TZ_CHECK(!grad_enabled() || !x.requires_grad(), describe(),
           ": no gradient flows through weights stored quantized; run under NoGradGuard, or train from the f32 "
           "checkpoint");
  return quantized_linear(x.detach(), *quantized_, bias.defined() ? bias.detach() : Tensor());
}

void Linear::set_quantized(QuantizedMatrix w) {
  TZ_CHECK(w.rows() == options.out && w.cols() == options.in, describe(), ": quantized weight is [", w.rows(), ", ",
           w.cols(), "], expected [", options.out, ", ", options.in, "]");
  TZ_CHECK(weight.defined() || quantized_, describe(), ": a factored W = V U cannot be stored quantized");
  if (!quantized_) remove_parameter("weight");
  weight = Tensor();
  quantized_ = std::make_shared<const QuantizedMatrix>(std::move(w));
}

const Tensor& Linear::f32_weight(const char* use) const {
  TZ_CHECK(weight.defined() || quantized_, use, " reads the weight of ", describe(),
           " directly, but it is factored as V U (linear_rank): use a dense model");
  TZ_CHECK(!quantized_, use, " reads the weight of ", describe(),
           " directly, which a quantized model file does not keep in f32: use the f32 checkpoint");
  return weight;
}

std::string Linear::describe() const {
  const int64_t r = linear_rank(*this);
  return cat_str("Linear(", options.in, " -> ", options.out, options.bias ? ", bias" : "",
                 r ? cat_str(", rank ", r) : "",
                 quantized_ ? cat_str(", ", quant_scheme_name(quantized_->scheme())) : "", ")");
}

Embedding::Embedding(const EmbeddingOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.num > 0 && o.dim > 0, "Embedding: num and dim must be positive, got num=", o.num, " dim=", o.dim);
  weight = register_parameter("weight", init_normal({o.num, o.dim}, o.init_std, gen));
}

Tensor Embedding::forward(const Tensor& ids) const { return embedding(weight, ids); }

std::string Embedding::describe() const { return cat_str("Embedding(", options.num, ", ", options.dim, ")"); }

LayerNorm::LayerNorm(const NormOptions& o) : options(o) {
  TZ_CHECK(o.dim > 0 && o.eps > 0, "LayerNorm: dim and eps must be positive");
  weight = register_parameter("weight", ones({o.dim}));
  if (o.bias) bias = register_parameter("bias", zeros({o.dim}));
}

Tensor LayerNorm::forward(const Tensor& x) const {
  TZ_CHECK(x.dim() >= 1 && x.size(-1) == options.dim, "LayerNorm: expected input [..., ", options.dim, "], got ",
           x.shape());
  return layer_norm(x, weight, bias, options.eps);
}

std::string LayerNorm::describe() const {
  return cat_str("LayerNorm(", options.dim, ", eps=", options.eps, options.bias ? "" : ", no bias", ")");
}

RMSNorm::RMSNorm(const NormOptions& o) : options(o) {
  TZ_CHECK(o.dim > 0 && o.eps > 0, "RMSNorm: dim and eps must be positive");
  weight = register_parameter("weight", ones({o.dim}));
}

Tensor RMSNorm::forward(const Tensor& x) const {
  TZ_CHECK(x.dim() >= 1 && x.size(-1) == options.dim, "RMSNorm: expected input [..., ", options.dim, "], got ",
           x.shape());
  return rms_norm(x, weight, options.eps);
}

std::string RMSNorm::describe() const { return cat_str("RMSNorm(", options.dim, ", eps=", options.eps, ")"); }

Dropout::Dropout(double p_) : p(p_) { TZ_CHECK(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got ", p); }

Tensor Dropout::forward(const Tensor& x) const {
  if (!is_training() || p == 0) return x;
  return dropout(x, p, true, default_generator());
}

std::string Dropout::describe() const { return cat_str("Dropout(p=", p, ")"); }

}  // namespace tz::nn
