// The GPT model: config parsing, cached decoding == full forward, f64 gradcheck end to end,
// sampling rules.
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "models/generate.h"
#include "models/gpt.h"
#include "models/zoo.h"
#include "tests/test_util.h"

using namespace tz;
using namespace tz::models;

namespace {
GPTConfig tiny_config() {
  GPTConfig c;
  c.vocab = 11;
  c.dim = 8;
  c.depth = 2;
  c.heads = 2;
  c.context = 16;
  c.mlp_mult = 2;
  return c;
}
}  // namespace

TEST_CASE("zoo config: unknown keys and bad values are named, with the nearest key") {
  Generator gen(0);
  auto lm = zoo::make_lm(R"({"dim": 16, "depth": 1, "heads": 2, "context": 8, "norm": "rmsnorm"})", gen);
  CHECK(lm->dims().dim == 16);
  CHECK(lm->state_dict().count("layers.0.norm1.weight"));
  CHECK_FALSE(lm->state_dict().count("layers.0.norm1.bias"));  // RMSNorm has no bias
  CHECK_THROWS_WITH_AS(zoo::make_lm(R"({"dims": 64})", gen),
                       doctest::Contains("unknown key 'dims' (did you mean 'dim'?)"), Error);
  CHECK_THROWS_WITH_AS(zoo::make_lm(R"({"dim": 30, "heads": 4})", gen), "config: heads (4) must divide dim (30)",
                       Error);
  CHECK_THROWS_WITH_AS(zoo::make_lm(R"({"dim": "big"})", gen), "config: key 'dim' must be an integer, got \"big\"",
                       Error);
  CHECK_THROWS_WITH_AS(zoo::make_lm(R"({"mixer": "vanila_mha"})", gen),
                       doctest::Contains("unknown mixer 'vanila_mha'; did you mean 'vanilla_mha'?"), Error);
  // A key of a component that was not chosen is rejected too.
  CHECK_THROWS_WITH_AS(zoo::make_lm(R"({"pos": "learned_abs_pe", "pos_base": 500.0})", gen),
                       doctest::Contains("unknown key 'pos_base'"), Error);
  CHECK_THROWS_AS(zoo::make_lm("{", gen), Error);
  // GPT's defaults are the zoo LM's defaults; its JSON leaves components free to swap.
  CHECK(zoo::make_lm(GPTConfig{}.to_json(), gen)->state_dict().count("layers.0.ffn.fc.weight"));
  nn::Config swapped = nn::Config::parse(GPTConfig{}.to_json());
  swapped.merge(nn::Config::parse(R"({"ffn": "glu_variants", "dim": 16, "heads": 2, "depth": 1})"));
  CHECK_NOTHROW(zoo::make_lm(swapped.dump(), gen));
}

TEST_CASE("GPT names its parameters like PyTorch and ties the head") {
  Generator gen(0);
  GPT gpt(tiny_config(), gen);
  auto state = gpt.state_dict();
  CHECK(state.count("tok_emb.weight"));
  CHECK(state.count("layers.1.mixer.qkv.weight"));
  CHECK(state.count("layers.0.ffn.proj.bias"));
  CHECK(state.count("norm_f.weight"));
  CHECK_FALSE(state.count("head.weight"));
  GPTConfig untied = tiny_config();
  untied.tie_weights = false;
  GPT g2(untied, gen);
  CHECK(g2.state_dict().count("head.weight"));
  CHECK(g2.num_parameters() == gpt.num_parameters() + 11 * 8);
}

TEST_CASE("cached step-by-step decoding gives the logits of the full forward at every position") {
  Generator gen(1);
  GPT gpt(tiny_config(), gen);
  gpt.eval();
  Tensor ids = randint(0, 11, {2, 12}, gen);
  NoGradGuard no_grad;
  Tensor full = gpt.forward(ids);
  auto state = gpt.make_state(2, 12);
  // A prompt of 5 tokens at once, then one token at a time.
  Tensor first = gpt.step(ids.narrow(1, 0, 5), state);
  CHECK_CLOSE(first, full.narrow(1, 0, 5), 1e-5);
  for (int64_t t = 5; t < 12; ++t) {
    Tensor step = gpt.step(ids.narrow(1, t, 1), state);
    INFO("position ", t);
    CHECK(testing::max_abs_diff(step, full.narrow(1, t, 1)) < 1e-5);
  }
  CHECK(state.length == 12);
  CHECK_THROWS_AS(gpt.step(ids.narrow(1, 0, 1), state), Error);  // cache full
}

TEST_CASE("a tiny GPT passes gradcheck in f64, end to end") {
  Generator gen(2);
  GPTConfig c = tiny_config();
  c.depth = 1;
  c.vocab = 7;
  GPT gpt(c, gen);
  gpt.to(DType::f64);
  Tensor ids = randint(0, 7, {2, 4}, gen);
  Tensor targets = randint(0, 7, {2, 4}, gen);
  auto named = gpt.named_parameters();
  std::vector<Tensor> params;
  for (auto& [n, t] : named) params.push_back(t);
  GradcheckOptions opt;
  opt.max_elements = 12;  // a random sample of each parameter keeps it fast
  opt.atol = 1e-6;
  auto r = gradcheck([&](const std::vector<Tensor>&) { return gpt.loss(ids, targets); }, params, opt);
  CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("sampling: greedy, top-k, top-p, seeds") {
  std::vector<double> logits = {0.0, 3.0, 1.0, 2.9, -5.0};
  Generator gen(0);
  CHECK(sample_token(logits, {.temperature = 0}, gen) == 1);
  for (int i = 0; i < 200; ++i) {
    int64_t t = sample_token(logits, {.top_k = 2}, gen);
    CHECK((t == 1 || t == 3));
    CHECK(sample_token(logits, {.top_p = 0.01}, gen) == 1);
  }
  Generator a(9), b(9);
  std::vector<int64_t> sa, sb;
  for (int i = 0; i < 50; ++i) {
    sa.push_back(sample_token(logits, {}, a));
    sb.push_back(sample_token(logits, {}, b));
  }
  CHECK(sa == sb);
  CHECK_THROWS_AS(SampleOptions{.top_p = 0}.validate(), Error);

  Generator g(3);
  GPT gpt(tiny_config(), g);
  std::vector<int64_t> streamed;
  auto out = generate(gpt, {1, 2, 3}, {.max_new_tokens = 6, .seed = 4}, [&](int64_t t) {
    streamed.push_back(t);
    return true;
  });
  CHECK(out.size() == 6);
  CHECK(out == streamed);
  CHECK(generate(gpt, {1, 2, 3}, {.max_new_tokens = 6, .seed = 4}) == out);
  // Past the 16-position context, decoding slides on from the last 8 tokens.
  CHECK(generate(gpt, {1}, {.max_new_tokens = 100}).size() == 100);
}
