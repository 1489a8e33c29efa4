// Proofs of segment memory (models/segment_memory.h): transformer_xl, deep_lrm_memory,
// enhanced_recurrence, compressive_memory. Segments of L positions (the model's context),
// memories of M positions per layer, all in f64.
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "data/tasks.h"
#include "models/block.h"
#include "models/generate.h"
#include "models/segment_memory.h"
#include "models/zoo.h"
#include "nn/attention/attention.h"
#include "optim/adam.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"
#include "train/arena.h"
#include "train/segments.h"

using namespace tz;

namespace {
double max_abs(const Tensor& t) { return testing::max_abs_diff(t, zeros_like(t)); }

std::unique_ptr<models::LM> lm(const std::string& extra, int64_t L = 6, uint64_t seed = 3) {
  Generator gen(seed);
  auto m = zoo::make_lm(cat_str(R"({"vocab": 16, "dim": 16, "heads": 2, "depth": 2, "context": )", L, ", ", extra, "}"),
                        gen);
  m->to(DType::f64);
  m->eval();
  return m;
}

Tensor ids_of(uint64_t seed, int64_t B = 2, int64_t T = 24) {
  Generator g(seed);
  return randint(0, 16, {B, T}, g);
}

models::SegmentMemory& memory_of(models::Model::State& st) { return dynamic_cast<models::SegmentMemory&>(*st.memory); }

// The logits of ids [B, T] run segment by segment (L positions each) through one memory.
Tensor by_segments(models::LM& m, const Tensor& ids, int64_t L, models::Model::State* keep = nullptr) {
  models::Model::State st = m.make_memory(ids.size(0));
  std::vector<Tensor> out;
  for (int64_t t = 0; t < ids.size(1); t += L) out.push_back(m.forward(ids.narrow(1, t, L), &st));
  if (keep) *keep = std::move(st);
  return cat(out, 1);
}

// The logits of ids run segment by segment with no memory at all (independent segments).
Tensor without_memory(models::LM& m, const Tensor& ids, int64_t L) {
  std::vector<Tensor> out;
  for (int64_t t = 0; t < ids.size(1); t += L) out.push_back(m.forward(ids.narrow(1, t, L)));
  return cat(out, 1);
}
// A small rope LM (vocab 16, dim 32, depth 2, context L) with `memory` keys, trained with AdamW
// for `steps` batches read as segments of L (`feeds` readings each): its accuracy on a held-out
// batch. Under the sanitizers (testing::learning_runs() false) 3 steps only.
double accuracy_after_training(const std::string& memory, const std::function<data::Batch(Generator&)>& batch,
                               int64_t L, int steps, int64_t feeds, uint64_t seed) {
  Generator gen(seed);
  auto m = zoo::make_lm(
      cat_str(R"({"vocab": 16, "dim": 32, "heads": 2, "depth": 2, "pos": "rope", "context": )", L, ", ", memory, "}"),
      gen);
  optim::AdamW opt(m->named_parameters(), {.lr = 3e-3, .weight_decay = 0.0});
  Generator data(seed + 1);
  for (int step = 0; step < (testing::learning_runs() ? steps : 3); ++step) {
    Tensor l = train::segmented_loss(*m, batch(data), L, nullptr, feeds);
    opt.zero_grad();
    l.backward();
    opt.step();
  }
  NoGradGuard ng;
  m->eval();
  Generator held(seed + 2);
  const data::Batch b = batch(held);
  return data::accuracy(train::segmented_logits(*m, b.inputs, L, nullptr, feeds), b.targets);
}
}  // namespace

TZ_PROOF(transformer_xl,
         "segment-by-segment == one forward with the block-staircase mask (f64, 1e-10) for every relative scheme, "
         "decoding == segments with bounded caches, no gradient into the memory") {
  const int64_t L = 6;
  const Tensor ids = ids_of(1);
  double worst = 0;
  for (const char* pos : {"txl_rel_pos", "rope", "xpos", "alibi", "t5_rel_bias", "none"})
    for (int64_t M : {int64_t(6), int64_t(10), int64_t(3)}) {
      CAPTURE(pos);
      CAPTURE(M);
      NoGradGuard ng;
      auto m = lm(cat_str(R"("pos": ")", pos, R"(", "mem_len": )", M), L);
      const Tensor seg = by_segments(*m, ids, L), stair = m->forward_staircase(ids, L);
      const double e = testing::max_abs_diff(seg, stair);
      CHECK(e <= 1e-10);
      worst = std::max(worst, e);
      // Not vacuous: the memory changes every segment after the first.
      const Tensor alone = without_memory(*m, ids, L);
      CHECK(testing::max_abs_diff(alone.narrow(1, 0, L), seg.narrow(1, 0, L)) == 0.0);
      CHECK(testing::max_abs_diff(alone.narrow(1, L, L), seg.narrow(1, L, L)) > 1e-4);
    }
  TZ_PROOF_NUMBER("max |segments - staircase|", worst);

  // Decoding one token at a time crosses segments by moving them into memory: the same logits
  // as the segment forward, with caches of M + L keys however long the history.
  {
    NoGradGuard ng;
    auto m = lm(R"("pos": "txl_rel_pos", "mem_len": 6)", L);
    const Tensor seg = by_segments(*m, ids, L);
    models::Model::State st = m->make_state(2, 4);  // the capacity asked for is irrelevant with memory
    double e = 0;
    for (int64_t t = 0; t < ids.size(1); ++t)
      e = std::max(e, testing::max_abs_diff(m->step(ids.narrow(1, t, 1), st), seg.narrow(1, t, 1)));
    CHECK(e <= 1e-10);
    MESSAGE("max |decode - segments| = ", e);
    auto& kv = dynamic_cast<nn::KVState&>(*dynamic_cast<models::BlockState&>(*st.layers[1]).mixers[0]);
    CHECK(kv.k.size(2) == 6 + L);
    CHECK(kv.keys == 6 + L);  // the last segment is full: memory + L keys
    // Prefill of 9 tokens then steps: the same again.
    models::Model::State st2 = m->make_state(2, 0);
    double e2 = testing::max_abs_diff(m->step(ids.narrow(1, 0, 9), st2), seg.narrow(1, 0, 9));
    for (int64_t t = 9; t < 24; t += 5) {
      const int64_t n = std::min<int64_t>(5, 24 - t);
      e2 = std::max(e2, testing::max_abs_diff(m->forward(ids.narrow(1, t, n), &st2), seg.narrow(1, t, n)));
    }
    CHECK(e2 <= 1e-10);
  }

  // Stop-gradient: segment 2's loss reaches no token of segment 1 (rows 0..7 of an untied
  // embedding), while mem_bptt = 1 lets it through the memory.
  Generator g(5);
  const Tensor first = randint(0, 8, {2, L}, g), second = randint(8, 16, {2, L}, g);
  const Tensor targets = randint(0, 16, {2, L}, g);
  for (int64_t bptt : {0, 1}) {
    CAPTURE(bptt);
    auto m = lm(cat_str(R"("pos": "rope", "mem_len": 6, "tie_weights": false, "mem_bptt": )", bptt), L);
    m->train();
    models::Model::State st = m->make_memory(2);
    m->forward(first, &st);
    CHECK(memory_of(st).mem[0].requires_grad() == (bptt > 0));
    m->loss({{second}, targets}, st).backward();
    const double reach = max_abs(m->tok_emb->weight.grad().narrow(0, 0, 8));
    if (bptt == 0)
      CHECK(reach == 0.0);
    else
      CHECK(reach > 1e-6);
  }
}

TEST_CASE("segment memory: a row whose document starts over forgets its memory, the others keep theirs") {
  NoGradGuard ng;
  const int64_t L = 6;
  const Tensor ids = ids_of(6, 2, 2 * L), first = ids.narrow(1, 0, L), second = ids.narrow(1, L, L);
  for (const char* extra : {R"("pos": "rope", "mem_len": 6)", R"("pos": "alibi", "mem_len": 4, "cmem_len": 3,
                                 "compress_rate": 2, "compress_fn": "mean")"}) {
    CAPTURE(extra);
    auto m = lm(extra, L);
    models::Model::State kept = m->make_memory(2), reset = m->make_memory(2);
    m->forward(first, &kept);
    m->forward(first, &reset);
    memory_of(reset).reset_rows({0});
    const Tensor a = m->forward(second, &kept), b = m->forward(second, &reset), alone = m->forward(second);
    CHECK(testing::max_abs_diff(b.select(0, 0), alone.select(0, 0)) <= 1e-12);  // row 0: as if no memory
    CHECK(testing::max_abs_diff(b.select(0, 1), a.select(0, 1)) == 0.0);        // row 1: unchanged
    CHECK(testing::max_abs_diff(a.select(0, 0), alone.select(0, 0)) > 1e-4);    // the memory did matter
  }
}

TEST_CASE("transformer_xl: greedy generation past the context is the staircase forward's argmax") {
  auto m = lm(R"("pos": "txl_rel_pos", "mem_len": 6)", 6);
  const std::vector<int64_t> prompt{3, 1, 4, 1, 5};
  const std::vector<int64_t> out = models::generate(*m, prompt, {.max_new_tokens = 30, .temperature = 0});
  REQUIRE(out.size() == 30);
  std::vector<int64_t> seq = prompt;
  seq.insert(seq.end(), out.begin(), out.end() - 1);
  NoGradGuard ng;
  const Tensor logits = m->forward_staircase(from_vector(seq, {1, int64_t(seq.size())}), 6);
  int64_t agree = 0;
  for (size_t i = 0; i < out.size(); ++i)
    agree += argmax(logits.select(1, int64_t(prompt.size() + i) - 1), -1).item() == double(out[i]);
  CHECK(agree == 30);
}

TEST_CASE("transformer_xl: a saved memory continues bit for bit, bad memory use is refused with the keys named") {
  NoGradGuard ng;
  const int64_t L = 6;
  const Tensor ids = ids_of(2, 2, 18);
  auto m = lm(R"("pos": "rope", "mem_len": 6)", L);
  models::Model::State st;
  const Tensor seg = by_segments(*m, ids, L, &st);
  models::Model::State mid = m->make_memory(2);
  m->forward(ids.narrow(1, 0, L), &mid);
  m->forward(ids.narrow(1, L, L), &mid);
  const auto saved = models::save_model_state(mid);
  models::Model::State back = m->make_memory(2);
  models::restore_model_state(back, saved);
  CHECK(testing::max_abs_diff(m->forward(ids.narrow(1, 2 * L, L), &back), seg.narrow(1, 2 * L, L)) == 0.0);
  // Errors name what was expected.
  Generator gen(1);
  auto make = [&](const std::string& extra) {
    return zoo::make_lm(R"({"vocab": 16, "dim": 16, "heads": 2, "depth": 2, "context": 6, )" + extra + "}", gen);
  };
  CHECK_THROWS_WITH_AS(make(R"("mem_len": 4)"), doctest::Contains("needs a relative position scheme"), Error);
  CHECK_THROWS_WITH_AS(make(R"("pos": "rope", "mem_len": [4, 4, 4])"), doctest::Contains("mem_len lists 3"), Error);
  CHECK_THROWS_WITH_AS(make(R"("pos": "rope", "shift_mem_down": 1)"), doctest::Contains("need segment memory"), Error);
  CHECK_THROWS_WITH_AS(make(R"("pos": "rope", "mem_len": 4, "compress_rate": 2)"),
                       doctest::Contains("compress_rate needs compressed memory"), Error);
  CHECK_THROWS_WITH_AS(make(R"("pos": "rope", "mem_len": 4, "attn_dconv": true)"),
                       doctest::Contains("takes no segment memory"), Error);
  CHECK_THROWS_WITH_AS(make(R"("pos": "rope", "mem_len": 4, "num_memory_tokens": 2)"),
                       doctest::Contains("num_memory_tokens"), Error);
  auto ok = make(R"("pos": "rope", "mem_len": 4)");
  models::Model::State st2 = ok->make_memory(1);
  CHECK_THROWS_WITH_AS(ok->forward(randint(0, 16, {1, 7}, gen), &st2), doctest::Contains("at most context = 6"), Error);
  auto plain = make(R"("pos": "rope")");
  CHECK_THROWS_WITH_AS(plain->make_memory(1), doctest::Contains("no segment memory"), Error);
}

TZ_PROOF(deep_lrm_memory,
         "per-layer memory lengths are what each layer attends to: segments == staircase with per-layer spans, "
         "memory sizes") {
  NoGradGuard ng;
  const int64_t L = 6;
  const Tensor ids = ids_of(3);
  auto m = lm(R"("pos": "rope", "mem_len": [2, 9])", L);
  models::Model::State st;
  const Tensor seg = by_segments(*m, ids, L, &st);
  const double e = testing::max_abs_diff(seg, m->forward_staircase(ids, L));
  CHECK(e <= 1e-10);
  CHECK(memory_of(st).mem[0].size(1) == 2);
  CHECK(memory_of(st).mem[1].size(1) == 9);
  // The spans are what the layers use: giving both layers 9 changes the logits after segment 1.
  auto wide = lm(R"("pos": "rope", "mem_len": 9)", L);
  const Tensor seg_wide = by_segments(*wide, ids, L);
  CHECK(testing::max_abs_diff(seg_wide.narrow(1, 0, L), seg.narrow(1, 0, L)) == 0.0);
  CHECK(testing::max_abs_diff(seg_wide.narrow(1, L, 3 * L), seg.narrow(1, L, 3 * L)) > 1e-4);
  TZ_PROOF_NUMBER("max |segments - per-layer staircase|", e);
}

TZ_PROOF(enhanced_recurrence,
         "k = 0 reproduces transformer_xl bit for bit, layer n's memory is layer n + k's input, information "
         "reaches segments TXL cannot") {
  NoGradGuard ng;
  const int64_t L = 6;
  const Tensor ids = ids_of(4);
  auto txl = lm(R"("pos": "rope", "mem_len": 6)", L), k0 = lm(R"("pos": "rope", "mem_len": 6, "shift_mem_down": 0)", L);
  const double e0 = testing::max_abs_diff(by_segments(*k0, ids, L), by_segments(*txl, ids, L));
  CHECK(e0 == 0.0);
  // k = 1: after one segment, layer 0's memory is layer 1's mixer input and layer 1's the
  // final normed stream (computed here by hand).
  auto k1 = lm(R"("pos": "rope", "mem_len": 6, "shift_mem_down": 1)", L);
  models::Model::State st = k1->make_memory(2);
  const Tensor seg0 = ids.narrow(1, 0, L);
  k1->forward(seg0, &st);
  nn::MixerContext ctx{.pos = k1->pos.get()};
  Tensor h = k1->embed(seg0, 0);
  h = k1->layers->at<models::Block>(0)->forward(h, ctx);
  const Tensor u1 = k1->layers->at<models::Block>(1)->sublayer("mixer").norm->forward(h);
  h = k1->layers->at<models::Block>(1)->forward(h, ctx);
  CHECK(testing::max_abs_diff(memory_of(st).mem[0], u1) == 0.0);
  CHECK(testing::max_abs_diff(memory_of(st).mem[1], k1->norm_f->forward(h)) == 0.0);
  // Reach: with depth 2 and M = L, Transformer-XL's logits at segment 3 do not depend on
  // segment 0 at all (each layer reaches one segment back); shifted memory recirculates the
  // top layer, so segment 0 still moves them.
  Generator g(9);
  const Tensor other = cat({randint(0, 16, {2, L}, g), ids.narrow(1, L, ids.size(1) - L)}, 1);
  auto reach = [&](models::LM& m) {
    return testing::max_abs_diff(by_segments(m, ids, L).narrow(1, 3 * L, L),
                                 by_segments(m, other, L).narrow(1, 3 * L, L));
  };
  const double r_txl = reach(*txl), r_k1 = reach(*k1);
  CHECK(r_txl == 0.0);
  CHECK(r_k1 > 1e-6);
  MESSAGE("segment 0 -> logits of segment 3: TXL ", r_txl, ", shift_mem_down 1 ", r_k1);
  TZ_PROOF_NUMBER("segment-0 influence on segment 3 (TXL has 0)", r_k1);
}

TZ_PROOF(compressive_memory,
         "c = 1 (mean) equals Transformer-XL with memory M + Mc, compressed sizes, the reconstruction loss trains the "
         "compressor only") {
  const int64_t L = 6;
  const Tensor ids = ids_of(5);
  double e = 0;
  {
    NoGradGuard ng;
    for (const char* fn : {"mean", "max"}) {
      auto c1 = lm(
          cat_str(R"("pos": "rope", "mem_len": 4, "cmem_len": 5, "compress_rate": 1, "compress_fn": ")", fn, "\""), L);
      auto txl = lm(R"("pos": "rope", "mem_len": 9)", L);
      e = std::max(e, testing::max_abs_diff(by_segments(*c1, ids, L), by_segments(*txl, ids, L)));
    }
    CHECK(e <= 1e-12);
  }
  TZ_PROOF_NUMBER("max |c=1 - TXL(M + Mc)|", e);
  // Sizes: M = 6, Mc = 4, c = 2: every segment evicts 6 rows into 3 slots; cmem keeps 4.
  for (const char* fn : {"max", "mean", "conv", "dilated_conv", "most_used"}) {
    CAPTURE(fn);
    NoGradGuard ng;
    auto m =
        lm(cat_str(R"("pos": "rope", "mem_len": 6, "cmem_len": 4, "compress_rate": 2, "compress_fn": ")", fn, "\""), L);
    models::Model::State st = m->make_memory(2);
    std::vector<int64_t> sizes;
    for (int64_t t = 0; t < 24; t += L) {
      m->forward(ids.narrow(1, t, L), &st);
      const Tensor& c = memory_of(st).cmem[1];
      sizes.push_back(c.defined() ? c.size(1) : 0);
    }
    CHECK(sizes == std::vector<int64_t>{0, 3, 4, 4});
    CHECK(memory_of(st).mem[0].size(1) == 6);
    CHECK(memory_of(st).cmem_valid[0].shape() == Shape{2, 4});
  }
  // The attention-reconstruction loss: one term per layer while training; its gradient reaches
  // the compressors and nothing else.
  auto m = lm(R"("pos": "rope", "mem_len": 6, "cmem_len": 4, "compress_rate": 2, "compress_fn": "conv")", L);
  m->train();
  models::Model::State st = m->make_memory(2);
  nn::AuxLosses aux;
  for (int64_t t = 0; t < 12; t += L) m->forward({ids.narrow(1, t, L)}, &st, &aux);
  REQUIRE(aux.terms.size() == 2);  // segment 2 evicts in both layers
  CHECK(aux.terms[0].first == "compress_attn0");
  aux.total().backward();
  int compressor = 0, other = 0;
  for (auto& [name, p] : m->named_parameters()) {
    const double g = p.grad().defined() ? max_abs(p.grad()) : 0.0;
    if (name.rfind("memory.compress", 0) == 0)
      compressor += g > 0;
    else
      other += g != 0;
  }
  CHECK(compressor == 4);  // conv weight and bias of both layers
  CHECK(other == 0);
}

TEST_CASE("transformer_xl copies across a segment boundary in the arena, without memory it stays at chance") {
  arena::Options o;
  o.task = "copy";
  o.seq_len = 16;  // x1..x7 SEP | x1..x7 PAD: the copy's source lies one segment back
  o.segment = 8;
  o.vocab = 16;
  o.steps = testing::learning_runs() ? 300 : 3;
  o.batch = 32;
  o.base = R"({"dim": 32, "depth": 2, "heads": 2})";
  o.models = {{"transformer_xl", R"({"pos": "rope", "mem_len": 8})"}, {"no memory", R"({"pos": "rope"})"}};
  o.out_dir = (std::filesystem::temp_directory_path() / "tz_arena_copy_segments").string();
  const std::vector<arena::Result> r = arena::run(o);
  MESSAGE("copy across segments: transformer_xl ", r[0].val_accuracy.at(1), ", no memory ", r[1].val_accuracy.at(1),
          " (chance 1/14)");
  CHECK(r[0].memory_slots == 16);
  if (!testing::learning_runs()) return;
  CHECK(r[0].val_accuracy.at(1) >= 0.9);
  CHECK(r[1].val_accuracy.at(1) <= 0.25);
}

TEST_CASE("compressive_memory recalls from beyond its FIFO, where transformer_xl with the same FIFO cannot") {
  // Three segments of L = 8: four tokens, each twice (the pairs fill the c = 2 windows) |
  // filler | SEP then the four tokens. The answers lie 16 to 24 positions back: past a FIFO
  // of 8, within the compressed memory (4 slots of 2).
  const int64_t L = 8, B = 32;
  auto batch = [&](Generator& g) {
    std::vector<int64_t> x(size_t(B * 3 * L)), y(size_t(B * 3 * L), data::kIgnoreIndex);
    for (int64_t b = 0; b < B; ++b) {
      int64_t* row = x.data() + b * 3 * L;
      std::vector<int64_t> tokens;
      for (int i = 0; i < 4; ++i) tokens.push_back(g.randint(2, 16));
      for (int i = 0; i < 4; ++i) row[2 * i] = row[2 * i + 1] = tokens[size_t(i)];
      for (int64_t t = L; t < 2 * L; ++t) row[t] = g.randint(2, 16);
      row[2 * L] = 1;  // SEP
      for (int i = 0; i < 4; ++i) row[2 * L + 1 + i] = tokens[size_t(i)];
      for (int64_t t = 2 * L + 5; t < 3 * L; ++t) row[t] = g.randint(2, 16);
      for (int i = 0; i < 4; ++i) y[size_t(b * 3 * L + 2 * L + i)] = tokens[size_t(i)];
    }
    return data::Batch{from_vector(x, {B, 3 * L}), from_vector(y, {B, 3 * L})};
  };
  const double compressive =
      accuracy_after_training(R"("mem_len": 8, "cmem_len": 4, "compress_rate": 2)", batch, L, 400, 1, 11);
  const double txl = accuracy_after_training(R"("mem_len": 8)", batch, L, 400, 1, 11);
  MESSAGE("recall 16-24 positions back: compressive_memory (M 8, Mc 4, c 2, conv) ", compressive,
          ", transformer_xl (M 8) ", txl, " (chance 1/14)");
  if (!testing::learning_runs()) return;
  CHECK(compressive >= 0.9);
  CHECK(txl <= 0.3);
}

TEST_CASE("ERNIE-Doc's retrospective feed: a second reading lets a segment see what follows it") {
  // Documents of two segments of 8: x1..x8 | x1..x8. The targets are in the FIRST segment
  // (x_{t+1} after x_t), which one reading cannot know; read twice, the first segment's memory
  // holds the whole document from the skimming read. Shown with plain memory (the feed is a
  // way of reading, independent of shift_mem_down, which learns this task slower).
  const int64_t L = 8, B = 32;
  auto batch = [&](Generator& g) {
    std::vector<int64_t> x(size_t(B * 2 * L)), y(size_t(B * 2 * L), data::kIgnoreIndex);
    for (int64_t b = 0; b < B; ++b) {
      int64_t* row = x.data() + b * 2 * L;
      for (int64_t t = 0; t < L; ++t) row[t] = row[L + t] = g.randint(0, 16);
      for (int64_t t = 0; t + 1 < L; ++t) y[size_t(b * 2 * L + t)] = row[t + 1];
    }
    return data::Batch{from_vector(x, {B, 2 * L}), from_vector(y, {B, 2 * L})};
  };
  const double twice = accuracy_after_training(R"("mem_len": 16)", batch, L, 300, 2, 21);
  const double once = accuracy_after_training(R"("mem_len": 16)", batch, L, 300, 1, 21);
  MESSAGE("next token of a random first segment: read twice ", twice, ", once ", once, " (chance 1/16)");
  if (!testing::learning_runs()) return;
  CHECK(twice >= 0.9);
  CHECK(once <= 0.2);
}
