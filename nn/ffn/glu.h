// GLU Variants Improve Transformer (Shazeer 2020), arXiv:2002.05202.
//
// A gated feed-forward network. Shape letters: B batch, T time, C model width, F hidden width.
//   gate  = act(x W)        x [B, T, C], W [C, F]
//   value = x V             V [C, F]
//   y     = (gate ⊙ value) W2     W2 [F, C] → y [B, T, C]
// with act chosen by `ffn_glu`, each gate an entry of the activation registry:
//   glu      σ (sigmoid)   (Dauphin et al. 2016)
//   bilinear identity
//   reglu    ReLU
//   geglu    GELU (erf)
//   swiglu   Swish_1 = SiLU
// Three weight matrices instead of two, so the paper shrinks the hidden width to 2/3 of the
// ReLU FFN's to keep the parameter count and the FLOPs: F = floor(2 * ffn_mult * C / 3).
// The layer is the gated form of nn::MLP (mlp.h; parameters gate = W, up = V, proj = W2).
//
// Deviation: the paper omits all biases; here they follow the model's `bias` key like
// ffn_mlp (with biases on, the GLU FFN has 2F + C biases against d_ff + C for the MLP).
#pragma once

#include "nn/ffn/mlp.h"

namespace tz::nn {

inline const Key<std::string> kGluGate{"ffn_glu", "swiglu",
                                       "glu (sigmoid), bilinear (identity), reglu, geglu or swiglu"};

// The activation-registry name of a GLU gate; throws naming `ffn_glu` and the valid gates.
const char* glu_gate_activation(const std::string& gate);

}  // namespace tz::nn
