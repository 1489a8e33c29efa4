// Sampling from a language model with its step form (the KV cache for attention, the
// recurrent state for recurrent mixers): the prompt is fed once, then one token at a time.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/random.h"
#include "models/model.h"

namespace tz::models {

struct SampleOptions {
  int64_t max_new_tokens = 200;
  double temperature = 1.0;  // 0 = greedy (argmax)
  int64_t top_k = 0;         // keep the k most likely tokens; 0 = all
  double top_p = 1.0;        // keep the smallest set with probability >= top_p (nucleus)
  uint64_t seed = 0;
  // Decode with a plan (models/decode_plan.h) when the model is covered: the same tokens,
  // faster. false: always the model's step form (to compare the two).
  bool decode_plan = true;
  void validate() const;
};

// Picks a token from one row of logits [V] under the options (probabilities in f64).
int64_t sample_token(const std::vector<double>& logits, const SampleOptions& options, Generator& gen);

// Generates after `prompt` (non-empty), calling on_token(id) as each token comes; stops early
// when on_token returns false. Returns the new tokens. Past the model's context window,
// decoding continues from the last context/2 tokens. The prompt (and each restart's window)
// goes through the model's batched forward; the tokens after it through a decode plan when
// one covers the model, else through the model's step form, one token at a time.
std::vector<int64_t> generate(Model& model, const std::vector<int64_t>& prompt, const SampleOptions& options,
                              const std::function<bool(int64_t)>& on_token = nullptr);

// How generate() decodes `model` with these options: "decode plan (N threads)", or "step
// form: <why no plan>" (for `tensorzoo sample --verbose` and the benchmark).
std::string decode_path(const Model& model, const SampleOptions& options = {});

}  // namespace tz::models
