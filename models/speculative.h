// Speculative decoding with greedy acceptance, as MambaByte uses it ("MambaByte: Token-free
// Selective State Space Model", Wang et al. 2024, arXiv:2401.13660; the scheme of Leviathan
// et al. 2023, "Fast Inference from Transformers via Speculative Decoding", arXiv:2211.17192).
//
// A small draft model proposes k tokens d_1..d_k one by one. The verifier reads the pending
// token x and d_1..d_k in ONE forward that continues its decoding state (a prefill of k + 1
// tokens), giving its greedy choices g_1..g_{k+1}; it accepts the longest prefix with
// d_i = g_i (n of them) and takes g_{n+1} as the next pending token, so every verifier call
// yields n + 1 tokens and the output is exactly the verifier's own greedy decoding.
// Rollback: a recurrent state cannot drop positions, so before verifying the verifier's
// state is saved; when some proposal is rejected it is restored and x, d_1..d_n are read
// again (one more forward). The draft is rolled back the same way.
#pragma once

#include <cstdint>
#include <vector>

#include "models/model.h"

namespace tz::models {

struct SpeculativeOptions {
  int64_t max_new_tokens = 64;
  int64_t draft_tokens = 4;  // k
};

struct SpeculativeResult {
  std::vector<int64_t> tokens;  // the new tokens
  int64_t verify_calls = 0;     // forwards that verify proposals (the prompt's prefill included)
  int64_t rollback_calls = 0;   // forwards that re-read accepted tokens after a rejection
  int64_t draft_calls = 0;      // forwards of the draft model
  int64_t proposed = 0, accepted = 0;
  double acceptance_rate() const { return proposed ? double(accepted) / double(proposed) : 0; }
  // New tokens per forward of the verifier (rollbacks counted).
  double tokens_per_verifier_call() const { return double(tokens.size()) / double(verify_calls + rollback_calls); }
};

// Greedy decoding of `verifier` after `prompt`, accelerated by `draft` (same vocabulary).
SpeculativeResult speculative_greedy(Model& verifier, Model& draft, const std::vector<int64_t>& prompt,
                                     const SpeculativeOptions& options);

// The reference: greedy decoding of `model`, one forward per token after the prompt's prefill.
std::vector<int64_t> greedy_decode(Model& model, const std::vector<int64_t>& prompt, int64_t max_new_tokens);

}  // namespace tz::models
