// The feed-forward network of every FFN id, plain or gated. Shape letters: C model width,
// F hidden width; x [..., C].
//   plain (Vaswani et al. 2017, arXiv:1706.03762):  y = act(x W1 + b1) W2 + b2     W1 [C, F], W2 [F, C]
//   gated (Shazeer 2020, arXiv:2002.05202):          y = (act(x W) ⊙ x V) W2       W, V [C, F]
// with act any entry of the activation registry (activations.h). Parameter names: plain
// fc, proj; gated gate, up, proj; plus prelu_a [1] when act is prelu.
//
// Read as a key-value memory (Geva et al. 2021, arXiv:2012.14913; see kv_memory.h): row i of
// fc.weight [F, C] is a key k_i, column i of proj.weight [C, F] a value v_i, and
//   y = sum_i m_i v_i + b2,   m_i = act(x . k_i + b1_i)   (the memory coefficients);
// gated, m = act(x W) ⊙ x V. `on_keys`, when set, sees m [..., F] of every forward.
#pragma once

#include <functional>

#include "nn/config.h"
#include "nn/ffn/activations.h"
#include "nn/layers.h"

namespace tz::nn {

struct ModelDims;

// Shared by the FFN ids (ffn_mlp, activation_survey, glu_variants).
inline const Key<int64_t> kFfnMult{"ffn_mult", 4,
                                   "hidden width as a multiple of dim (glu_variants: 2/3 of it, floored)"};
inline const Key<std::string> kActivation{"activation", "gelu",
                                          "ffn_mlp's activation, one of nn/ffn/activations.h: " + activation_names()};

struct MLPOptions {
  int64_t dim = 0;                  // C
  int64_t hidden = 0;               // F; 0 = 4 * dim
  std::string activation = "gelu";  // a registry name (activations.h)
  bool gated = false;               // (act(x W) ⊙ x V) W2 instead of act(x W1) W2
  double swish_beta = 1.0;          // read by swish only
  bool bias = true;
  double dropout = 0.0;
  double out_init_std = 0.02;  // of W2
};

// The options the FFN ids share: dim, bias and dropout of the model, hidden = ffn_mult * dim
// (ffn_mult checked), W2 initialised with GPT-2's 0.02 / sqrt(2 depth).
MLPOptions ffn_options(const ModelDims& d, const Config& c);

class MLP : public UnaryModule {
 public:
  MLP(const MLPOptions& options, Generator& gen);
  Tensor forward(const Tensor& x) const override;
  std::string describe() const override;
  // m [..., F]: act(x W1 + b1), or act(x W) ⊙ x V when gated: how strongly each key fires.
  Tensor key_coefficients(const Tensor& x) const;
  std::function<void(const Tensor& coefficients)> on_keys;  // analysis hook; empty = off
  MLPOptions options;
  std::shared_ptr<Linear> fc;        // W1 (plain only)
  std::shared_ptr<Linear> gate, up;  // W, V (gated only)
  std::shared_ptr<Linear> proj;      // W2
  std::shared_ptr<Dropout> drop;
  Tensor prelu_a;  // [1], only for prelu (He et al. 2015: init 0.25)

 private:
  const ActivationEntry* act_;
};

}  // namespace tz::nn
