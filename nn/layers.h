// The basic layers: Linear, Embedding, LayerNorm, RMSNorm and Dropout (the activations are
// in nn/ffn/activations.h). Initialisation follows GPT-2: weights ~ N(0, 0.02), biases 0,
// norm gains 1.
#pragma once

#include <string>

#include "core/quant.h"
#include "core/random.h"
#include "nn/config.h"
#include "nn/module.h"

namespace tz::nn {

// While one is alive on this thread, Linear and Embedding allocate their weights without
// writing them (the generator still advances as if they were drawn, so every other draw is
// the same): for a model whose parameters are all about to be replaced from a file. Pages
// never written are never resident, so a weight the file holds quantized costs no memory
// at all, and loading skips drawing numbers that would be overwritten.
class SkipWeightInit {
 public:
  SkipWeightInit();
  ~SkipWeightInit();
  SkipWeightInit(const SkipWeightInit&) = delete;
  SkipWeightInit& operator=(const SkipWeightInit&) = delete;
};

struct LinearOptions {
  int64_t in = 0;
  int64_t out = 0;
  bool bias = true;
  double init_std = 0.02;  // N(0, init_std); 0 = zeros
};

// y = x W^T + b, W: [out, in].
class Linear : public Module {
 public:
  Linear(const LinearOptions& options, Generator& gen);
  Tensor forward(const Tensor& x) const;
  std::string describe() const override;
  Tensor weight, bias;  // bias undefined when options.bias is false
  LinearOptions options;

  // For inference from a quantized model file (core/quant.h): W is kept only in its
  // quantized form; `weight` is released and leaves the parameters (and the state dict).
  // No gradient flows through W: forward refuses training mode and inputs that require grad.
  void set_quantized(QuantizedMatrix w);
  const std::shared_ptr<const QuantizedMatrix>& quantized() const { return quantized_; }
  // W itself, for code that reads it other than through forward (a slice of its rows, a
  // probe): an error naming `use` when W is stored quantized.
  const Tensor& f32_weight(const char* use) const;

 private:
  std::shared_ptr<const QuantizedMatrix> quantized_;
};

struct EmbeddingOptions {
  int64_t num = 0;  // rows (vocabulary or positions)
  int64_t dim = 0;
  double init_std = 0.02;
};

class Embedding : public Module {
 public:
  Embedding(const EmbeddingOptions& options, Generator& gen);
  Tensor forward(const Tensor& ids) const;  // i64 [...] → [..., dim]
  std::string describe() const override;
  Tensor weight;
  EmbeddingOptions options;
};

// The epsilon of the two norms as registered (nn/norm/norms.cpp): one key name, one type,
// two defaults, as in their papers' reference code (LayerNorm 1e-5, RMSNorm 1e-6). Kept
// apart rather than unified so that neither norm's numbers change.
inline const Key<double> kLayerNormEps{"norm_eps", 1e-5, "epsilon inside the square root"};
inline const Key<double> kRmsNormEps{"norm_eps", 1e-6, "epsilon inside the square root"};

struct NormOptions {
  int64_t dim = 0;
  double eps = 1e-5;
  bool bias = true;  // LayerNorm only
};

// Ba et al. 2016 (arXiv:1607.06450): (x - mean) / sqrt(var + eps) * g + b over the last dim.
class LayerNorm : public UnaryModule {
 public:
  explicit LayerNorm(const NormOptions& options);
  Tensor forward(const Tensor& x) const override;
  std::string describe() const override;
  Tensor weight, bias;
  NormOptions options;
};

// Zhang & Sennrich 2019 (arXiv:1910.07467): x / sqrt(mean(x^2) + eps) * g.
class RMSNorm : public UnaryModule {
 public:
  explicit RMSNorm(const NormOptions& options);
  Tensor forward(const Tensor& x) const override;
  std::string describe() const override;
  Tensor weight;
  NormOptions options;
};

// Zeroes entries with probability p while training (scaling the rest by 1/(1-p)). Masks
// come from tz::default_generator(), whose state a training checkpoint saves, so a resumed
// run draws the same masks.
class Dropout : public UnaryModule {
 public:
  explicit Dropout(double p);
  Tensor forward(const Tensor& x) const override;
  std::string describe() const override;
  double p;
};

}  // namespace tz::nn
