// The gated residual of GTrXL (Parisotto et al. 2020, "Stabilizing Transformers for
// Reinforcement Learning", arXiv:1910.06764): the norm moves onto the branch input, a ReLU
// onto its output, and a GRU-type gate replaces the sum:
//   x ← g(x, relu(f(norm(x))))
// g(x, y), x the stream and y the branch (eq. 9 of the paper), all maps C → C without bias:
//   r = σ(W_r y + U_r x),  z = σ(W_z y + U_z x − b_g),  ĥ = tanh(W_g y + U_g (r ⊙ x))
//   g = (1 − z) ⊙ x + z ⊙ ĥ
// A large b_g keeps z near 0, so every block starts close to the identity. The gate is
// registered on the block as gate<tag> (gate1, gate2).
#pragma once

#include <memory>

#include "nn/layers.h"
#include "nn/residual/residual.h"

namespace tz::nn {

inline const Key<double> kGtrxlBias{"gtrxl_bias", 2.0, "b_g of the GTrXL gate (large = identity at init)"};

class GRUGate : public Module {
 public:
  GRUGate(int64_t dim, double bg, Generator& gen);
  Tensor forward(const Tensor& x, const Tensor& y) const;
  Tensor update_gate(const Tensor& x, const Tensor& y) const;  // z, for the proof
  std::string describe() const override;
  std::shared_ptr<Linear> wr, ur, wz, uz, wg, ug;
  double bg;
};

}  // namespace tz::nn
