// GLU Variants Improve Transformer (Shazeer 2020), arXiv:2002.05202.
//
// A gated feed-forward network. Shape letters: B batch, T time, C model width, F hidden width.
//   gate  = act(x W)        x [B, T, C], W [C, F]
//   value = x V             V [C, F]
//   y     = (gate ⊙ value) W2     W2 [F, C] → y [B, T, C]
// with act chosen by `ffn_glu`:
//   glu      σ (sigmoid)   (Dauphin et al. 2016)
//   bilinear identity
//   reglu    ReLU
//   geglu    GELU (erf)
//   swiglu   Swish_1 = SiLU
// Three weight matrices instead of two, so the paper shrinks the hidden width to 2/3 of the
// ReLU FFN's to keep the parameter count and the FLOPs: F = floor(2 * ffn_mult * C / 3).
//
// Deviation: the paper omits all biases; here they follow the model's `bias` key like
// ffn_mlp (with biases on, the GLU FFN has 2F + C biases against d_ff + C for the MLP).
#pragma once

#include "nn/layers.h"

namespace tz::nn {

enum class GLUGate { glu, bilinear, reglu, geglu, swiglu };
GLUGate parse_glu_gate(const std::string& name);  // throws naming the key and the valid names
const char* glu_gate_name(GLUGate g);

struct GLUOptions {
  int64_t dim = 0;     // C
  int64_t hidden = 0;  // F (required)
  GLUGate gate = GLUGate::swiglu;
  bool bias = true;
  double dropout = 0.0;
  double out_init_std = 0.02;
};

class GLUFFN : public UnaryModule {
 public:
  GLUFFN(const GLUOptions& options, Generator& gen);
  Tensor forward(const Tensor& x) const override;
  std::string describe() const override;
  // act(x W): the gate, before it multiplies the value branch.
  Tensor gate_of(const Tensor& x) const;
  GLUOptions options;
  std::shared_ptr<Linear> gate, up, proj;  // W, V, W2
  std::shared_ptr<Dropout> drop;
};

}  // namespace tz::nn
