// Proofs of the segment-recurrent memories infini_attention (nn/memory/infini_attention.h)
// and rmt (models/rmt.h): their forms agree in f64, decoding equals the segment forward, and
// a passkey planted a segment back is recalled only through the memory.
#include <cstdlib>
#include <functional>
#include <string>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "data/batch.h"
#include "data/tasks.h"
#include "models/rmt.h"
#include "models/zoo.h"
#include "nn/memory/infini_attention.h"
#include "optim/adam.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"
#include "train/segments.h"

using namespace tz;

namespace {
// max |a - b| / max |b|: 0 when equal, inf when a is not finite.
double rel_err(const Tensor& a, const Tensor& b) {
  if (!testing::all_finite(a)) return INFINITY;
  const double scale = std::max(testing::max_abs_diff(b, zeros_like(b)), 1e-300);
  return testing::max_abs_diff(a, b) / scale;
}

// Passkey across segments: S segments of L tokens; the key p in 2..9 at a random position of
// segment 0, filler 10..15 elsewhere, the query token 1 last; every position of the last
// segment is scored, its target p (chance 1/8): all of them lie beyond the segment length.
data::Batch passkey(Generator& g, int64_t B, int64_t L, int64_t S) {
  const int64_t T = L * S;
  std::vector<int64_t> x(size_t(B * T)), y(size_t(B * T), data::kIgnoreIndex);
  for (int64_t b = 0; b < B; ++b) {
    int64_t* row = x.data() + b * T;
    for (int64_t t = 0; t < T; ++t) row[t] = g.randint(10, 16);
    const int64_t key = g.randint(2, 10);
    row[g.randint(0, L)] = key;
    row[T - 1] = 1;
    for (int64_t t = T - L; t < T; ++t) y[size_t(b * T + t)] = key;
  }
  return {from_vector(x, {B, T}), from_vector(y, {B, T})};
}

// Trains `m` for `steps` on passkey batches of 16 with `loss` (AdamW, lr 1e-2), then its
// accuracy on 256 held-out sequences by `logits`. Under the sanitizers
// (testing::learning_runs() false) 3 steps only.
double passkey_accuracy(models::Model& m, int64_t L, int64_t S, int steps, double lr, uint64_t seed,
                        const std::function<Tensor(const data::Batch&)>& loss,
                        const std::function<Tensor(const Tensor&)>& logits) {
  optim::AdamW opt(m.named_parameters(), {.lr = lr, .weight_decay = 0.0});
  Generator data(seed);
  for (int step = 0; step < (testing::learning_runs() ? steps : 3); ++step) {
    Tensor l = loss(passkey(data, 16, L, S));
    opt.zero_grad();
    l.backward();
    opt.step();
  }
  NoGradGuard ng;
  m.eval();
  Generator held(seed + 100);
  const data::Batch b = passkey(held, 256, L, S);
  return data::accuracy(logits(b.inputs), b.targets);
}

// ---- infini_attention ---------------------------------------------------------------------

struct InfiniRun {
  Tensor y, M, z;
  std::vector<Tensor> grads;  // of q, k, v, β for L = <wy, y> + <wM, M> + <wz, z>
};

// One form on fresh leaves copied from q, k, v, β; split > 0 runs [0, split) then the rest
// from the state the first call left.
InfiniRun run_infini(bool recurrent, bool delta, int64_t L, int64_t split, const std::vector<Tensor>& in,
                     const std::vector<Tensor>& w) {
  std::vector<Tensor> leaf;
  for (const Tensor& t : in) leaf.push_back(t.clone().requires_grad_());
  const nn::InfiniSpec spec{.gate = sigmoid(leaf[3]), .segment = L, .delta = delta};
  nn::InfiniState s;
  auto form = recurrent ? nn::infini_attention_recurrent : nn::infini_attention_segments;
  const int64_t T = in[0].size(2);
  std::vector<Tensor> ys;
  for (auto [a, b] : {std::pair{int64_t(0), split}, std::pair{split, T}})
    if (b > a)
      ys.push_back(
          form(leaf[0].narrow(2, a, b - a), leaf[1].narrow(2, a, b - a), leaf[2].narrow(2, a, b - a), spec, s));
  InfiniRun r{.y = cat(ys, 2), .M = s.M, .z = s.z};
  sum(r.y * w[0] + sum(r.M * w[1]) + sum(r.z * w[2])).backward();
  for (const Tensor& t : leaf) r.grads.push_back(t.grad());
  return r;
}

double lm_passkey_infini(bool memory, int64_t L, int64_t S, uint64_t seed) {
  Generator gen(seed);
  auto m = zoo::make_lm(cat_str(R"({"vocab": 16, "dim": 32, "heads": 2, "depth": 1, "pos": "rope", "context": )", L * S,
                                R"(, "mixer": "infini_attention", "infini_segment": )", L, R"(, "infini_memory": )",
                                memory ? "true" : "false", "}"),
                        gen);
  return passkey_accuracy(
      *m, L, S, 200, 1e-2, seed + 1, [&](const data::Batch& b) { return m->loss(b.inputs, b.targets); },
      [&](const Tensor& x) { return m->forward(x); });
}
}  // namespace

TZ_PROOF(infini_attention,
         "segment-wise == token-level recurrence (f64: outputs, final M and z, gradients, linear and delta rules), "
         "decode == forward, the memory recalls a passkey a segment back where local attention cannot") {
  // Forms: B 2, H 2, T 13, D 4, L 4 (the last segment partial), random β; whole runs and runs
  // split inside a segment, against the recurrence run whole.
  Generator g(7);
  const std::vector<Tensor> in{randn({2, 2, 13, 4}, g, DType::f64), randn({2, 2, 13, 4}, g, DType::f64),
                               randn({2, 2, 13, 4}, g, DType::f64), randn({2}, g, DType::f64)};
  const std::vector<Tensor> w{randn({2, 2, 13, 4}, g, DType::f64), randn({2, 2, 4, 4}, g, DType::f64),
                              randn({2, 2, 4}, g, DType::f64)};
  double worst = 0;
  for (bool delta : {false, true}) {
    CAPTURE(delta);
    const InfiniRun ref = run_infini(true, delta, 4, 0, in, w);
    for (auto [recurrent, split] :
         {std::pair{false, int64_t(0)}, {false, int64_t(6)}, {false, int64_t(8)}, {true, int64_t(6)}}) {
      CAPTURE(recurrent);
      CAPTURE(split);
      const InfiniRun r = run_infini(recurrent, delta, 4, split, in, w);
      double e = std::max({rel_err(r.y, ref.y), rel_err(r.M, ref.M), rel_err(r.z, ref.z)});
      for (size_t i = 0; i < r.grads.size(); ++i) e = std::max(e, rel_err(r.grads[i], ref.grads[i]));
      CHECK(e <= 1e-12);
      worst = std::max(worst, e);
    }
    // Not vacuous: the memory moves the output of every later segment and every gradient is used.
    for (const Tensor& gr : ref.grads) CHECK(testing::max_abs_diff(gr, zeros_like(gr)) > 1e-6);
    nn::InfiniState none;
    const Tensor local = nn::infini_attention_segments(in[0], in[1], in[2], {.segment = 4}, none);
    const Tensor gate = sigmoid(in[3]).view({1, 2, 1, 1});
    CHECK(testing::max_abs_diff(ref.y.narrow(2, 0, 4), (local * (1.0 - gate)).narrow(2, 0, 4)) <= 1e-14);
    CHECK(testing::max_abs_diff(ref.y.narrow(2, 4, 9), (local * (1.0 - gate)).narrow(2, 4, 9)) > 1e-3);
  }
  // The rules differ (the delta rule writes only what the memory lacks).
  CHECK(testing::max_abs_diff(run_infini(false, true, 4, 0, in, w).M, run_infini(false, false, 4, 0, in, w).M) > 1e-3);
  MESSAGE("segment-wise vs token-level recurrence, worst relative error ", worst);
  TZ_PROOF_NUMBER("max rel |segment-wise - recurrent|", worst);

  // Decoding (state = M, z and the open segment's keys and values) == the full forward, both
  // rules, segments of 3 crossed three times, rotary positions in the local attention.
  for (const char* rule : {"linear", "delta"}) {
    const double d = testing::lm_step_vs_forward(
        cat_str(R"({"pos": "rope", "mixer": "infini_attention", "infini_segment": 3, "infini_update": ")", rule, "\"}"),
        10);
    MESSAGE("infini_attention ", std::string(rule), ": decode vs forward ", d);
    CHECK(d <= 1e-10);
  }

  // Passkey one segment back (two segments of 8; one layer, 200 steps): local attention sees
  // only its own segment, so without the memory the answer is a guess among 8.
  const double with = lm_passkey_infini(true, 8, 2, 31), without = lm_passkey_infini(false, 8, 2, 31);
  MESSAGE("passkey in the previous segment (segments of 8): infini_attention ", with,
          ", local only (infini_memory false) ", without, " (chance 1/8)");
  if (!testing::learning_runs()) return;
  CHECK(with >= 0.9);
  CHECK(without <= 0.3);
}

// ---- rmt ------------------------------------------------------------------------------------

namespace {
std::shared_ptr<models::RecurrentMemoryTransformer> rmt(const std::string& extra, uint64_t seed = 3) {
  Generator gen(seed);
  auto m = std::dynamic_pointer_cast<models::RecurrentMemoryTransformer>(zoo::make_model(
      nn::Config::parse(cat_str(R"({"model": "rmt", "dim": 32, "heads": 2, "depth": 2, )", extra, "}"), "rmt proof"),
      gen));
  REQUIRE(m);
  return m;
}
}  // namespace

TZ_PROOF(rmt,
         "the gradient reaches earlier segments through the memory and exactly none beyond rmt_bptt, decoding == the "
         "segment forward, the memory recalls a passkey where a memory reset per segment cannot") {
  // Reach: 6 segments of 4; segment j's tokens come from rows 8 + 8j .. 15 + 8j of an untied
  // embedding (vocab 64); the loss is segment 5's only. The gradient on segment j's rows is
  // what reached it, all of it through the memory.
  const int64_t L = 4, S = 6;
  Generator g(4);
  std::vector<Tensor> segs;
  for (int64_t j = 0; j < S; ++j) segs.push_back(randint(8 + 8 * j, 16 + 8 * j, {2, L}, g));
  const Tensor ids = cat(segs, 1);
  Tensor targets = full({2, L * S}, -100.0, DType::i64);
  core::copy_(targets.narrow(1, (S - 1) * L, L), randint(0, 64, {2, L}, g));
  double far = 0, near = 1e300;
  for (int64_t k : {int64_t(-1), int64_t(0), int64_t(2)}) {
    CAPTURE(k);
    auto m = rmt(cat_str(R"("vocab": 64, "context": 24, "rmt_segment": 4, "rmt_memory": 2, "tie_weights": false, )",
                         R"("rmt_bptt": )", k));
    m->to(DType::f64);
    for (bool by_calls : {false, true}) {  // one forward; or a memory from make_memory, a call per segment
      CAPTURE(by_calls);
      m->zero_grad();
      if (by_calls) {
        models::Model::State st = m->make_memory(2);
        for (int64_t j = 0; j + 1 < S; ++j) m->forward(segs[size_t(j)], &st);
        m->loss({{segs[S - 1]}, targets.narrow(1, (S - 1) * L, L)}, st).backward();
      } else {
        m->loss(ids, targets).backward();
      }
      const Tensor gw = m->tok_emb->weight.grad();
      std::string reach;
      for (int64_t j = 0; j < S; ++j) {
        const double r = testing::max_abs_diff(gw.narrow(0, 8 + 8 * j, 8), zeros_like(gw.narrow(0, 8 + 8 * j, 8)));
        const bool within = k < 0 || j >= S - 1 - k;  // S - 1 = 5 is the last of a block of k + 1
        reach += cat_str(" ", r);
        if (within) {
          CHECK(r > 1e-8);
          if (j < S - 1) near = std::min(near, r);
        } else {
          CHECK(r == 0.0);
          far = std::max(far, r);
        }
      }
      const Tensor gi = m->mem_init.grad();
      const double init = gi.defined() ? testing::max_abs_diff(gi, zeros_like(gi)) : 0.0;
      CHECK((k < 0 ? init > 1e-8 : init == 0.0));
      MESSAGE("rmt_bptt ", k, std::string(by_calls ? " (a call per segment)" : " (one forward)"),
              ": |grad| on segments 0..5:", reach, "; mem_0 ", init);
    }
  }
  TZ_PROOF_NUMBER("smallest |grad| reaching an earlier segment through memory", near);
  CHECK(far == 0.0);

  // Decoding == the segment forward: logits token by token (and a prefill of 5, then chunks of
  // 3) equal the forward's across 3 segment boundaries, and the memory after the decoded
  // segments is the one a make_memory forward of the same segments writes.
  {
    NoGradGuard ng;
    auto m = rmt(R"("vocab": 16, "context": 16, "rmt_segment": 4, "rmt_memory": 3)", 5);
    m->to(DType::f64);
    Generator gi(6);
    const Tensor x = randint(0, 16, {2, 16}, gi), full_y = m->forward(x);
    models::Model::State st = m->make_state(2, 1);
    double e = 0;
    for (int64_t t = 0; t < 16; ++t)
      e = std::max(e, testing::max_abs_diff(m->step(x.narrow(1, t, 1), st), full_y.narrow(1, t, 1)));
    models::Model::State st2 = m->make_state(2, 1);
    e = std::max(e, testing::max_abs_diff(m->step(x.narrow(1, 0, 5), st2), full_y.narrow(1, 0, 5)));
    for (int64_t t = 5; t < 16; t += 3) {
      const int64_t n = std::min<int64_t>(3, 16 - t);
      e = std::max(e, testing::max_abs_diff(m->forward(x.narrow(1, t, n), &st2), full_y.narrow(1, t, n)));
    }
    models::Model::State mem = m->make_memory(2);
    m->forward(x, &mem);
    const auto& decoded = dynamic_cast<models::RmtState&>(*st.memory);
    const double me = testing::max_abs_diff(decoded.mem, dynamic_cast<models::RmtState&>(*mem.memory).mem);
    CHECK(decoded.segments == 4);
    CHECK(e <= 1e-10);
    CHECK(me <= 1e-10);
    // Not vacuous: the memory moves the logits after the first segment.
    const Tensor reset = cat({m->forward(x.narrow(1, 0, 4)), m->forward(x.narrow(1, 4, 4))}, 1);
    CHECK(testing::max_abs_diff(reset.narrow(1, 4, 4), full_y.narrow(1, 4, 4)) > 1e-4);
    MESSAGE("rmt: decode vs segment forward ", e, ", memory after 4 segments ", me);
  }

  // Passkey one segment back (two segments of 4, 2 memory tokens, 1000 steps at lr 3e-3): the
  // memory carried through one forward, vs the same model with its memory reset to mem_0 at
  // every segment (each segment on its own), trained alike, from 3 seeds. Whether training
  // finds the route through the memory depends on the seed and on the rounding of the
  // products (seed 41 reached 1.00 and seed 51 stayed at the reset model's 0.14 here; at lr
  // 1e-2 none of 3 seeds found it on one build, all on another): the claim is that the memory
  // can carry the key, which the reset model never can.
  const int64_t PL = 4, PS = 2;
  const std::string cfg = R"("vocab": 16, "context": 8, "rmt_segment": 4, "rmt_memory": 2)";
  double with = 0, without = 0;
  std::string all;
  for (uint64_t seed : {41, 51, 61}) {
    auto carried = rmt(cfg, seed);
    const double w = passkey_accuracy(
        *carried, PL, PS, 1000, 3e-3, seed + 1,
        [&](const data::Batch& b) { return carried->loss(b.inputs, b.targets); },
        [&](const Tensor& x) { return carried->forward(x); });
    auto reset = rmt(cfg, seed);
    auto by_segment = [&](const Tensor& x) {
      std::vector<Tensor> out;
      for (int64_t t = 0; t < x.size(1); t += PL) out.push_back(reset->forward(x.narrow(1, t, PL)));
      return cat(out, 1);
    };
    const double wo = passkey_accuracy(
        *reset, PL, PS, 1000, 3e-3, seed + 1,
        [&](const data::Batch& b) {
          const Tensor y = by_segment(b.inputs);
          return cross_entropy(y.reshape({-1, y.size(-1)}), b.targets.reshape({-1}));
        },
        by_segment);
    all += cat_str(" seed ", seed, ": ", w, " / ", wo, ";");
    with = std::max(with, w);
    without = std::max(without, wo);
    if (!testing::learning_runs()) break;
  }
  MESSAGE("passkey in the previous segment (segments of 4, 2 memory tokens), rmt / memory reset per segment:", all,
          " (chance 1/8)");
  TZ_PROOF_NUMBER("rmt passkey accuracy, best of 3 seeds", with);
  if (!testing::learning_runs()) return;
  CHECK(with >= 0.9);
  CHECK(without <= 0.3);
}

TEST_CASE("infini_attention and rmt refuse bad keys, naming them") {
  Generator gen(1);
  auto lm = [&](const std::string& extra) {
    return zoo::make_lm(
        R"({"vocab": 16, "dim": 16, "heads": 2, "depth": 1, "mixer": "infini_attention", )" + extra + "}", gen);
  };
  CHECK_THROWS_WITH_AS(lm(R"("infini_update": "hebbian")"),
                       doctest::Contains("infini_update must be 'linear' or 'delta'"), Error);
  CHECK_THROWS_WITH_AS(lm(R"("infini_segment": 0)"), doctest::Contains("infini_segment must be >= 1, got 0"), Error);
  auto model = [&](const std::string& extra) {
    return zoo::make_model(
        nn::Config::parse(R"({"model": "rmt", "vocab": 16, "dim": 16, "heads": 2, )" + extra + "}", "rmt keys"), gen);
  };
  CHECK_THROWS_WITH_AS(model(R"("rmt_memory": 0)"), doctest::Contains("rmt_memory must be positive, got 0"), Error);
  CHECK_THROWS_WITH_AS(model(R"("rmt_bptt": -2)"), doctest::Contains("rmt_bptt must be >= 0, or -1"), Error);
  CHECK_THROWS_WITH_AS(model(R"("mem_len": 4)"), doctest::Contains("mem_len"), Error);
  auto ok = model(R"("rmt_segment": 4, "rmt_memory": 2)");
  NoGradGuard ng;
  models::Model::State st = ok->make_state(1, 1);
  CHECK_THROWS_WITH_AS(ok->forward(randint(0, 16, {2, 3}, gen), &st), doctest::Contains("the input 2"), Error);
}

TEST_CASE("rmt: cut_memory detaches the memory, a restarted row reads mem_0 again, the others keep theirs") {
  NoGradGuard ng;
  auto m = rmt(R"("vocab": 16, "context": 8, "rmt_segment": 4, "rmt_memory": 2)", 9);
  m->to(DType::f64);
  Generator g(10);
  const Tensor first = randint(0, 16, {2, 4}, g), second = randint(0, 16, {2, 4}, g);
  models::Model::State kept = m->make_memory(2), reset = m->make_memory(2);
  m->forward(first, &kept);
  m->forward(first, &reset);
  train::cut_memory(reset, {0});
  const Tensor a = m->forward(second, &kept), b = m->forward(second, &reset), alone = m->forward(second);
  CHECK(testing::max_abs_diff(b.select(0, 0), alone.select(0, 0)) == 0.0);   // row 0: as from mem_0
  CHECK(testing::max_abs_diff(b.select(0, 1), a.select(0, 1)) == 0.0);       // row 1: unchanged
  CHECK(testing::max_abs_diff(a.select(0, 0), alone.select(0, 0)) > 1e-4);   // the memory did matter
  CHECK(!dynamic_cast<models::RmtState&>(*reset.memory).restart.defined());  // read once, then cleared
}
