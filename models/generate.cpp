#include "models/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/node.h"
#include "core/creation.h"
#include "core/text.h"
#include "models/decode_plan.h"

namespace tz::models {

void SampleOptions::validate() const {
  TZ_CHECK(max_new_tokens >= 0, "sample: max_new_tokens must be >= 0, got ", max_new_tokens);
  TZ_CHECK(temperature >= 0, "sample: temperature must be >= 0, got ", temperature);
  TZ_CHECK(top_k >= 0, "sample: top_k must be >= 0, got ", top_k);
  TZ_CHECK(top_p > 0 && top_p <= 1, "sample: top_p must be in (0, 1], got ", top_p);
}

int64_t sample_token(const std::vector<double>& logits, const SampleOptions& o, Generator& gen) {
  const int64_t V = int64_t(logits.size());
  TZ_CHECK(V > 0, "sample: empty logits");
  if (o.temperature == 0) return int64_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  // Tokens by decreasing logit; top-k and top-p keep a prefix of this order.
  std::vector<int64_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return logits[a] > logits[b]; });
  int64_t keep = o.top_k > 0 ? std::min(o.top_k, V) : V;
  std::vector<double> p(static_cast<size_t>(keep));
  const double top = logits[order[0]];
  double total = 0;
  for (int64_t i = 0; i < keep; ++i) total += p[i] = std::exp((logits[order[i]] - top) / o.temperature);
  if (o.top_p < 1) {
    double cum = 0;
    int64_t n = 0;
    while (n < keep && cum < o.top_p * total) cum += p[n++];
    keep = std::max<int64_t>(n, 1);
    total = std::accumulate(p.begin(), p.begin() + keep, 0.0);
  }
  double u = gen.uniform() * total;
  for (int64_t i = 0; i < keep; ++i) {
    u -= p[i];
    if (u < 0) return order[i];
  }
  return order[keep - 1];
}

std::string decode_path(const Model& model, const SampleOptions& o) {
  if (!o.decode_plan) return "step form: decode_plan off";
  const std::string why = DecodePlan::why_not(model);
  if (!why.empty()) return "step form: " + why;
  return cat_str("decode plan (", DecodePlan(model).threads(), " threads)");
}

std::vector<int64_t> generate(Model& model, const std::vector<int64_t>& prompt, const SampleOptions& o,
                              const std::function<bool(int64_t)>& on_token) {
  o.validate();
  TZ_CHECK(!prompt.empty(), "generate: the prompt must hold at least one token");
  const int64_t ctx = model.context();
  NoGradGuard no_grad;
  Generator gen(o.seed);
  // The model sees at most `ctx` positions. When the window is full, decoding restarts
  // from the last ctx/2 tokens (at least one; re-encoded at positions 0..), so any length
  // can be drawn. A model with segment memory needs no restart: full segments move into
  // its memory.
  const bool unbounded = model.has_memory();
  const int64_t keep = std::max<int64_t>(1, ctx / 2);
  std::vector<int64_t> seq = prompt;
  if (!unbounded && int64_t(seq.size()) > ctx) seq.erase(seq.begin(), seq.end() - keep);
  // The decode plan takes every token after a prefill; it leaves the model's step form with
  // the numbers it would have computed (decode_plan.h), so the tokens are the same.
  std::unique_ptr<DecodePlan> plan;
  if (o.decode_plan && DecodePlan::why_not(model).empty()) plan = std::make_unique<DecodePlan>(model);
  std::vector<int64_t> out;
  Model::State state;
  std::vector<double> row;
  auto restart = [&](const std::vector<int64_t>& window) {
    state = model.make_state(1, ctx);
    Tensor logits = model.step(from_vector(window, {1, int64_t(window.size())}), state);
    row = logits.select(1, logits.size(1) - 1).select(0, 0).to_vector<double>();
    if (plan) plan->load(state);
  };
  restart(seq);
  while (int64_t(out.size()) < o.max_new_tokens) {
    int64_t token = sample_token(row, o, gen);
    out.push_back(token);
    seq.push_back(token);
    if (on_token && !on_token(token)) break;
    if (int64_t(out.size()) == o.max_new_tokens) break;
    const int64_t length = plan ? plan->length() : state.length;
    if (!unbounded && length >= ctx) {
      restart(std::vector<int64_t>(seq.end() - keep, seq.end()));
    } else if (plan) {
      const float* logits = plan->step(token);
      row.assign(logits, logits + plan->vocab());
    } else {
      Tensor logits = model.step(from_vector(std::vector<int64_t>{token}, {1, 1}), state);
      row = logits.select(1, 0).select(0, 0).to_vector<double>();
    }
  }
  return out;
}

}  // namespace tz::models
