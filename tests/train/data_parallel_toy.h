// A small model for the data-parallel tests (train/distributed.h): parameters of two dtypes,
// one used twice, one only in odd shards, one in none; and the reference a rank computes
// alone: every shard's gradient folded in shard order, as the deterministic mode does.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"

namespace tz::testing {

struct Toy {
  std::vector<std::pair<std::string, Tensor>> params;
  Tensor x;  // the whole batch [B, 6]: every rank draws the same
  Toy() {
    Generator gen(3);
    auto add = [&](const char* name, Shape shape, DType dt = DType::f32) {
      params.emplace_back(name, (randn(shape, gen, dt) * 0.5).requires_grad_());
    };
    add("w1", {6, 40});
    add("w2", {40, 40});
    add("w3", {40, 1});
    add("tied", {40});              // used twice in every shard
    add("odd", {40});               // only in odd shards
    add("unused", {5});             // in no shard
    add("scale", {1}, DType::f64);  // another dtype: a bucket of its own
    x = randn({16, 6}, gen);
  }
  Tensor p(size_t i) const { return params[i].second; }
  // Shard k of K: the mean loss over its rows.
  Tensor loss(int64_t k, int64_t K) const {
    const int64_t rows = x.size(0) / K;
    Tensor h = tanh(matmul(x.narrow(0, k * rows, rows), p(0)));
    h = tanh(matmul(h, p(1)) + p(3)) * p(3);
    if (k % 2 == 1) h = h + p(4);
    Tensor y = matmul(h, p(2));
    return mean(y * y) * sum(cast(p(6), DType::f32));
  }
};

// The reference: every shard's gradient on this rank, folded in shard order as the
// deterministic mode does: (g_0 + g_1 + ... + g_{K-1}) * (1 / K); no gradient counts as 0.
inline std::vector<Tensor> reference(const Toy& toy, int64_t K, double& loss) {
  std::vector<Tensor> acc(toy.params.size());
  loss = 0;
  for (int64_t k = 0; k < K; ++k) {
    for (auto& [n, p] : toy.params) p.zero_grad();
    Tensor l = toy.loss(k, K);
    loss += l.item();
    l.backward();
    for (size_t i = 0; i < acc.size(); ++i) {
      Tensor g = toy.p(i).grad().defined() ? toy.p(i).grad() : zeros_like(toy.p(i));
      acc[i] = k == 0 ? g.clone() : acc[i] + g;
    }
  }
  loss /= double(K);
  for (Tensor& a : acc) a = K > 1 ? a * (1.0 / double(K)) : a;
  return acc;
}

}  // namespace tz::testing
