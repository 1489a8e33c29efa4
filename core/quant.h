// A weight matrix stored in fewer bytes for inference (the formats and kernels are in
// core/kernels/quant.h): q8_0 (int8 with an f32 scale per block of 32 along K, 1.125 bytes
// per weight) or bf16 (2 bytes). Only what inference needs: quantize from an f32 [N, K]
// tensor, dequantize back, and y = x W^T + b. No gradient flows through it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace tz {

enum class QuantScheme { q8_0, bf16 };
// "q8_0" or "bf16" ("int8" is accepted for q8_0); anything else is an error naming them.
QuantScheme parse_quant_scheme(std::string_view name);
const char* quant_scheme_name(QuantScheme scheme);

class QuantizedMatrix {
 public:
  QuantizedMatrix() = default;
  // From W [N, K] f32 (q8_0 needs K % 32 == 0: can_quantize says).
  static QuantizedMatrix quantize(const Tensor& w, QuantScheme scheme);
  static bool can_quantize(const Tensor& w, QuantScheme scheme);
  // From stored parts, as a file holds them: q8_0 `data` int8 [N, K] and `scales` f32
  // [N, K / 32]; bf16 `data` the bf16 bits [N, K], no scales. `data` is taken over, not copied.
  static QuantizedMatrix from_parts(QuantScheme scheme, int64_t N, int64_t K, std::vector<uint8_t> data, Tensor scales,
                                    const std::string& name_for_errors);

  QuantScheme scheme() const { return scheme_; }
  int64_t rows() const { return N_; }  // N, the outputs
  int64_t cols() const { return K_; }  // K, the inputs
  const std::vector<uint8_t>& data() const { return data_; }
  const Tensor& scales() const { return scales_; }  // q8_0 only
  size_t bytes() const;                             // resident bytes of data and scales

  Tensor dequantize() const;  // f32 [N, K]

 private:
  QuantScheme scheme_ = QuantScheme::q8_0;
  int64_t N_ = 0, K_ = 0;
  std::vector<uint8_t> data_;
  Tensor scales_;
};

// y [..., N] = x [..., K] W^T + bias, for f32 x of any leading shape. Few rows (decoding)
// run the quantized GEMV; more rows a GEMM over tiles of W dequantized to f32.
Tensor quantized_linear(const Tensor& x, const QuantizedMatrix& w, const Tensor& bias = Tensor());

}  // namespace tz
