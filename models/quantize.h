// Quantized model files: a model's linear layers stored in fewer bytes for inference
// (core/quant.h), written by `tensorzoo quantize` and read by models/weights.h's loaders.
//
// The file is a weights file (format tensorzoo-weights) whose metadata says
// "quantization": "q8_0" or "bf16". Every nn::Linear weight W [N, K] of the model is stored
//   q8_0  <name>.weight        I8  [N, K]       the int8 values
//         <name>.weight_scales F32 [N, K / 32]  one scale per block of 32 along K
//   bf16  <name>.weight        BF16 [N, K]
// and kept in that form in memory (no f32 copy), run by the quantized GEMV kernels. What
// stays f32: embeddings (and so a head tied to them), positions, norms, biases, any other
// parameter, and a Linear whose K is not a multiple of 32 under q8_0 (as llama.cpp keeps
// norms in f32; these are a small part of a model's bytes). Inference only: a model loaded
// from such a file refuses training and gradients (nn::Linear::set_quantized).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/quant.h"
#include "core/safetensors.h"
#include "models/model.h"
#include "nn/layers.h"

namespace tz::models {

constexpr const char* kScalesSuffix = "_scales";

// Every nn::Linear of a module tree with its path ("layers.0.mixer.qkv").
std::vector<std::pair<std::string, nn::Linear*>> linear_layers(nn::Module& root, const std::string& prefix = "");

struct QuantizeSummary {
  int64_t quantized = 0, kept_f32 = 0;  // Linear weights
  size_t quantized_bytes = 0;           // their bytes as stored
  size_t f32_bytes = 0;                 // everything else, in f32
};

// Writes the quantized file of `model` (its config, the byte tokenizer, `extra` metadata).
QuantizeSummary save_quantized(const std::string& path, const Model& model, QuantScheme scheme,
                               const std::map<std::string, std::string>& extra = {});

// Splits a quantized file's raw tensors and scales into quantized matrices by weight name;
// `tensors` loses the scales. Errors name the file and the tensor.
std::map<std::string, QuantizedMatrix> read_quantized(QuantScheme scheme, std::map<std::string, RawTensor>& raw,
                                                      std::map<std::string, Tensor>& tensors, const std::string& path);

// Puts each quantized weight into its Linear (by name), releasing the f32 weight.
void apply_quantized(nn::Module& model, std::map<std::string, QuantizedMatrix>& quantized, const std::string& source);

}  // namespace tz::models
