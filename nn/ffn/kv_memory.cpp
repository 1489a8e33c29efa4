// The FFN key-value memory probe (Geva et al. 2021, arXiv:2012.14913); see kv_memory.h.
#include "nn/ffn/kv_memory.h"

#include <algorithm>
#include <numeric>

#include "autograd/ops.h"
#include "nn/registry.h"

namespace tz::nn {

Tensor memory_keys(const MLP& mlp) {
  TZ_CHECK(!mlp.options.gated, "memory_keys: a gated FFN has no single key matrix (its keys are act(x W) ⊙ x V)");
  return mlp.fc->f32_weight("memory_keys");  // [F, C]
}
Tensor memory_values(const MLP& mlp) { return mlp.proj->f32_weight("memory_values").t(); }  // [F, C]

Tensor key_contributions(const MLP& mlp, const Tensor& x) {
  TZ_CHECK(x.dim() == 2 && x.size(1) == mlp.options.dim, "key_contributions: expected x [N, ", mlp.options.dim,
           "], got ", x.shape());
  Tensor m = mlp.key_coefficients(x);                        // [N, F]
  return m.unsqueeze(-1) * memory_values(mlp).unsqueeze(0);  // [N, F, 1] * [1, F, C] → [N, F, C]
}

Tensor value_vocab_projection(const MLP& mlp, const Tensor& E) {
  TZ_CHECK(E.dim() == 2 && E.size(1) == mlp.options.dim, "value_vocab_projection: expected E [V, ", mlp.options.dim,
           "], got ", E.shape());
  return matmul(memory_values(mlp), E.t());  // v_i E^T for every i: [F, V]
}

KeyRecorder::KeyRecorder(MLP& mlp) : mlp_(mlp), previous_(mlp.on_keys) {
  mlp_.on_keys = [this](const Tensor& m) {
    chunks_.push_back(m.reshape({-1, m.size(-1)}).to(DType::f64).contiguous());
    if (previous_) previous_(m);
  };
}

KeyRecorder::~KeyRecorder() { mlp_.on_keys = previous_; }

int64_t KeyRecorder::positions() const {
  int64_t n = 0;
  for (auto& c : chunks_) n += c.size(0);
  return n;
}

Tensor KeyRecorder::coefficients() const {
  TZ_CHECK(!chunks_.empty(), "KeyRecorder: nothing recorded (did a forward run through this FFN?)");
  return cat(chunks_, 0);
}

std::vector<std::vector<KeyHit>> top_activations(const Tensor& coefficients, const std::vector<int64_t>& keys,
                                                 int64_t n) {
  TZ_CHECK(coefficients.dim() == 2, "top_activations: expected coefficients [N, F], got ", coefficients.shape());
  const int64_t N = coefficients.size(0), F = coefficients.size(1);
  std::vector<double> m = coefficients.to_vector<double>();
  std::vector<std::vector<KeyHit>> out;
  for (int64_t key : keys) {
    TZ_CHECK(key >= 0 && key < F, "top_activations: key ", key, " out of range [0, ", F, ")");
    std::vector<int64_t> order(static_cast<size_t>(N));
    std::iota(order.begin(), order.end(), 0);
    int64_t keep = std::min(n, N);
    std::partial_sort(order.begin(), order.begin() + keep, order.end(), [&](int64_t a, int64_t b) {
      double va = m[size_t(a * F + key)], vb = m[size_t(b * F + key)];
      return va > vb || (va == vb && a < b);
    });
    std::vector<KeyHit> hits;
    for (int64_t j = 0; j < keep; ++j) hits.push_back({order[size_t(j)], m[size_t(order[size_t(j)] * F + key)]});
    out.push_back(std::move(hits));
  }
  return out;
}

std::vector<int64_t> strongest_keys(const Tensor& coefficients, int64_t k) {
  TZ_CHECK(coefficients.dim() == 2, "strongest_keys: expected coefficients [N, F], got ", coefficients.shape());
  return top_ids(max(coefficients.to(DType::f64), 0), k);
}

std::vector<int64_t> top_ids(const Tensor& row, int64_t n) {
  std::vector<double> v = row.to_vector<double>();
  std::vector<int64_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  int64_t keep = std::min<int64_t>(n, int64_t(v.size()));
  std::partial_sort(order.begin(), order.begin() + keep, order.end(), [&](int64_t a, int64_t b) {
    return v[size_t(a)] > v[size_t(b)] || (v[size_t(a)] == v[size_t(b)] && a < b);
  });
  order.resize(size_t(keep));
  return order;
}

}  // namespace tz::nn

namespace tz::zoo {

void register_ffn_kv_memory_probe(nn::Registry& r) {
  r.add({.id = "ffn_kv_memory_probe",
         .summary = "Analysis of ffn_mlp as key-value memories: per-key coefficients, top-activating prefixes, "
                    "value -> vocabulary projections (`tensorzoo probe --run DIR`)",
         .test_config = R"({"ffn": "ffn_mlp", "activation": "relu"})",
         // The paper's setting (ReLU keys); then run `tensorzoo probe --run DIR`.
         .example = R"({"ffn": "ffn_mlp", "activation": "relu"})"});
}

}  // namespace tz::zoo
