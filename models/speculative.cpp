// Speculative decoding with greedy acceptance (see speculative.h).
#include "models/speculative.h"

#include "autograd/ops.h"
#include "core/creation.h"

namespace tz::models {
namespace {

// Feeds ids [1, n] continuing `state`: the greedy choice after each of them.
std::vector<int64_t> greedy_after(Model& m, const std::vector<int64_t>& ids, Model::State& state) {
  Tensor logits = m.step(from_vector(ids, {1, int64_t(ids.size())}), state);  // [1, n, V]
  return argmax(logits.select(0, 0), -1).to_vector<int64_t>();
}

void check_inputs(const Model& m, const std::vector<int64_t>& prompt, int64_t max_new, const char* what) {
  TZ_CHECK(!prompt.empty(), what, ": the prompt is empty");
  TZ_CHECK(max_new >= 1, what, ": max_new_tokens must be >= 1, got ", max_new);
  TZ_CHECK(m.has_step(), what, ": the model decodes only with a step form: ", m.why_no_step());
}

}  // namespace

std::vector<int64_t> greedy_decode(Model& model, const std::vector<int64_t>& prompt, int64_t max_new_tokens) {
  check_inputs(model, prompt, max_new_tokens, "greedy_decode");
  NoGradGuard no_grad;
  Model::State st = model.make_state(1, int64_t(prompt.size()) + max_new_tokens);
  std::vector<int64_t> out{greedy_after(model, prompt, st).back()};
  while (int64_t(out.size()) < max_new_tokens) out.push_back(greedy_after(model, {out.back()}, st).back());
  return out;
}

SpeculativeResult speculative_greedy(Model& verifier, Model& draft, const std::vector<int64_t>& prompt,
                                     const SpeculativeOptions& o) {
  check_inputs(verifier, prompt, o.max_new_tokens, "speculative_greedy (verifier)");
  check_inputs(draft, prompt, o.max_new_tokens, "speculative_greedy (draft)");
  TZ_CHECK(o.draft_tokens >= 1, "speculative_greedy: draft_tokens must be >= 1, got ", o.draft_tokens);
  TZ_CHECK(verifier.vocab() == draft.vocab(), "speculative_greedy: the draft's vocabulary ", draft.vocab(),
           " differs from the verifier's ", verifier.vocab());
  NoGradGuard no_grad;
  const int64_t n = o.max_new_tokens, k = o.draft_tokens;
  const int64_t capacity = int64_t(prompt.size()) + n + k + 1;
  Model::State vs = verifier.make_state(1, capacity), ds = draft.make_state(1, capacity);
  SpeculativeResult r;
  // Both states hold every committed token but the pending one, x.
  int64_t x = greedy_after(verifier, prompt, vs).back();
  ++r.verify_calls;
  greedy_after(draft, prompt, ds);
  ++r.draft_calls;
  while (true) {
    r.tokens.push_back(x);
    if (int64_t(r.tokens.size()) >= n) break;
    // Draft: propose d_1..d_k, reading x, d_1..d_{k-1}.
    const std::map<std::string, Tensor> draft_saved = save_model_state(ds);
    std::vector<int64_t> d;
    for (int64_t prev = x; int64_t(d.size()) < k; prev = d.back()) {
      d.push_back(greedy_after(draft, {prev}, ds).back());
      ++r.draft_calls;
    }
    // Verifier: x, d_1..d_k in one forward; g[i] is its choice after d_i (g[0] after x).
    const std::map<std::string, Tensor> verifier_saved = save_model_state(vs);
    std::vector<int64_t> read{x};
    read.insert(read.end(), d.begin(), d.end());
    std::vector<int64_t> g = greedy_after(verifier, read, vs);
    ++r.verify_calls;
    int64_t acc = 0;
    while (acc < k && d[size_t(acc)] == g[size_t(acc)]) ++acc;
    r.proposed += k;
    r.accepted += acc;
    for (int64_t i = 0; i < acc && int64_t(r.tokens.size()) < n; ++i) r.tokens.push_back(d[size_t(i)]);
    if (int64_t(r.tokens.size()) >= n) break;
    x = g[size_t(acc)];
    // Roll both states back to x, d_1..d_acc read.
    std::vector<int64_t> kept(read.begin(), read.begin() + acc + 1);
    if (acc < k) {
      restore_model_state(vs, verifier_saved);
      greedy_after(verifier, kept, vs);
      ++r.rollback_calls;
      restore_model_state(ds, draft_saved);
      greedy_after(draft, kept, ds);
    } else {
      greedy_after(draft, {d.back()}, ds);  // the draft has not read d_k yet
    }
    ++r.draft_calls;
  }
  return r;
}

}  // namespace tz::models
