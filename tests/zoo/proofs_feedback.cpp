// Proof of the Feedback Transformer (models/feedback_transformer.h): the token-by-token
// training forward equals incremental decoding; the top layer's state at step t reaches
// layer 1 at step t + 1 (in a standard transformer of the same weights it cannot); causal.
#include <algorithm>
#include <cmath>
#include <map>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "models/feedback_transformer.h"
#include "models/zoo.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
constexpr int64_t kDepth = 3, kDim = 16;

// A tiny f64 model with weights drawn at scale 0.3 (the 0.02 init leaves every path small).
// The control (feedback_memory false) takes the same weights; it has no layer weights w.
std::shared_ptr<models::FeedbackTransformer> tiny(bool feedback, const models::FeedbackTransformer* like = nullptr) {
  Generator gen(3);
  auto m = std::dynamic_pointer_cast<models::FeedbackTransformer>(zoo::make_model(
      nn::Config::parse(
          cat_str(R"({"model": "feedback_transformer", "vocab": 11, "dim": )", kDim, R"(, "depth": )", kDepth,
                  R"(, "heads": 2, "context": 16, "feedback_memory": )", feedback ? "true" : "false", "}"),
          "proof"),
      gen));
  REQUIRE(m != nullptr);
  m->to(DType::f64);
  NoGradGuard no_grad;
  std::map<std::string, Tensor> source;
  if (like)
    for (auto& [name, p] : like->named_parameters()) source[name] = p;
  Generator draw(5);
  for (auto& [name, p] : m->named_parameters())
    core::copy_(p, like ? source.at(name) : p + randn(p.shape(), draw, DType::f64, 0.0, 0.3));
  return m;
}

Tensor ids_of(int64_t B, int64_t T, uint64_t seed) {
  Generator gen(seed);
  return randint(0, 11, {B, T}, gen);
}

double max_abs(const Tensor& g) { return g.defined() ? max(abs(g.reshape({-1})), 0).item() : 0.0; }

// d sum(r . h_{t+1}^1) / d h_t^L: the top layer at step t perturbed by a leaf, layer 1 read at
// t + 1. Also d(the same) / d h_t^0, which a standard transformer's layer 1 reads.
struct Reach {
  double from_top = 0, from_embedding = 0;
};
Reach probe(models::FeedbackTransformer& m, const Tensor& ids, int64_t t) {
  Tensor top = zeros({1, 1, kDim}, DType::f64).requires_grad_(), bottom = zeros({1, 1, kDim}, DType::f64);
  bottom.requires_grad_();
  Tensor layer1;
  m.tap = [&](int64_t s, int64_t l, const Tensor& h) {
    if (s == t && l == kDepth) return h + top;
    if (s == t && l == 0) return h + bottom;
    if (s == t + 1 && l == 1) layer1 = h;
    return h;
  };
  m.forward(ids);
  m.tap = nullptr;
  Generator gen(9);
  sum(layer1 * randn({1, 1, kDim}, gen, DType::f64)).backward();
  return {max_abs(top.grad()), max_abs(bottom.grad())};
}
}  // namespace

TZ_PROOF(feedback_transformer,
         "token-by-token training forward == incremental decode (f64) and the top layer at t reaches layer 1 at "
         "t + 1 (zero in a standard transformer) and causal (gradient exactly 0)") {
  auto m = tiny(true);
  const int64_t B = 2, T = 12;
  const Tensor ids = ids_of(B, T, 7);
  // 1. The training forward (graph recorded, training mode) against decoding from a state:
  // token by token, and a prefill of 5 then the rest.
  m->train();
  Tensor full = m->forward(ids);
  CHECK(full.requires_grad());
  double worst = 0;
  {
    NoGradGuard no_grad;
    m->eval();
    auto st = m->make_state(B, T);
    for (int64_t t = 0; t < T; ++t)
      worst = std::max(worst, testing::max_abs_diff(m->step(ids.narrow(1, t, 1), st), full.narrow(1, t, 1)));
    auto chunks = m->make_state(B, T);
    worst = std::max(worst, testing::max_abs_diff(m->step(ids.narrow(1, 0, 5), chunks), full.narrow(1, 0, 5)));
    worst = std::max(worst, testing::max_abs_diff(m->step(ids.narrow(1, 5, T - 5), chunks), full.narrow(1, 5, T - 5)));
  }
  CHECK(worst < 1e-12);
  TZ_PROOF_NUMBER("decode vs training forward max error", worst);

  // 3. Causal: d logits_t / d h_s^0 is exactly 0 for every s > t, nonzero for s <= t.
  double leak = 0, least_reach = INFINITY;
  const Tensor one = ids.narrow(0, 0, 1);
  for (int64_t t : {0, 5, 10}) {
    std::vector<Tensor> d;
    for (int64_t s = 0; s < T; ++s) d.push_back(zeros({1, 1, kDim}, DType::f64).requires_grad_());
    m->tap = [&](int64_t s, int64_t l, const Tensor& h) { return l == 0 ? h + d[size_t(s)] : h; };
    Tensor logits = m->forward(one);
    m->tap = nullptr;
    Generator gen(11);
    sum(logits.narrow(1, t, 1) * randn({1, 1, 11}, gen, DType::f64)).backward();
    for (int64_t s = 0; s < T; ++s)
      if (s > t)
        leak = std::max(leak, max_abs(d[size_t(s)].grad()));
      else
        least_reach = std::min(least_reach, max_abs(d[size_t(s)].grad()));
  }
  CHECK(leak == 0.0);
  CHECK(least_reach > 1e-6);
  MESSAGE("causal: |d logits_t / d h_s^0| for s > t at most ", leak, ", for s <= t at least ", least_reach);
  TZ_PROOF_NUMBER("causal leak (gradient from later inputs)", leak);

  // 2. The probe: the top layer at t = 4 reaches layer 1 at t = 5 through the memory. In the
  // control (each layer reads its own past inputs: a standard transformer, same weights) it
  // cannot, while layer 1 still reads the embedding at t.
  auto control = tiny(false, m.get());
  const Reach fb = probe(*m, one, 4), std_tf = probe(*control, one, 4);
  MESSAGE("probe |d h_5^1 / d h_4^top|: feedback ", fb.from_top, ", standard ", std_tf.from_top,
          "; |d h_5^1 / d h_4^0|: feedback ", fb.from_embedding, ", standard ", std_tf.from_embedding);
  CHECK(fb.from_top > 1e-2);
  CHECK(std_tf.from_top == 0.0);
  CHECK(std_tf.from_embedding > 1e-2);
  TZ_PROOF_NUMBER("top layer at t -> layer 1 at t+1 gradient", fb.from_top);
}

TEST_CASE("feedback transformer names bad config values") {
  Generator gen(1);
  auto make = [&](const std::string& json) { return zoo::make_model(nn::Config::parse(json, "test"), gen); };
  CHECK_THROWS_WITH_AS(make(R"({"model": "feedback_transformer", "pos": "rope"})"), doctest::Contains("pos 'rope'"),
                       tz::Error);
  CHECK_THROWS_WITH_AS(make(R"({"model": "feedback_transformer", "dim": 30, "heads": 4})"),
                       doctest::Contains("heads (4) must divide dim (30)"), tz::Error);
  CHECK_THROWS_WITH_AS(make(R"({"model": "feedback_transformer", "depth": 0})"),
                       doctest::Contains("depth must be positive"), tz::Error);
  CHECK_THROWS_WITH_AS(make(R"({"model": "feedback_transformer", "mem_len": 4})"), doctest::Contains("mem_len"),
                       tz::Error);
  auto m = make(R"({"model": "feedback_transformer", "vocab": 11, "dim": 8, "heads": 2, "depth": 1, "context": 6})");
  auto st = m->make_state(1, 6);
  CHECK_THROWS_WITH_AS(m->step(ids_of(1, 7, 1), st), doctest::Contains("exceed the state's capacity 6"), tz::Error);
  CHECK_THROWS_WITH_AS(m->make_state(1, 7), doctest::Contains("capacity <= context 6"), tz::Error);
}
