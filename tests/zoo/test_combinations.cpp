// Options combine as in x-transformers: a few multi-feature models train, and their cached
// step-by-step decoding equals the full forward at every position.
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "models/zoo.h"
#include "optim/adam.h"
#include "optim/optim.h"
#include "tests/test_util.h"

using namespace tz;

namespace {
struct Combo {
  const char* name;
  const char* config;
};

const Combo kCombos[] = {
    {"rope + gqa + qk_norm + swiglu + rmsnorm + macaron",
     R"({"pos": "rope", "heads": 4, "attn_kv_heads": 2, "attn_qk_norm": true, "ffn": "glu_variants",
         "ffn_glu": "swiglu", "norm": "rmsnorm", "macaron": true})"},
    {"alibi + mqa + gate_values + relu_squared + post-norm",
     R"({"pos": "alibi", "heads": 4, "attn_kv_heads": 1, "attn_gate_values": true, "activation": "relu_squared",
         "norm_placement": "post"})"},
    {"xpos + talking_heads + primer dconv + scalenorm + token_shift",
     R"({"pos": "xpos", "attn_talking_heads": true, "attn_dconv": true, "norm": "scalenorm", "token_shift": 1})"},
    {"t5 bias + realformer + topk + sandwich + no bias",
     R"({"pos": "t5_rel_bias", "depth": 3, "attn_residual": true, "attn_sparse_topk": 4, "layout": "sandwich",
         "sandwich_coef": 1, "bias": false})"},
};
}  // namespace

TEST_CASE("option combinations train, and cached decoding equals the full forward") {
  for (const Combo& combo : kCombos) {
    INFO(combo.name);
    nn::Config c = nn::Config::parse(R"({"vocab": 16, "dim": 32, "depth": 2, "heads": 2, "context": 24})");
    c.merge(nn::Config::parse(combo.config, combo.name));
    Generator gen(1);
    auto lm = zoo::make_lm(c, gen);
    // Training moves the loss: 60 steps on a fixed batch.
    Generator data(2);
    Tensor ids = randint(0, 16, {4, 16}, data);
    Tensor targets = randint(0, 16, {4, 16}, data);
    optim::AdamW opt(lm->named_parameters(), {.lr = 1e-2, .weight_decay = 0.0});
    double first = 0, last = 0;
    for (int s = 0; s < 60; ++s) {
      Tensor loss = lm->loss(ids, targets);
      opt.zero_grad();
      loss.backward();
      opt.step();
      (s == 0 ? first : last) = loss.item();
    }
    CHECK(last < 0.7 * first);
    // Cached decoding after training, one token at a time.
    REQUIRE_MESSAGE(lm->has_step(), lm->why_no_step());
    lm->eval();
    NoGradGuard no_grad;
    Tensor full = lm->forward(ids);
    auto state = lm->make_state(4, 16);
    double worst = 0;
    for (int64_t t = 0; t < 16; ++t)
      worst = std::max(worst, testing::max_abs_diff(lm->step(ids.narrow(1, t, 1), state), full.narrow(1, t, 1)));
    CHECK(worst < 1e-4);
  }
}
