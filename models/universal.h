// The Universal Transformer (Dehghani et al. 2019, arXiv:1807.03819): one shared block applied
// T = recurrence_steps times (0 = depth), with the position signal added before every
// application instead of once at the input:
//   H^t = block(H^{t-1} + P^t),   P^t = pos.embed + 0.02 · sinusoid(t)      t = 1..T
// Deviation: the step sinusoid is scaled to the embeddings' 0.02 init (the paper scales the
// embeddings up by sqrt(C) instead; unit-amplitude sinusoids would drown the tokens).
// ACT (models/act.h) halts each position early over the same applications.
#pragma once

#include <vector>

#include "nn/config.h"
#include "nn/mixer.h"

namespace tz::models {

inline const nn::Key<bool> kShareLayers{"share_layers", false,
                                        "Universal Transformer: one block applied recurrence_steps times"};
inline const nn::Key<int64_t> kRecurrenceSteps{"recurrence_steps", 0, "applications of the shared block (0 = depth)"};

struct Recurrence {
  bool shared = false;  // one block, applied `steps` times, with P^t before each
  int64_t steps = 0;    // applications (depth when not shared)
};

// Reads share_layers and recurrence_steps; `act` implies the shared block.
Recurrence read_recurrence(const nn::Config& config, int64_t depth, bool act);

// P^t for positions start..start+T-1 and step t: [T, C].
Tensor step_signal(const nn::PositionScheme& pos, int64_t start, int64_t T, int64_t t, int64_t dim, DType dtype);

std::vector<nn::ConfigKey> recurrence_keys();

}  // namespace tz::models
