// Proof of the Memorizing Transformer (nn/memory/memorizing_transformer.h): the memory
// attention is softmax attention over the top-k pairs (all of them when k = |memory|), no
// gradient reaches the memory, a pair written many segments ago is found and read back, and
// decoding across segments equals the forward. All in f64.
#include <cmath>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/text.h"
#include "models/zoo.h"
#include "nn/attention/features/qk_norm.h"
#include "nn/memory/memorizing_transformer.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
double max_abs(const Tensor& t) { return testing::max_abs_diff(t, zeros_like(t)); }

// Plain loops: softmax(q . K_j) V over the memory rows `rows` of each (b, h, i) (all when empty).
Tensor memory_attention_loops(const Tensor& q, const Tensor& mk, const Tensor& mv, const Tensor& rows) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), n = mk.size(2);
  const int64_t k = rows.defined() ? rows.size(3) : n;
  Tensor out = zeros({B, H, T, D}, DType::f64);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> s(static_cast<size_t>(k));
        std::vector<int64_t> j(static_cast<size_t>(k));
        double top = -INFINITY, den = 0;
        for (int64_t r = 0; r < k; ++r) {
          j[size_t(r)] = rows.defined() ? int64_t(rows.at({b, h, i, r})) : r;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += q.at({b, h, i, d}) * mk.at({b, h, j[size_t(r)], d});
          s[size_t(r)] = dot;
          top = std::max(top, dot);
        }
        for (double& x : s) den += (x = std::exp(x - top));
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0;
          for (int64_t r = 0; r < k; ++r) acc += s[size_t(r)] * mv.at({b, h, j[size_t(r)], d});
          out.set({b, h, i, d}, acc / den);
        }
      }
  return out;
}

std::shared_ptr<nn::MemorizingAttention> layer(int64_t C, int64_t H, int64_t L, int64_t N, int64_t k,
                                               uint64_t seed = 5) {
  Generator gen(seed);
  auto m = std::make_shared<nn::MemorizingAttention>(
      nn::MemorizingOptions{.dim = C, .heads = H, .segment = L, .memory = N, .k = k}, gen);
  m->to(DType::f64);
  m->eval();
  return m;
}

// One head reading keys from dims [0, C/2) and values from all C: q = k = [x_key, 0], v = x,
// W_o = I; g = 1000 (one key dominates), σ(b) ~ 1 (the memory's share).
void plant_weights(nn::MemorizingAttention& m) {
  NoGradGuard no_grad;
  const int64_t C = m.options.dim;
  core::fill_(m.qkv->weight, 0.0);
  core::fill_(m.qkv->bias, 0.0);
  core::fill_(m.out->bias, 0.0);
  core::fill_(m.out->weight, 0.0);
  for (int64_t c = 0; c < C; ++c) {
    if (c < C / 2) m.qkv->weight.set({c, c}, 1.0), m.qkv->weight.set({C + c, c}, 1.0);
    m.qkv->weight.set({2 * C + c, c}, 1.0);
    m.out->weight.set({c, c}, 1.0);
  }
  core::fill_(m.scale, 1000.0);
  core::fill_(m.gate, 30.0);
}

struct Retrieval {
  bool hit = false;  // the planted pair's memory row is the top hit
  double error = 0;  // |y - planted| / |planted| at the query
  int64_t memory = 0;
};

// 8 segments of 4 positions, random tokens; the token at position 1 (segment 0) is planted and
// queried again at position 30 (segment 7) with another value half.
Retrieval retrieve(int64_t capacity) {
  const int64_t C = 16, L = 4, T = 32, at = 1, query = 30;
  auto m = layer(C, 1, L, capacity, 4);
  plant_weights(*m);
  Generator gen(11);
  Tensor x = randn({1, T, C}, gen, DType::f64);
  for (int64_t c = 0; c < C; ++c) {
    x.set({0, at, c}, c < C / 2 ? (c == 0 ? 1.0 : 0.0) : 5.0);  // key e_0, value 5s
    if (c < C / 2) x.set({0, query, c}, c == 0 ? 2.0 : 0.0);    // the same key direction
  }
  NoGradGuard no_grad;
  auto st = m->make_state(1, T, DType::f64);
  m->forward(x.narrow(1, 0, 28), {.start = 0}, st.get());  // segments 0..6 written
  auto& s = dynamic_cast<nn::MemorizingState&>(*st);
  Retrieval r{.memory = s.mem_k.size(2)};
  const Tensor hits = nn::knn_search(m->queries(x.narrow(1, query, 1)), s.mem_k, 4);
  const int64_t planted_row = at - (28 - r.memory);  // FIFO: row j holds position 28 - n + j
  r.hit = planted_row >= 0 && int64_t(hits.at({0, 0, 0, 0})) == planted_row;
  Tensor y = m->forward(x.narrow(1, 28, 4), {.start = 28}, st.get());
  const Tensor planted = x.narrow(1, at, 1).select(1, 0);
  r.error = max_abs(y.narrow(1, query - 28, 1).select(1, 0) - planted) / max_abs(planted);
  Tensor full = m->forward(x, nn::MixerContext{});  // one forward from scratch runs the same segments
  CHECK(testing::max_abs_diff(full.narrow(1, 28, 4), y) <= 1e-12);
  return r;
}
}  // namespace

TZ_PROOF(memorizing_transformer,
         "k = |memory| is full softmax attention over the memory and no gradient reaches the memory and a pair "
         "written 7 segments ago is retrieved and decoding equals the forward") {
  // 1. The memory attention against plain loops: every pair (k >= n), and the top-k hits.
  Generator gen(3);
  const Tensor mk = nn::l2_normalize(randn({2, 2, 7, 8}, gen, DType::f64)), mv = randn({2, 2, 7, 8}, gen, DType::f64);
  const Tensor q_hat = nn::l2_normalize(randn({2, 2, 5, 8}, gen, DType::f64)), q = q_hat * 3.0;
  const Tensor g = full({2}, 3.0, DType::f64);
  double full_err = 0;
  for (int64_t k : {7, 32})
    full_err = std::max(full_err, testing::max_abs_diff(nn::knn_memory_attention(q_hat, g, mk, mv, k),
                                                        memory_attention_loops(q, mk, mv, Tensor())));
  const double topk_err = testing::max_abs_diff(nn::knn_memory_attention(q_hat, g, mk, mv, 3),
                                                memory_attention_loops(q, mk, mv, nn::knn_search(q_hat, mk, 3)));
  const double topk_moves = testing::max_abs_diff(nn::knn_memory_attention(q_hat, g, mk, mv, 3),
                                                  nn::knn_memory_attention(q_hat, g, mk, mv, 7));
  MESSAGE("memory attention vs plain softmax over the memory: k = |memory| ", full_err, ", k = 3 over its hits ",
          topk_err, " (k = 3 differs from k = 7 by ", topk_moves, ")");
  CHECK(full_err <= 1e-14);
  CHECK(topk_err <= 1e-14);
  CHECK(topk_moves > 1e-3);

  // 2. No gradient into the memory: a state carries the pairs of 2 segments (call 1) into the
  // third (call 2); they move its output, yet the gradient w.r.t. call 1's inputs is exactly 0.
  auto m = layer(16, 2, 4, 6, 3);
  Tensor x1 = randn({2, 8, 16}, gen, DType::f64), x2 = randn({2, 4, 16}, gen, DType::f64);
  x1.requires_grad_(true);
  x2.requires_grad_(true);
  const Tensor r = randn({2, 4, 16}, gen, DType::f64);
  auto st = m->make_state(2, 12, DType::f64);
  m->forward(x1, {.start = 0}, st.get());
  const auto& s = dynamic_cast<const nn::MemorizingState&>(*st);
  CHECK(s.mem_k.size(2) == 6);  // FIFO: 8 pairs written, capacity 6
  CHECK((!s.mem_k.requires_grad() && !s.mem_v.requires_grad()));
  sum(m->forward(x2, {.start = 8}, st.get()) * r).backward();
  const double into_memory = x1.grad().defined() ? max_abs(x1.grad()) : 0.0, own = max_abs(x2.grad());
  const double gate_grad = max_abs(m->gate.grad());
  double moved = 0;
  {
    NoGradGuard no_grad;
    auto a = m->make_state(2, 12, DType::f64), b = m->make_state(2, 12, DType::f64);
    m->forward(x1.detach(), {.start = 0}, a.get());
    m->forward(full({2, 8, 16}, 0.5, DType::f64), {.start = 0}, b.get());
    moved = testing::max_abs_diff(m->forward(x2.detach(), {.start = 8}, a.get()),
                                  m->forward(x2.detach(), {.start = 8}, b.get()));
  }
  // For contrast: the three segments in one call, whose own memory keeps its gradient.
  Tensor x = cat({x1.detach(), x2.detach()}, 1);
  x.requires_grad_(true);
  sum(m->forward(x, nn::MixerContext{}).narrow(1, 8, 4) * r).backward();
  const double within_call = max_abs(x.grad().narrow(1, 0, 8));
  MESSAGE("gradient w.r.t. the inputs of the 2 segments a state carries ", into_memory, " (own segment ", own,
          ", gate ", gate_grad, "); that memory moves the output by ", moved,
          "; the same segments inside one call: gradient ", within_call);
  CHECK(into_memory == 0.0);
  CHECK(own > 1e-6);
  CHECK(gate_grad > 1e-6);
  CHECK(moved > 1e-3);
  CHECK(within_call > 1e-6);

  // 3. Retrieval across segments: planted in segment 0, queried in segment 7.
  const Retrieval kept = retrieve(64), evicted = retrieve(16);
  MESSAGE("pair planted 7 segments back: memory of ", kept.memory, " holds it, top hit ", kept.hit,
          ", output vs its value rel error ", kept.error, "; FIFO of ", evicted.memory, " has dropped it: top hit ",
          evicted.hit, ", rel error ", evicted.error);
  CHECK(kept.hit);
  CHECK(kept.error <= 1e-6);
  CHECK(!evicted.hit);
  CHECK(evicted.error > 0.3);

  // 4. Decoding token by token across segments (FIFO evicting) equals the forward.
  double step = 0;
  for (const char* pos : {"rope", "t5_rel_bias", "learned_abs_pe"}) {
    const double d =
        testing::lm_step_vs_forward(cat_str(R"({"mixer": ["vanilla_mha", "memorizing_transformer"], )", R"("pos": ")",
                                            pos, R"(", "knn_segment": 3, "knn_memory": 5, )", R"("knn_k": 2})"),
                                    14);
    MESSAGE("decode vs forward over 14 tokens (segments of 3, memory 5, k 2), pos ", std::string(pos), ": ", d);
    step = std::max(step, d);
  }
  CHECK(step <= 1e-9);
  TZ_PROOF_NUMBER("k=|memory| vs full attention", full_err);
}

TEST_CASE("memorizing_transformer names its bad keys") {
  Generator gen(1);
  for (const char* bad : {R"("knn_k": 0)", R"("knn_memory": 0)", R"("knn_segment": 0)"}) {
    const std::string key = std::string(bad).substr(1, std::string(bad).find('"', 1) - 1);
    CHECK_THROWS_WITH_AS(
        zoo::make_lm(cat_str(R"({"vocab": 11, "dim": 16, "depth": 1, "heads": 2, "mixer": "memorizing_transformer", )",
                             bad, "}"),
                     gen),
        doctest::Contains((key + " must be >= 1").c_str()), Error);
  }
}
