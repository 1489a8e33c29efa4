// Proof of MobileLLM's immediate block-wise weight sharing (models/mobilellm.h): mobilellm.
#include <map>

#include "autograd/ops.h"
#include "core/random.h"
#include "core/tensor.h"
#include "models/zoo.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
// MobileLLM's pieces at a small size: SwiGLU, GQA with 2 of 4 heads, RMSNorm, tied
// embeddings, no biases (so the parameter count has a short formula).
const char* kMobile = R"({"vocab": 16, "dim": 24, "heads": 4, "attn_kv_heads": 2, "depth": 3, "context": 24,
  "pos": "rope", "norm": "rmsnorm", "bias": false, "ffn": "glu_variants", "ffn_glu": "swiglu")";

std::unique_ptr<models::LM> mobile(const std::string& extra, uint64_t seed = 1) {
  Generator gen(seed);
  return zoo::make_lm(std::string(kMobile) + extra + "}", gen);
}
}  // namespace

TZ_PROOF(mobilellm, "each block runs twice back to back with one set of weights. Parameters match the formula") {
  auto shared = mobile(R"(, "block_repeat": 2)");
  auto plain = mobile("");
  // The same parameters, by name and value, as the model without repeats: sharing adds none.
  const nn::NamedTensors ps = shared->named_parameters(), pp = plain->named_parameters();
  REQUIRE(ps.size() == pp.size());
  int64_t count = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    CHECK(ps[i].first == pp[i].first);
    CHECK(testing::max_abs_diff(ps[i].second, pp[i].second) == 0.0);
    count += ps[i].second.numel();
  }
  // V C (tied embedding) + per block: q and out C², k and v C · G D, SwiGLU 3 C F with
  // F = ⌊2 · 4C / 3⌋, two RMSNorm gains C; the final norm C.
  const int64_t V = 16, C = 24, G = 2, D = 6, F = 2 * 4 * C / 3, L = 3;
  const int64_t formula = V * C + L * (2 * C * C + 2 * C * G * D + 3 * C * F + 2 * C) + C;
  MESSAGE("parameters: ", count, ", formula ", formula, " (block_repeat 2 runs ", 2 * L, " blocks)");
  TZ_PROOF_NUMBER("parameters minus formula", double(count - formula));
  CHECK(count == formula);
  CHECK(shared->schedule() == std::vector<int64_t>{0, 0, 1, 1, 2, 2});

  // The forward is block 0, block 0, block 1, block 1, ... applied by hand.
  shared->eval();
  NoGradGuard ng;
  Generator g(3);
  Tensor ids = randint(0, 16, {2, 12}, g);
  Tensor h = shared->embed(ids, 0);
  std::map<std::string, Tensor> carry;
  nn::MixerContext ctx{.pos = shared->pos.get(), .carry = &carry};
  for (size_t b = 0; b < shared->layers->size(); ++b)
    for (int r = 0; r < 2; ++r) h = shared->layers->at<models::Block>(b)->forward(h, ctx);
  const double by_hand =
      testing::max_abs_diff(shared->forward(ids), linear(shared->norm_f->forward(h), shared->tok_emb->weight));
  MESSAGE("forward vs blocks applied twice by hand: ", by_hand);
  CHECK(by_hand == 0.0);
  // And it computes something else than one pass per block.
  CHECK(testing::max_abs_diff(shared->forward(ids), plain->forward(ids)) > 1e-3);

  // Each application keeps its own decoding state: 6 KV caches for 3 blocks.
  CHECK(shared->make_state(1, 24).layers.size() == 6);
  Generator gen(1);
  CHECK_THROWS_WITH_AS(zoo::make_lm(R"({"block_repeat": 0})", gen), doctest::Contains("block_repeat must be"), Error);
  CHECK_THROWS_WITH_AS(zoo::make_lm(R"({"block_repeat": 2, "share_layers": true})", gen),
                       doctest::Contains("block_repeat"), Error);
}
