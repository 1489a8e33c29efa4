// The basic layers; see layers.h.
#include "nn/layers.h"

#include "autograd/ops.h"
#include "core/creation.h"

namespace tz::nn {

namespace {
thread_local int t_skip_weight_init = 0;

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

Linear::Linear(const LinearOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.in > 0 && o.out > 0, "Linear: in and out must be positive, got in=", o.in, " out=", o.out);
  weight = register_parameter("weight", init_normal({o.out, o.in}, o.init_std, gen));
  if (o.bias) bias = register_parameter("bias", zeros({o.out}));
}

Tensor Linear::forward(const Tensor& x) const {
  TZ_CHECK(x.dim() >= 1 && x.size(-1) == options.in, "Linear: expected input [..., ", options.in, "], got ", x.shape());
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
  if (!quantized_) remove_parameter("weight");
  weight = Tensor();
  quantized_ = std::make_shared<const QuantizedMatrix>(std::move(w));
}

const Tensor& Linear::f32_weight(const char* use) const {
  TZ_CHECK(!quantized_, use, " reads the weight of ", describe(),
           " directly, which a quantized model file does not keep in f32: use the f32 checkpoint");
  return weight;
}

std::string Linear::describe() const {
  return cat_str("Linear(", options.in, " -> ", options.out, options.bias ? ", bias" : "",
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
