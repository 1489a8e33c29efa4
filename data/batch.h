// A batch of next-token examples, shared by the text datasets and the synthetic tasks.
//
// Shapes: B = batch size, T = sequence length. inputs[b, t] is the token the model reads at
// position t; targets[b, t] is the token it should predict there (for plain text, the next
// token: targets = inputs shifted left by one). Positions that are not scored hold
// kIgnoreIndex (-100, the ignore index of cross-entropy, as in PyTorch).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace tz::data {

inline constexpr int64_t kIgnoreIndex = -100;

struct Batch {
  Tensor inputs;   // i64 [B, T]
  Tensor targets;  // i64 [B, T]; kIgnoreIndex where not scored
};

}  // namespace tz::data
