// Forgetful Causal Masking (Liu et al. 2022, "FCM: Forgetful Causal Masking Makes Causal
// Language Models Better Zero-Shot Learners", arXiv:2210.13432): in training only, for each
// sequence draw r ~ U[0, η] and hide floor(r T) random positions j from every later query
// i > j (the query at j still sees itself). Inference is unchanged.
// The model draws the forgotten keys per batch and hands them to attention as data,
// MixerContext::forgotten_keys [B, T] i64 (1 = forgotten).
#pragma once

#include "core/random.h"
#include "core/tensor.h"
#include "nn/config.h"

namespace tz::models {

inline const nn::Key<double> kFcmMaxRatio{
    "fcm_max_ratio", 0.0, "Forgetful Causal Masking η: hide up to η·T random past positions (training)"};

// Reads fcm_max_ratio (checked to be in [0, 1]).
double read_fcm_ratio(const nn::Config& config);

// The forgotten keys of one training batch of B sequences of T positions: [B, T] i64,
// 1 = hidden from every later query. Undefined when no key is hidden from any query (no
// position j < T - 1 drawn), so plain causal attention runs.
Tensor draw_forgotten_keys(int64_t B, int64_t T, double ratio, Generator& gen);

}  // namespace tz::models
