// The zoo LM as embed → blocks → head: one stateful forward for prefill, continuation and
// decoding; the final norm apart from the block norm; residual kinds behind one interface;
// the layout plan; one model factory for LMs and wrappers.
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "models/lm.h"
#include "models/zoo.h"
#include "nn/residual/residual.h"
#include "tests/test_util.h"

using namespace tz;

namespace {
std::unique_ptr<models::LM> make(const std::string& extra, uint64_t seed = 1) {
  Generator gen(seed);
  return zoo::make_lm(nn::Config::parse(R"({"vocab": 16, "dim": 16, "depth": 2, "heads": 2, "context": 24)" +
                                            (extra.empty() ? "" : ", " + extra) + "}",
                                        "test"),
                      gen);
}
}  // namespace

TEST_CASE("one forward: chunked prefill, continuation from a state and decoding equal the whole sequence") {
  // Token shift keeps its own history in the block state, Macaron adds sublayers, the shared
  // block keeps one state per application: all must hand over at every split.
  for (const char* extra :
       {"", R"("token_shift": [1, 2], "macaron": true)", R"("share_layers": true, "recurrence_steps": 3)"}) {
    INFO(extra);
    auto m = make(extra);
    m->to(DType::f64);
    m->eval();
    NoGradGuard ng;
    Generator g(2);
    Tensor ids = randint(0, 16, {2, 13}, g);
    Tensor full = m->forward(ids);
    double worst = 0;
    for (int64_t a : {1, 5, 12}) {
      models::Model::State s = m->make_state(2, 13);
      Tensor first = m->forward(ids.narrow(1, 0, a), &s);  // prefill
      CHECK(s.length == a);
      Tensor rest = m->forward(ids.narrow(1, a, 13 - a), &s);  // continuation
      worst = std::max(worst, testing::max_abs_diff(cat({first, rest}, 1), full));
    }
    models::Model::State s = m->make_state(2, 13);
    for (int64_t t = 0; t < 13; ++t)  // decoding, through the thin step()
      worst = std::max(worst, testing::max_abs_diff(m->step(ids.narrow(1, t, 1), s), full.narrow(1, t, 1)));
    CHECK(s.length == 13);
    MESSAGE("max diff over splits and steps: ", worst);
    CHECK(worst < 1e-12);
    models::Model::State wrong = m->make_state(2, 13);
    wrong.length = 3;  // the one position counter must agree with the mixers' states
    CHECK_THROWS_AS(m->forward(ids.narrow(1, 0, 1), &wrong), Error);
  }
}

TEST_CASE("final_norm: auto follows the residual kind, none or a norm id override it") {
  auto has = [](const models::LM& m, const char* name) { return m.state_dict().count(name) > 0; };
  CHECK(has(*make(""), "norm_f.weight"));                                   // pre-norm: the stream needs one
  CHECK_FALSE(has(*make(R"("norm_placement": "post")"), "norm_f.weight"));  // post-norm ends normalised
  CHECK_FALSE(has(*make(R"("residual": "rezero")"), "norm_f.weight"));      // ReZero has no norms
  CHECK(has(*make(R"("residual": "gtrxl")"), "norm_f.weight"));
  CHECK_FALSE(has(*make(R"("final_norm": "none")"), "norm_f.weight"));
  auto post_rms = make(R"("norm_placement": "post", "final_norm": "rmsnorm")");
  REQUIRE(post_rms->norm_f);
  CHECK(post_rms->norm_f->describe().find("RMSNorm") != std::string::npos);
  CHECK(post_rms->layers->at<models::Block>(0)->sublayer("mixer").norm->describe().find("LayerNorm") !=
        std::string::npos);
  // The final norm's own keys are accepted; an unknown final norm is named.
  CHECK_NOTHROW(make(R"("final_norm": "rmsnorm", "norm_eps": 1e-6)"));
  CHECK_THROWS_WITH_AS(make(R"("final_norm": "rmsnrom")"), doctest::Contains("did you mean 'rmsnorm'"), Error);
}

TEST_CASE("residual kinds: one interface, parameters named per sublayer, foreign keys refused") {
  auto rz = make(R"("residual": "rezero")");
  auto sd = rz->state_dict();
  CHECK(sd.count("layers.0.alpha1"));
  CHECK(sd.count("layers.1.alpha2"));
  CHECK_FALSE(sd.count("layers.0.norm1.weight"));
  auto gt = make(R"("residual": "gtrxl", "gtrxl_bias": 3.0)");
  CHECK(gt->state_dict().count("layers.0.gate1.wr.weight"));
  CHECK(gt->state_dict().count("layers.1.gate2.ug.weight"));
  CHECK(gt->layers->at<models::Block>(0)->describe().find("gtrxl(b_g=3)") != std::string::npos);
  CHECK_THROWS_WITH_AS(make(R"("gtrxl_bias": 3.0)"), doctest::Contains("'gtrxl_bias' belongs to residual 'gtrxl'"),
                       Error);
  CHECK_THROWS_WITH_AS(make(R"("residual": "rezero", "norm_placement": "post")"),
                       doctest::Contains("'norm_placement' belongs to residual 'add'"), Error);
  CHECK_THROWS_WITH_AS(make(R"("residual": "highway")"),
                       doctest::Contains("residual must be one of add, rezero, gtrxl"), Error);
  std::vector<std::string> keys;
  for (auto& k : nn::residual_config_keys()) keys.push_back(k.key);
  CHECK(keys == std::vector<std::string>{"residual", "norm_placement", "gtrxl_bias", "skipinit_alpha", "aug_shortcuts",
                                         "aug_bottleneck", "aug_activation"});
}

TEST_CASE("the layout plans one mixer id per mixer sublayer (hybrids) and names the sublayers") {
  auto m = make(R"("layout": "sfsff", "mixer": ["vanilla_mha", "vanilla_mha"], "attn_kv_heads": 1)");
  REQUIRE(m->layers->size() == 3);
  std::string order;
  for (size_t i = 0; i < m->layers->size(); ++i)
    for (const auto& s : m->layers->at<models::Block>(i)->sublayers) order += s.spec.name + " ";
  CHECK(order == "mixer ffn mixer ffn ffn ");
  CHECK_THROWS_WITH_AS(make(R"("mixer": ["vanilla_mha", "vanilla_mha", "vanilla_mha"])"),
                       doctest::Contains("'mixer' lists 3 ids for 2 mixer sublayers"), Error);
}

TEST_CASE("zoo::make_model: the LM by default or by name, wrappers by name, from one parsed config") {
  Generator g1(3), g2(3);
  nn::Config c = nn::Config::parse(R"({"dim": 16, "depth": 1, "heads": 2, "context": 8})", "test");
  std::shared_ptr<models::Model> m = zoo::make_model(c, g1);
  CHECK(dynamic_cast<models::LM*>(m.get()));
  c.set("model", "\"gpt\"");
  CHECK(zoo::make_model(c, g2)->num_parameters() == m->num_parameters());
  CHECK(m->causal());
  CHECK(m->has_step());
  CHECK(m->vocab() == 256);
  CHECK_THROWS_WITH_AS(m->sample(2, g1), doctest::Contains("no task of its own"), Error);
  c.set("model", "\"encoder_decoder\"");
  c.set("vocab", "16");
  auto ed = zoo::make_model(c, g2);
  CHECK(ed->causal_input() == 2);
  CHECK_FALSE(ed->has_step());
  CHECK_THROWS_AS(zoo::make_lm(c, g2), Error);  // the LM refuses another model's config
}
