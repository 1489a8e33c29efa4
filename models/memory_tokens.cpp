#include "models/memory_tokens.h"

#include "autograd/ops.h"
#include "core/creation.h"
#include "models/act.h"
#include "models/keys.h"
#include "models/universal.h"
#include "nn/registry.h"

namespace tz::models {

int64_t read_memory_tokens(const nn::Config& c, const nn::PositionScheme& pos, bool shared_block) {
  const int64_t m = c.get(kNumMemoryTokens);
  TZ_CHECK(m >= 0, c.source(), ": num_memory_tokens must be >= 0, got ", m);
  if (m == 0) return 0;
  const bool in_attention = pos.rotates() || pos.biases_scores() || pos.biases_with_queries();
  TZ_CHECK(pos.max_positions() == 0 || !in_attention, c.source(), ": num_memory_tokens does not combine with pos '",
           c.get(kPos), "': its table of ", pos.max_positions(),
           " positions acts inside attention, where the memory takes positions 0..m-1");
  TZ_CHECK(!shared_block, c.source(), ": num_memory_tokens does not combine with share_layers or act",
           " (the per-step position signal covers the real positions only)");
  return m;
}

Tensor prepend_memory(const Tensor& mem, const Tensor& h) {
  const int64_t B = h.size(0), m = mem.size(0), C = h.size(2);
  TZ_CHECK(mem.dim() == 2 && mem.size(1) == C, "memory_tokens: expected memory [m, ", C, "], got ", mem.shape());
  return cat({mem.unsqueeze(0).expand({B, m, C}), h}, 1);
}

Tensor pad_memory_keys(const Tensor& keys, int64_t m) {
  if (!keys.defined() || m == 0) return keys;
  return cat({zeros({keys.size(0), m}, keys.dtype()), keys}, 1);
}

}  // namespace tz::models

namespace tz::zoo {

void register_memory_tokens(nn::Registry& r) {
  r.add({.id = "memory_tokens",
         .summary = "m learned [mem] tokens prepended to every sequence, through all layers, stripped before the head",
         .keys = {models::kNumMemoryTokens},
         .test_config = R"({"num_memory_tokens": 2})",
         .example = R"({"num_memory_tokens": 10})"});
}

}  // namespace tz::zoo
