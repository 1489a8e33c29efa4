// Proof of memory_tokens (models/memory_tokens.h): m learned [mem] tokens prepended to the
// sequence, through all layers, stripped before the head.
#include <map>
#include <string>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "models/memory_tokens.h"
#include "models/zoo.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
const char* kBase = R"("vocab": 16, "dim": 16, "heads": 2, "context": 24, "depth": 2)";

std::unique_ptr<models::LM> lm(const std::string& extra, uint64_t seed = 3) {
  Generator gen(seed);
  return zoo::make_lm(std::string("{") + kBase + (extra.empty() ? "" : ", " + extra) + "}", gen);
}

Tensor ids_of(uint64_t seed, int64_t B = 2, int64_t T = 12) {
  Generator g(seed);
  return randint(0, 16, {B, T}, g);
}

// The largest |difference| between the full forward and three decodings: a prefill of 5 then
// one token at a time; all tokens one at a time; two chunks (forward continued from a state).
double decode_error(models::LM& m, const Tensor& ids) {
  const int64_t B = ids.size(0), T = ids.size(1);
  Tensor full = m.forward(ids);
  double worst = 0;
  for (int64_t first : {int64_t(5), int64_t(1), int64_t(7)}) {
    auto st = m.make_state(B, T);
    worst = std::max(worst, testing::max_abs_diff(m.step(ids.narrow(1, 0, first), st), full.narrow(1, 0, first)));
    const int64_t step = first == 7 ? T - first : 1;
    for (int64_t t = first; t < T; t += step)
      worst = std::max(worst, testing::max_abs_diff(m.forward(ids.narrow(1, t, step), &st), full.narrow(1, t, step)));
    CHECK(st.length == T);
  }
  return worst;
}
}  // namespace

TZ_PROOF(memory_tokens,
         "m = 0 equals the LM bit for bit, causal for real tokens, memory stripped from the logits, "
         "decoding == forward") {
  NoGradGuard ng;
  const Tensor ids = ids_of(1);
  const int64_t B = ids.size(0), T = ids.size(1), m = 3;
  auto base = lm(""), zero = lm(R"("num_memory_tokens": 0)"), mem = lm(R"("num_memory_tokens": 3)");
  base->eval(), zero->eval(), mem->eval();
  // m = 0: the same parameters and the same logits, bit for bit.
  CHECK(zero->named_parameters().size() == base->named_parameters().size());
  CHECK(testing::max_abs_diff(zero->forward(ids), base->forward(ids)) == 0.0);
  // m = 3 draws the memory last: every other parameter equals the LM's.
  std::map<std::string, Tensor> bp;
  for (auto& [name, t] : base->named_parameters()) bp[name] = t;
  size_t shared = 0;
  for (auto& [name, t] : mem->named_parameters())
    if (bp.count(name)) {
      CHECK(testing::max_abs_diff(t, bp.at(name)) == 0.0);
      ++shared;
    }
  CHECK(shared == bp.size());
  REQUIRE(mem->memory_tokens.defined());
  CHECK(mem->memory_tokens.shape() == Shape{m, 16});
  // Logits [B, T, V] are the head over the stream's last T rows: the memory's outputs are
  // stripped (the blocks run by hand over [mem; embedding]).
  Tensor logits = mem->forward(ids);
  CHECK(logits.shape() == Shape{B, T, 16});
  Tensor h = models::prepend_memory(mem->memory_tokens, mem->embed(ids, 0));
  CHECK(h.shape() == Shape{B, m + T, 16});
  nn::MixerContext ctx{.pos = mem->pos.get()};
  for (size_t i = 0; i < mem->layers->size(); ++i) h = mem->layers->at<models::Block>(i)->forward(h, ctx);
  Tensor by_hand = linear(mem->norm_f->forward(h), mem->tok_emb->weight);
  CHECK(testing::max_abs_diff(logits, by_hand.narrow(1, m, T)) == 0.0);
  // The memory is seen by every real position: it changes even the first logits.
  const double moved = testing::max_abs_diff(logits.narrow(1, 0, 1), base->forward(ids).narrow(1, 0, 1));
  MESSAGE("m = 3 vs the LM at position 0: max |logit difference| = ", moved);
  CHECK(moved > 1e-4);
  // Causal for real tokens: changing x_{>=t0} leaves the outputs before t0 unchanged.
  mem->to(DType::f64);
  Tensor full = mem->forward(ids);
  for (int64_t t0 : {int64_t(0), int64_t(4), int64_t(11)}) {
    Tensor other = ids.clone();
    core::copy_(other.narrow(1, t0, T - t0), ids_of(7 + uint64_t(t0), B, T - t0));
    Tensor out = mem->forward(other);
    if (t0 > 0) CHECK(testing::max_abs_diff(out.narrow(1, 0, t0), full.narrow(1, 0, t0)) < 1e-12);
    CHECK(testing::max_abs_diff(out.narrow(1, t0, T - t0), full.narrow(1, t0, T - t0)) > 1e-6);
  }
  // Decoding equals the full forward in f64, for positions added to the embeddings and
  // positions inside attention, and with token shift (which sees the memory as history).
  double worst = 0;
  for (const char* extra : {"", R"("pos": "rope")", R"("pos": "alibi")", R"("pos": "t5_rel_bias")", R"("pos": "xpos")",
                            R"("pos": "txl_rel_pos")", R"("pos": "position_infused_attn")",
                            R"("pos": "sinusoidal_pe", "token_shift": 1)"}) {
    auto d = lm(std::string(R"("num_memory_tokens": 3)") + (*extra ? ", " : "") + extra, 5);
    d->to(DType::f64);
    d->eval();
    const double e = decode_error(*d, ids);
    MESSAGE("m = 3 {", std::string(extra), "}: max |decode - forward| = ", e);
    CHECK(e < 1e-12);
    worst = std::max(worst, e);
  }
  TZ_PROOF_NUMBER("max |decode - forward| (f64)", worst);
}

TEST_CASE("memory_tokens, proof part 2: gradients reach the memory, refused combinations name both keys") {
  auto m = lm(R"("num_memory_tokens": 2)", 9);
  m->to(DType::f64);
  const Tensor ids = ids_of(2, 2, 6);
  GradcheckOptions opt;
  opt.atol = 1e-8;
  opt.rtol = 1e-5;
  GradcheckResult r = gradcheck([&](const std::vector<Tensor>&) { return m->forward(ids); },
                                {m->memory_tokens, m->tok_emb->weight}, opt);
  MESSAGE("gradcheck of the logits over memory_tokens and tok_emb: max error ", r.max_abs_error, " ", r.report);
  CHECK(r.ok);
  CHECK(r.tensors.at(0).checked == 2 * 16);
  CHECK(!r.tensors.at(0).vacuous);
  // Forgetful Causal Masking draws its keys over the real tokens; the memory is never hidden.
  auto fcm = lm(R"("num_memory_tokens": 2, "fcm_max_ratio": 1.0)", 9);
  fcm->train();
  CHECK(fcm->forward(ids_of(3, 2, 12)).shape() == Shape{2, 12, 16});
  Tensor padded = models::pad_memory_keys(from_vector(std::vector<int64_t>{1, 0, 1, 1}, {2, 2}), 2);
  REQUIRE(padded.shape() == Shape{2, 4});
  const std::vector<double> want{0, 0, 1, 0, 0, 0, 1, 1};
  for (int64_t i = 0; i < 8; ++i) CHECK(padded.at({i / 4, i % 4}) == want[size_t(i)]);
  // Refusals, naming both keys.
  auto refused = [](const std::string& extra, const std::string& other) {
    try {
      lm(std::string(R"("num_memory_tokens": 2, )") + extra);
    } catch (const Error& e) {
      const std::string what = e.what();
      CHECK_MESSAGE(what.find("num_memory_tokens") != std::string::npos, what);
      CHECK_MESSAGE(what.find(other) != std::string::npos, what);
      return true;
    }
    return false;
  };
  CHECK(refused(R"("pos": "tupe")", "tupe"));  // a bounded table inside attention
  CHECK(refused(R"("share_layers": true)", "share_layers"));
  CHECK(refused(R"("act": true)", "act"));
  CHECK_THROWS_WITH_AS(lm(R"("num_memory_tokens": -1)"), doctest::Contains("num_memory_tokens must be >= 0"), Error);
}
