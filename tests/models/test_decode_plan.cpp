// The decode plan (models/decode_plan.h): its logits are bit for bit those of the model's
// step form (every config it covers, f32 or quantized weights, every SIMD level, a team of 1
// and of 2 threads), so generate() draws the same tokens with it and without it; they agree
// with the full forward; models it does not cover decode through the step form.
#include <cstring>
#include <string>
#include <vector>

#include "autograd/node.h"
#include "core/creation.h"
#include "core/parallel.h"
#include "core/random.h"
#include "models/decode_plan.h"
#include "models/generate.h"
#include "models/quantize.h"
#include "models/zoo.h"
#include "tests/test_util.h"

using namespace tz;
using namespace tz::models;

namespace {

// Configs the plan covers: every position scheme, norm, FFN kind and head layout it has,
// with widths that leave SIMD tails (C = 24, D = 8, F = 72).
const char* const kCovered[] = {
    R"({"vocab": 37, "dim": 24, "depth": 2, "heads": 3, "context": 20, "ffn_mult": 3})",
    R"({"vocab": 37, "dim": 32, "depth": 2, "heads": 4, "context": 20, "pos": "rope", "norm": "rmsnorm",
        "ffn": "glu_variants", "ffn_glu": "swiglu", "bias": false, "tie_weights": false})",
    R"({"vocab": 29, "dim": 32, "depth": 3, "heads": 4, "attn_kv_heads": 2, "context": 18, "pos": "alibi",
        "activation": "relu"})",
    R"({"vocab": 29, "dim": 16, "depth": 2, "heads": 4, "attn_kv_heads": 1, "context": 12, "pos": "sinusoidal_pe",
        "ffn": "glu_variants", "ffn_glu": "geglu"})",
    R"({"vocab": 31, "dim": 16, "depth": 1, "heads": 2, "context": 12, "pos": "none", "activation": "silu",
        "norm": "rmsnorm", "final_norm": "none"})",
};

// A model whose logits are far from uniform (the default init gives logits within ~0.1 of
// each other): every parameter scaled up, so that sampling depends on the numbers.
std::unique_ptr<LM> make_model(const std::string& json, uint64_t seed) {
  Generator gen(seed);
  std::unique_ptr<LM> lm = zoo::make_lm(json, gen);
  lm->eval();
  NoGradGuard no_grad;
  for (auto& [name, p] : lm->named_parameters()) {
    float* d = p.data<float>();
    for (int64_t i = 0; i < p.numel(); ++i) d[i] *= 8.0f;
  }
  return lm;
}

std::vector<float> row_of(const Tensor& logits) {
  return logits.select(1, logits.size(1) - 1).select(0, 0).contiguous().to_vector<float>();
}

struct ThreadCount {
  int prev = get_num_threads();
  explicit ThreadCount(int n) { set_num_threads(n); }
  ~ThreadCount() { set_num_threads(prev); }
};

}  // namespace

TEST_CASE("decode plan: logits bit for bit those of the step form, every config, SIMD level and team size") {
  for (const char* json : kCovered)
    for (SimdLevel level : testing::simd_levels())
      for (int threads : {1, 2}) {
        CAPTURE(json);
        CAPTURE(simd_level_name(level));
        CAPTURE(threads);
        testing::SimdLevelGuard simd(level);
        ThreadCount tc(threads);
        std::unique_ptr<LM> lm = make_model(json, 5);
        REQUIRE(DecodePlan::why_not(*lm) == "");
        NoGradGuard no_grad;
        DecodePlan plan(*lm, {.threads = threads});
        CHECK(plan.threads() == threads);
        const int64_t L = lm->context(), V = lm->vocab();
        Model::State state = lm->make_state(1, L);
        Generator g(11);
        std::vector<int64_t> prompt{1, 7, 3, 0, 5};
        lm->step(from_vector(prompt, {1, 5}), state);
        plan.load(state);
        int64_t differ = 0, steps = 0;
        for (int64_t pos = 5; pos < L; ++pos, ++steps) {
          const int64_t token = g.randint(0, V);
          std::vector<float> want = row_of(lm->step(from_vector(std::vector<int64_t>{token}, {1, 1}), state));
          const float* got = plan.step(token);
          differ += std::memcmp(got, want.data(), size_t(V) * sizeof(float)) != 0;
        }
        CHECK(plan.length() == L);
        CHECK(steps == L - 5);
        CHECK(differ == 0);
        CHECK_THROWS_AS(plan.step(0), Error);  // the window is full
      }
}

TEST_CASE("decode plan: quantized weights (q8_0, bf16) give the step form's logits bit for bit") {
  // K a multiple of 32 everywhere, so that q8_0 takes every Linear; one config with a bias
  // and a tied head, one gated with an untied (quantized) head and GQA.
  struct Case {
    const char* json;
    int64_t linears;
  };
  const Case cases[] = {
      {R"({"vocab": 37, "dim": 32, "depth": 2, "heads": 4, "context": 14, "ffn_mult": 3})", 2 * 4},
      {R"({"vocab": 29, "dim": 64, "depth": 2, "heads": 4, "attn_kv_heads": 2, "context": 14, "pos": "rope",
          "norm": "rmsnorm", "ffn": "glu_variants", "ffn_glu": "swiglu", "ffn_mult": 3, "bias": false,
          "tie_weights": false})",
       2 * 5 + 1},  // qkv, out, gate, up, proj per layer; the head
  };
  for (const auto& [json, linears] : cases)
    for (QuantScheme scheme : {QuantScheme::q8_0, QuantScheme::bf16})
      for (SimdLevel level : testing::simd_levels())
        for (int threads : {1, 2}) {
          CAPTURE(json);
          CAPTURE(quant_scheme_name(scheme));
          CAPTURE(simd_level_name(level));
          CAPTURE(threads);
          testing::SimdLevelGuard simd(level);
          ThreadCount tc(threads);
          std::unique_ptr<LM> lm = make_model(json, 9);
          int64_t quantized = 0;
          for (auto& [name, lin] : linear_layers(*lm)) {
            lin->set_quantized(QuantizedMatrix::quantize(lin->weight, scheme));
            ++quantized;
          }
          CHECK(quantized == linears);
          REQUIRE(DecodePlan::why_not(*lm) == "");
          NoGradGuard no_grad;
          DecodePlan plan(*lm, {.threads = threads});
          Model::State state = lm->make_state(1, lm->context());
          lm->step(from_vector(std::vector<int64_t>{3, 1, 4}, {1, 3}), state);
          plan.load(state);
          Generator g(12);
          int64_t differ = 0;
          for (int64_t pos = 3; pos < lm->context(); ++pos) {
            const int64_t token = g.randint(0, lm->vocab());
            std::vector<float> want = row_of(lm->step(from_vector(std::vector<int64_t>{token}, {1, 1}), state));
            differ += std::memcmp(plan.step(token), want.data(), want.size() * sizeof(float)) != 0;
          }
          CHECK(differ == 0);
        }
}

TEST_CASE("decode plan: the same tokens as the step form, past the context window too") {
  struct Sampling {
    double temperature;
    int64_t top_k;
    double top_p;
  };
  for (const char* json : kCovered)
    for (uint64_t seed : {1, 2})
      for (Sampling s : {Sampling{0, 0, 1}, Sampling{1, 0, 1}, Sampling{0.8, 5, 1}, Sampling{1.2, 0, 0.9}}) {
        CAPTURE(json);
        CAPTURE(seed);
        CAPTURE(s.temperature);
        std::unique_ptr<LM> lm = make_model(json, seed);
        REQUIRE(decode_path(*lm).rfind("decode plan", 0) == 0);
        // 3 windows and more: the sequence restarts from its last context/2 tokens twice.
        SampleOptions o{.max_new_tokens = 3 * lm->context() + 5,
                        .temperature = s.temperature,
                        .top_k = s.top_k,
                        .top_p = s.top_p,
                        .seed = seed + 100};
        const std::vector<int64_t> prompt{2, 4, 6};
        std::vector<int64_t> planned = generate(*lm, prompt, o);
        o.decode_plan = false;
        std::vector<int64_t> stepped = generate(*lm, prompt, o);
        CHECK(planned.size() == size_t(o.max_new_tokens));
        CHECK(planned == stepped);
        // A prompt longer than the window starts from its last context/2 tokens.
        std::vector<int64_t> long_prompt(size_t(lm->context() + 3), 1);
        o.max_new_tokens = 7;
        const std::vector<int64_t> b = generate(*lm, long_prompt, o);
        o.decode_plan = true;
        CHECK(generate(*lm, long_prompt, o) == b);
      }
}

TEST_CASE("decode plan: logits agree with the full forward") {
  for (const char* json : kCovered)
    for (int threads : {1, 2}) {
      CAPTURE(json);
      CAPTURE(threads);
      ThreadCount tc(threads);
      std::unique_ptr<LM> lm = make_model(json, 3);
      NoGradGuard no_grad;
      const int64_t L = lm->context(), V = lm->vocab();
      Generator g(4);
      Tensor ids = randint(0, V, {1, L}, g);
      Tensor full = lm->forward(ids);  // [1, L, V]
      DecodePlan plan(*lm, {.threads = threads});
      plan.reset();  // every position through the plan, from an empty cache
      std::vector<float> got;
      for (int64_t t = 0; t < L; ++t) {
        const float* row = plan.step(int64_t(ids.at({0, t})));
        got.insert(got.end(), row, row + V);
      }
      CHECK(testing::rel_rms(from_vector(got, {1, L, V}), full) < 1e-5);
    }
}

TEST_CASE("decode plan: models it does not cover decode through the step form") {
  struct Case {
    const char* json;
    const char* why;
  };
  for (Case c : {Case{R"({"dim": 16, "heads": 2, "context": 8, "pos": "t5_rel_bias"})", "position scheme"},
                 Case{R"({"dim": 16, "heads": 2, "context": 8, "attn_qk_norm": true})", "attention option"},
                 Case{R"({"dim": 16, "heads": 2, "context": 8, "norm_placement": "post"})", "residual"},
                 Case{R"({"dim": 16, "heads": 2, "context": 8, "token_shift": 1})", "token shift"},
                 Case{R"({"dim": 16, "heads": 2, "context": 8, "activation": "mish"})", "activation"},
                 Case{R"({"dim": 16, "heads": 2, "context": 8, "dropout": 0.1})", "dropout"}}) {
    CAPTURE(c.json);
    Generator gen(0);
    std::unique_ptr<LM> lm = zoo::make_lm(c.json, gen);
    lm->train();  // dropout counts only while training
    const std::string why = DecodePlan::why_not(*lm);
    CHECK(why.find(c.why) != std::string::npos);
    CHECK(decode_path(*lm) == "step form: " + why);
    CHECK_THROWS_WITH_AS(DecodePlan{*lm}, doctest::Contains(why.c_str()), Error);
    lm->eval();
    const std::vector<int64_t> out = generate(*lm, {1, 2}, {.max_new_tokens = 12, .seed = 3});
    CHECK(out.size() == 12);
  }
  Generator gen(0);
  std::unique_ptr<LM> lm = zoo::make_lm(R"({"dim": 16, "heads": 2, "context": 8, "dropout": 0.1})", gen);
  lm->eval();  // eval mode: dropout is off, the plan covers the model
  CHECK(DecodePlan::why_not(*lm) == "");
  CHECK(decode_path(*lm, {.decode_plan = false}) == "step form: decode_plan off");
}
