// Adaptive Computation Time (Graves 2016, arXiv:1603.08983) over the Universal Transformer's
// shared block (models/universal.h): each position t decides after every application n of
// the block whether to stop, from a halting unit p_t^n = σ(w_h · h_t^n + b_h):
//   N(t) = min{n : Σ_{n'≤n} p_t^{n'} ≥ 1 − ε} (or N_max),  R_t = 1 − Σ_{n<N(t)} p_t^n
//   y_t  = Σ_{n<N(t)} p_t^n h_t^n + R_t h_t^{N(t)}       (the weights sum to 1)
//   ponder cost τ · mean_t (N(t) + R_t), added to the aux losses.
// A position that has halted keeps its state unchanged in later steps (the UT's copy), so
// later positions still attend to it. Deviation: the ponder cost is a mean over positions
// and batch, not a sum, so τ does not depend on the sequence length.
#pragma once

#include <functional>
#include <vector>

#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::models {

inline const nn::Key<bool> kAct{"act", false,
                                "Adaptive Computation Time halting over the shared block (implies share_layers)"};
inline const nn::Key<double> kActThreshold{"act_threshold", 0.01,
                                           "ACT's ε: halt when the summed halting probability reaches 1 − ε"};
inline const nn::Key<double> kPonderCost{"ponder_cost", 0.01, "ACT's τ: weight of the ponder cost mean(N + R)"};

struct ActOptions {
  double eps = 0.01;  // ε
  double tau = 0.01;  // τ
};
// Reads act_threshold and ponder_cost (refused without act).
ActOptions read_act(const nn::Config& config, bool act);

// What the last ACT forward did (detached; for tests and inspection).
struct ActTrace {
  Tensor weight_sum;           // Σ_n weights per position [B, T, 1] (exactly 1)
  Tensor steps;                // N(t) [B, T, 1]
  Tensor remainder;            // R_t [B, T, 1]
  std::vector<Tensor> states;  // h^n after each step n [B, T, C]
  Tensor ponder;               // the ponder cost added to the aux losses (with its graph)
};

// y from h [B, T, C] over N applications `apply(n, h)` with the halting unit `halt` (C → 1);
// adds the ponder cost to *aux when given and records the trace.
Tensor act_forward(Tensor h, size_t N, const std::function<Tensor(size_t, const Tensor&)>& apply,
                   const nn::Linear& halt, const ActOptions& options, nn::AuxLosses* aux, ActTrace& trace);

std::vector<nn::ConfigKey> act_keys();

}  // namespace tz::models
