// The position-wise feed-forward network (Vaswani et al. 2017): y = act(x W1 + b1) W2 + b2,
// hidden width = mult * dim. Registered as `ffn_mlp`.
#pragma once

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
  MLPOptions options;
  std::shared_ptr<Linear> fc, proj;
  std::shared_ptr<Dropout> drop;
};

}  // namespace tz::nn
