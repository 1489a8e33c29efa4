// The arena's distillation mode (Options::distill_from): a trained run's LM with softmax
// attention (the teacher) becomes the same LM with a feature-map mixer (the student), as
// Hedgehog ("The Hedgehog & the Porcupine", Zhang et al. 2024, arXiv:2402.04347, sec. 4) and
// DiJiang (arXiv:2403.19928, sec. 4) obtain their models from pretrained transformers:
//
//   1. convert   every student parameter the teacher has under the same name and shape is
//                copied; each attention's fused qkv [3C, C] is split into q_proj, k_proj,
//                v_proj and its out into o_proj. What is left (the feature maps' own
//                parameters: Hedgehog's W, b; DiJiang's weights) keeps its initialisation.
//   2. distill   only those left parameters are trained, everything else frozen, against the
//                attention KL: for each layer, KL(softmax(q k^T / √D) rows || the feature
//                rows of the same q, k), summed over the layers (FeatureAttention::distill).
//   3. fine-tune all parameters on the teacher's text with the LM loss, `steps` steps.
//
// Each stage's validation loss on the teacher's held-out text is reported beside the
// teacher's, with the attention KL before and after stage 2.
//
//   tensorzoo arena --distill-from runs/gpt --models hedgehog,dijiang --distill-steps 200 --steps 200
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "models/lm.h"
#include "train/arena.h"

namespace tz::arena {

struct Conversion {
  int64_t copied = 0;              // tensors copied by name
  int64_t split = 0;               // tensors cut from an attention's qkv or out
  std::vector<std::string> fresh;  // student parameters with no teacher counterpart
};

// Fills `student` from `teacher` (stage 1); throws tz::Error naming the tensor when a shape
// differs or a layer of the teacher has no softmax attention where the student has a
// feature-map mixer.
Conversion convert_attention(models::LM& student, const models::LM& teacher);

// The three stages for every model of `o` (each entry a config overlay on the teacher's).
std::vector<Result> run_distillation(const Options& o, const std::function<void(const std::string&)>& progress);

}  // namespace tz::arena
