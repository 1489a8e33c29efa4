// Proofs of the hybrid models (models/hybrids.cpp) and their local attention with a
// window-bounded cache (nn/sparse_attention/local_mqa.h), in f64:
//   - local_attention with G = H KV heads and the rolling cache computes what the plain
//     local_attention layer computes, given the same weights (the window semantics agree);
//   - griffin and samba: decoding token by token from a state of bounded size (the recurrent
//     states and the last w - 1 keys and values per attention layer) equals the full forward
//     over 3 windows and more, and the state's size is the same after 1 token and after all
//     of them, and for a capacity of 24 or of 4096 positions.
//   - samba's loss on the built-in text at 1x, 2x and 4x its training length (printed).
#include <doctest/doctest.h>

#include <filesystem>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "models/model.h"
#include "models/zoo.h"
#include "nn/registry.h"
#include "nn/sparse_attention/local_attention.h"
#include "nn/sparse_attention/local_mqa.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"
#include "train/arena.h"

namespace tz::testing {
namespace {

int64_t state_numel(const models::Model::State& s) {
  int64_t n = 0;
  for (const auto& [name, t] : models::save_model_state(s)) n += t.numel();
  return n;
}

// A tiny f64 LM of the hybrid `id` (its test_config over a small base): the largest
// |step - forward| over T tokens decoded one by one, and the state sizes.
struct DecodeReport {
  double diff = 0;
  int64_t size_first = 0, size_last = 0, size_big = 0;
};
DecodeReport decode_vs_forward(const std::string& id, int64_t T) {
  Generator gen(53);
  nn::Config c = nn::Config::parse(R"({"vocab": 11, "dim": 16, "heads": 2, "context": 64})");
  c.merge(nn::Config::parse(zoo::registry().get(id).test_config));
  c.merge(nn::Config::parse(R"({"sparse_window": 5})"));
  auto lm = zoo::make_lm(c, gen);
  lm->to(DType::f64);
  lm->eval();
  NoGradGuard no_grad;
  Tensor ids = randint(0, 11, {2, T}, gen);
  Tensor full = lm->forward(ids);
  auto state = lm->make_state(2, 24);
  DecodeReport r;
  r.size_big = state_numel(lm->make_state(2, 4096));
  for (int64_t t = 0; t < T; ++t) {
    r.diff = std::max(r.diff, max_abs_diff(lm->step(ids.narrow(1, t, 1), state), full.narrow(1, t, 1)));
    if (t == 0) r.size_first = state_numel(state);
  }
  r.size_last = state_numel(state);
  return r;
}

void check_bounded(const std::string& id) {
  const DecodeReport r = decode_vs_forward(id, 23);  // window 5: more than 4 windows
  CHECK(r.diff <= 1e-9);
  CHECK(r.size_first == r.size_last);
  CHECK(r.size_first == r.size_big);
  MESSAGE(id, ": step vs forward over 23 tokens (window 5) ", r.diff, "; state size (numbers) after 1 token ",
          r.size_first, ", after 23 ", r.size_last, ", with capacity 4096 ", r.size_big);
  TZ_PROOF_NUMBER("max |step - forward|", r.diff);
}

}  // namespace

TEST_CASE("local_attention with G = H KV heads and the window cache equals the plain local_attention") {
  Generator gen(57);
  const int64_t C = 8, H = 2, w = 4;
  nn::SparseAttention plain(
      nn::SparseAttentionOptions{.dim = C, .heads = H, .name = "local", .attend = nn::local_attend(w)}, gen);
  nn::LocalMqa mqa(nn::LocalMqaOptions{.dim = C, .heads = H, .kv_heads = H, .window = w}, gen);
  plain.to(DType::f64);
  mqa.to(DType::f64);
  NoGradGuard no_grad;
  core::copy_(mqa.q_proj->weight, plain.qkv->weight.narrow(0, 0, C));
  core::copy_(mqa.kv_proj->weight, plain.qkv->weight.narrow(0, C, 2 * C));
  core::copy_(mqa.out->weight, plain.out->weight);
  Tensor x = randn({2, 13, C}, gen, DType::f64);
  const double d = max_abs_diff(mqa.forward(x, {}), plain.forward(x, {}));
  // and in chunks of 3 from the bounded cache
  auto s = mqa.make_state(2, 13, DType::f64);
  std::vector<Tensor> parts;
  for (int64_t t = 0; t < 13; t += 3) {
    const int64_t n = std::min<int64_t>(3, 13 - t);
    parts.push_back(mqa.forward(x.narrow(1, t, n), {.start = t}, s.get()));
  }
  const double chunks = max_abs_diff(cat(parts, 1), plain.forward(x, {}));
  // the plain layer caches every position, the window cache w - 1 of them
  auto numel = [](nn::MixerState& st) {
    int64_t n = 0;
    for (const auto& [name, t] : nn::save_state(st)) n += t.numel();
    return n;
  };
  const int64_t plain_small = numel(*plain.make_state(2, 13, DType::f64)),
                plain_big = numel(*plain.make_state(2, 1300, DType::f64)),
                mqa_big = numel(*mqa.make_state(2, 1300, DType::f64));
  MESSAGE("local MQA (G = H) vs local_attention: whole ", d, ", in chunks of 3 from the window cache ", chunks,
          "; state numbers for 13 / 1300 positions: plain ", plain_small, " / ", plain_big, ", window cache ",
          numel(*s), " / ", mqa_big);
  CHECK(d <= 1e-12);
  CHECK(chunks <= 1e-12);
  CHECK(plain_big > plain_small);
  CHECK(mqa_big == numel(*s));
}

TZ_PROOF(griffin, "decode with bounded state (RG-LRU state + window KV of one head) == full forward") {
  check_bounded("griffin");
}

TZ_PROOF(samba, "decode with bounded state (Mamba state + window KV) == full forward") { check_bounded("samba"); }

// Samba's length extrapolation (its paper's claim: the loss stays flat far past the training
// length): trained on the built-in text at 64 positions, evaluated at 64, 128 and 256.
TEST_CASE("samba: loss on text at 1x, 2x, 4x its training length") {
  if (!learning_runs()) return;
  arena::Options o{.models = {{"samba", zoo::registry().get("samba").test_config}},
                   .task = "text",
                   .steps = 300,
                   .batch = 16,
                   .seq_len = 64,
                   .lr = 3e-3,
                   .base = R"({"dim": 32, "heads": 2})",
                   .eval_lengths = {1, 2, 4},
                   .threads = 1,
                   .out_dir = std::string(TZ_BINARY_DIR) + "/proofs_hybrids_arena"};
  const arena::Result r = arena::run(o).at(0);
  for (int64_t m : {1, 2, 4}) REQUIRE(r.val_loss.count(m));
  MESSAGE("samba on text (trained at 64): val loss @1x ", r.val_loss.at(1), ", @2x ", r.val_loss.at(2), ", @4x ",
          r.val_loss.at(4), " (", r.wall_s, " s)");
  CHECK(r.val_loss.at(4) <= r.val_loss.at(1) * 1.05);
}

}  // namespace tz::testing
