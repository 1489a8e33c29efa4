// GPT (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners") as a typed
// config over the zoo LM: learned positions, pre-LayerNorm blocks of causal multi-head
// attention and a GELU MLP, tied head. Initialisation as GPT-2: N(0, 0.02), residual
// projections N(0, 0.02 / sqrt(2 * depth)). `GPTConfig::to_json()` is the zoo config it
// stands for, so every zoo option can be layered on top of it.
#pragma once

#include <string>

#include "models/keys.h"
#include "models/lm.h"

namespace tz::models {

struct GPTConfig {
  int64_t vocab = kVocab.fallback;
  int64_t dim = kDim.fallback;
  int64_t depth = kDepth.fallback;
  int64_t heads = kHeads.fallback;
  int64_t context = kContext.fallback;  // longest sequence (learned positions)
  int64_t mlp_mult = 4;
  std::string activation = "gelu";
  std::string norm = kNorm.fallback;
  bool bias = kBias.fallback;
  double dropout = kDropout.fallback;
  bool tie_weights = kTieWeights.fallback;

  // The zoo LM config (JSON) with these values.
  std::string to_json() const;
  // The same, parsed.
  nn::Config to_config() const;
};

class GPT : public LM {
 public:
  GPT(const GPTConfig& config, Generator& gen);
  GPTConfig config;
};

}  // namespace tz::models
