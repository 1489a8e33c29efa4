// Weight matrices stored in fewer bytes; see quant.h. The kernels are in core/kernels/quant.h.
#include "core/quant.h"

#include "core/copy.h"
#include "core/kernels/quant.h"

namespace tz {

QuantScheme parse_quant_scheme(std::string_view name) {
  if (name == "q8_0" || name == "int8") return QuantScheme::q8_0;
  if (name == "bf16") return QuantScheme::bf16;
  throw Error(cat_str("quantization scheme '", std::string(name.substr(0, 40)), "' is not one of: q8_0 (int8), bf16"));
}

const char* quant_scheme_name(QuantScheme scheme) { return scheme == QuantScheme::bf16 ? "bf16" : "q8_0"; }

bool QuantizedMatrix::can_quantize(const Tensor& w, QuantScheme scheme) {
  return w.defined() && w.dim() == 2 && w.dtype() == DType::f32 &&
         (scheme == QuantScheme::bf16 || w.size(1) % kernels::kQ8Block == 0);
}

QuantizedMatrix QuantizedMatrix::quantize(const Tensor& w, QuantScheme scheme) {
  TZ_CHECK(w.defined() && w.dim() == 2 && w.dtype() == DType::f32, "quantize: expected an f32 matrix [N, K], got ",
           w.defined() ? cat_str(dtype_name(w.dtype()), " ", w.shape()) : std::string("an undefined tensor"));
  TZ_CHECK(can_quantize(w, scheme), "quantize: ", quant_scheme_name(scheme), " needs K (", w.size(1),
           ") to be a multiple of its block of ", kernels::kQ8Block);
  const Tensor c = core::contiguous(w);
  QuantizedMatrix m;
  m.scheme_ = scheme;
  m.N_ = w.size(0);
  m.K_ = w.size(1);
  if (scheme == QuantScheme::q8_0) {
    m.data_.resize(size_t(m.N_ * m.K_));
    m.scales_ = empty({m.N_, m.K_ / kernels::kQ8Block});
    kernels::quantize_q8_0(reinterpret_cast<int8_t*>(m.data_.data()), m.scales_.data<float>(), c.data<float>(), m.N_,
                           m.K_);
  } else {
    m.data_.resize(size_t(m.N_ * m.K_) * 2);
    kernels::quantize_bf16(reinterpret_cast<uint16_t*>(m.data_.data()), c.data<float>(), m.N_ * m.K_);
  }
  return m;
}

QuantizedMatrix QuantizedMatrix::from_parts(QuantScheme scheme, int64_t N, int64_t K, std::vector<uint8_t> data,
                                            Tensor scales, const std::string& name) {
  TZ_CHECK(N > 0 && K > 0, name, ": a quantized matrix needs a shape [N, K] with both positive, got [", N, ", ", K,
           "]");
  const size_t need = size_t(N * K) * (scheme == QuantScheme::bf16 ? 2 : 1);
  TZ_CHECK(data.size() == need, name, ": ", quant_scheme_name(scheme), " [", N, ", ", K, "] needs ", need,
           " bytes, got ", data.size());
  QuantizedMatrix m;
  m.scheme_ = scheme;
  m.N_ = N;
  m.K_ = K;
  if (scheme == QuantScheme::q8_0) {
    TZ_CHECK(K % kernels::kQ8Block == 0, name, ": q8_0 needs K (", K, ") to be a multiple of ", kernels::kQ8Block);
    TZ_CHECK(scales.defined() && scales.dtype() == DType::f32 && (scales.shape() == Shape{N, K / kernels::kQ8Block}),
             name, ": q8_0 scales must be f32 [", N, ", ", K / kernels::kQ8Block, "], got ",
             scales.defined() ? cat_str(dtype_name(scales.dtype()), " ", scales.shape()) : std::string("none"));
    m.scales_ = core::contiguous(scales);
  } else {
    TZ_CHECK(!scales.defined(), name, ": bf16 weights have no scales");
  }
  m.data_ = std::move(data);
  return m;
}

size_t QuantizedMatrix::bytes() const {
  return data_.size() + (scales_.defined() ? size_t(scales_.numel()) * sizeof(float) : 0);
}

Tensor QuantizedMatrix::dequantize() const {
  Tensor w = empty({N_, K_});
  if (scheme_ == QuantScheme::q8_0)
    kernels::dequantize_q8_0(w.data<float>(), reinterpret_cast<const int8_t*>(data_.data()), scales_.data<float>(), N_,
                             K_);
  else
    kernels::dequantize_bf16(w.data<float>(), reinterpret_cast<const uint16_t*>(data_.data()), N_ * K_);
  return w;
}

Tensor quantized_linear(const Tensor& x, const QuantizedMatrix& w, const Tensor& bias) {
  const int64_t N = w.rows(), K = w.cols();
  TZ_CHECK(x.defined() && x.dtype() == DType::f32 && x.dim() >= 1 && x.size(-1) == K,
           "quantized linear: expected f32 x [..., ", K, "], got ",
           x.defined() ? cat_str(dtype_name(x.dtype()), " ", x.shape()) : std::string("an undefined tensor"));
  TZ_CHECK((!bias.defined() || (bias.dtype() == DType::f32 && bias.shape() == Shape{N})),
           "quantized linear: bias must be f32 [", N, "], got ", bias.shape());
  const Tensor xc = core::contiguous(x), bc = bias.defined() ? core::contiguous(bias) : Tensor();
  Shape out_shape = x.shape();
  out_shape.back() = N;
  Tensor y = empty(out_shape);
  const int64_t M = xc.numel() / K;
  if (M == 0) return y;
  const kernels::QuantGemvArgs g{
      y.data<float>(), N, xc.data<float>(), K, M, N, K, bc.defined() ? bc.data<float>() : nullptr};
  if (w.scheme() == QuantScheme::q8_0)
    kernels::gemv_q8_0(g, reinterpret_cast<const int8_t*>(w.data().data()), w.scales().data<float>());
  else
    kernels::gemv_bf16(g, reinterpret_cast<const uint16_t*>(w.data().data()));
  return y;
}

}  // namespace tz
