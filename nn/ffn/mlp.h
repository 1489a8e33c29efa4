// The position-wise feed-forward network (Vaswani et al. 2017): y = act(x W1 + b1) W2 + b2,
// hidden width = mult * dim. Registered as `ffn_mlp`.
//
// Read as a key-value memory (Geva et al. 2021, arXiv:2012.14913; see kv_memory.h): row i of
// fc.weight [F, C] is a key k_i, column i of proj.weight [C, F] a value v_i, and
//   y = sum_i m_i v_i + b2,   m_i = act(x . k_i + b1_i)   (the memory coefficients).
// `on_keys`, when set, sees the coefficients m [..., F] of every forward (the probe's hook).
#pragma once

#include <functional>

#include "nn/layers.h"

namespace tz::nn {

struct MLPOptions {
  int64_t dim = 0;
  int64_t hidden = 0;  // 0 = 4 * dim
  Activation activation = Activation::gelu;
  bool bias = true;
  double dropout = 0.0;
  double out_init_std = 0.02;
};

class MLP : public UnaryModule {
 public:
  MLP(const MLPOptions& options, Generator& gen);
  Tensor forward(const Tensor& x) const override;
  std::string describe() const override;
  // m = act(x W1 + b1) [..., F]: how strongly each key fires.
  Tensor key_coefficients(const Tensor& x) const;
  std::function<void(const Tensor& coefficients)> on_keys;  // analysis hook; empty = off
  MLPOptions options;
  std::shared_ptr<Linear> fc, proj;
  std::shared_ptr<Dropout> drop;
};

}  // namespace tz::nn
