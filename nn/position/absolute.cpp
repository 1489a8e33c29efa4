// Learned and sinusoidal absolute positions; see absolute.h.
#include "nn/position/absolute.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

LearnedPositions::LearnedPositions(int64_t max_positions, int64_t dim, Generator& gen) {
  table =
      register_module("table", std::make_shared<Embedding>(EmbeddingOptions{.num = max_positions, .dim = dim}, gen));
}

Tensor LearnedPositions::embed(int64_t start, int64_t T, DType) const {
  TZ_CHECK(start >= 0 && start + T <= table->options.num, "learned_abs_pe: positions ", start, "..", start + T - 1,
           " exceed the ", table->options.num, " learned positions (raise 'context')");
  return table->forward(arange(double(start), double(start + T), 1.0, DType::i64));
}

std::string LearnedPositions::describe() const {
  return cat_str("LearnedPositions(", table->options.num, ", ", table->options.dim, ")");
}

Tensor sinusoidal_table(int64_t start, int64_t T, int64_t dim, double base, DType dtype) {
  Tensor out = empty({T, dim}, DType::f64);
  double* p = out.data<double>();
  for (int64_t i = 0; i < T; ++i) {
    double pos = double(start + i);
    for (int64_t c = 0; c < dim; ++c) {
      // Pairs (2k, 2k+1) share the frequency base^(-2k/dim).
      double freq = std::pow(base, -double(c - c % 2) / double(dim));
      p[i * dim + c] = c % 2 == 0 ? std::sin(pos * freq) : std::cos(pos * freq);
    }
  }
  return dtype == DType::f64 ? out : out.to(dtype);
}

SinusoidalPositions::SinusoidalPositions(int64_t dim_, double base_, double gain_) : dim(dim_), base(base_) {
  TZ_CHECK(dim > 0 && base > 1, "sinusoidal_pe: dim must be positive and base > 1");
  gain = register_parameter("gain", full({1}, gain_));
}

Tensor SinusoidalPositions::embed(int64_t start, int64_t T, DType dtype) const {
  return sinusoidal_table(start, T, dim, base, dtype) * gain;
}

std::string SinusoidalPositions::describe() const { return cat_str("SinusoidalPositions(", dim, ", base=", base, ")"); }

}  // namespace tz::nn

namespace tz::zoo {

void register_learned_abs_pe(nn::Registry& r) {
  r.add({.id = "learned_abs_pe",
         .summary = "Learned absolute positions added to the token embeddings (GPT); bounded by 'context'",
         .test_config = R"({"pos": "learned_abs_pe"})",
         .example = R"({"pos": "learned_abs_pe", "context": 256})",
         .position = [](const nn::ModelDims& d, const nn::Config&, Generator& gen) {
           return std::make_shared<nn::LearnedPositions>(d.context, d.dim, gen);
         }});
}

void register_sinusoidal_pe(nn::Registry& r) {
  r.add({.id = "sinusoidal_pe",
         .summary = "Fixed sinusoids of geometric frequencies added to the embeddings; any length",
         .keys = {nn::kPosBase, nn::kPosGain},
         .test_config = R"({"pos": "sinusoidal_pe"})",
         .example = R"({"pos": "sinusoidal_pe"})",
         .position = [](const nn::ModelDims& d, const nn::Config& c, Generator&) {
           return std::make_shared<nn::SinusoidalPositions>(d.dim, c.get(nn::kPosBase), c.get(nn::kPosGain));
         }});
}

}  // namespace tz::zoo
