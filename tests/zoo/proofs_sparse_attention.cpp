// Proofs of the sparse and memory-efficient exact attention mixers (nn/sparse_attention/):
// each mixer's output and input gradient equal those of the same layer (same weights) whose
// attention is the materialising reference (tz::attention_composite) with the variant's
// pattern written out as an explicit boolean mask, at ragged T (63, 100) and windows, strides
// and blocks that are no multiples of the 32-wide tile, in f64; plus each row's reductions
// (window >= T, one block, one branch, any chunk == full causal attention), LongNet's
// denominator-weighted merge against the softmax over its pairs counted with multiplicity,
// and FlashAttention's tile sizes and O(T) activation memory.
#include <cmath>

#include "autograd/ops.h"
#include "core/allocator.h"
#include "core/creation.h"
#include "core/kernels/attention_layout.h"
#include "core/random.h"
#include "models/zoo.h"
#include "nn/sparse_attention/blockwise_attention.h"
#include "nn/sparse_attention/common.h"
#include "nn/sparse_attention/longnet_dilated.h"
#include "nn/sparse_attention/memory_efficient_attn.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;
using tz::testing::max_abs_diff;
using tz::testing::rel_max;

namespace {
constexpr int64_t kB = 2, kC = 16, kH = 2;
using Pred = std::function<bool(int64_t h, int64_t p, int64_t j)>;

std::shared_ptr<nn::SparseAttention> make(const std::string& id, const std::string& cfg, DType dt = DType::f64) {
  Generator gen(3);
  auto m = std::dynamic_pointer_cast<nn::SparseAttention>(zoo::registry().make_mixer(
      id, nn::ModelDims{.dim = kC, .heads = kH, .context = 128, .depth = 1}, nn::Config::parse(cfg), gen));
  REQUIRE(m != nullptr);
  m->to(dt);
  return m;
}

struct Run {
  Tensor y, dx;
};
// The mixer's forward, or (pred given) the same layer with the reference attention under the
// explicit mask of pred; y and dL/dx for L = sum(y * w).
Run run(nn::SparseAttention& m, const Tensor& x0, const Tensor& w, const Pred& pred = nullptr) {
  Tensor x = x0.detach().clone().requires_grad_();
  Tensor y;
  if (!pred) {
    y = m.forward(x, {});
  } else {
    const int64_t B = x.size(0), T = x.size(1), D = kC / kH;
    Tensor p = m.qkv->forward(x).view({B, T, 3, kH, D});
    auto mask = std::make_shared<kernels::AttentionMask>();
    mask->terms = {kernels::DenseMask::of(pred, kH, T, T)};
    Tensor o = attention_composite(p.select(2, 0).permute({0, 2, 1, 3}), p.select(2, 1).permute({0, 2, 1, 3}),
                                   p.select(2, 2).permute({0, 2, 1, 3}), AttentionSpec{.causal = true, .mask = mask});
    y = m.out->forward(o.permute({0, 2, 1, 3}).reshape({B, T, kC}));
  }
  sum(y * w).backward();
  return {y.detach(), x.grad()};
}

// The largest relative error of mixer vs reference (y and dx) at T = 63 and 100.
double against_reference(const std::string& id, const std::string& cfg, const Pred& pred) {
  auto m = make(id, cfg);
  double worst = 0;
  for (int64_t T : {63, 100}) {
    Generator gen{uint64_t(T)};
    Tensor x = randn({kB, T, kC}, gen, DType::f64), w = randn({kB, T, kC}, gen, DType::f64);
    Run a = run(*m, x, w), r = run(*m, x, w, pred);
    const double e = std::max(rel_max(a.y, r.y), rel_max(a.dx, r.dx));
    CHECK_MESSAGE(e <= 1e-12, id, " ", cfg, " T ", T, ": ", e);
    worst = std::max(worst, e);
  }
  return worst;
}

// The largest |difference| of the mixer against flash_attention (full causal attention) with
// the same weights, y and dx, at T = 63.
double against_full(const std::string& id, const std::string& cfg) {
  auto m = make(id, cfg), full = make("flash_attention", "{}");
  Generator gen(9);
  Tensor x = randn({kB, 63, kC}, gen, DType::f64), w = randn({kB, 63, kC}, gen, DType::f64);
  Run a = run(*m, x, w), r = run(*full, x, w);
  return std::max(max_abs_diff(a.y, r.y), max_abs_diff(a.dx, r.dx));
}
}  // namespace

TZ_PROOF(local_attention,
         "banded kernel == dense masked reference (w 37, T 63/100), w >= T is full causal, "
         "output t independent of x before t - w + 1") {
  const double e = against_reference("local_attention", R"({"sparse_window": 37})",
                                     [](int64_t, int64_t p, int64_t j) { return p - j < 37; });
  CHECK(against_full("local_attention", R"({"sparse_window": 63})") == 0);
  CHECK(against_full("local_attention", R"({"sparse_window": 500})") == 0);
  // One layer: y_t moves with x_{t-w+1} and not with x_{t-w}.
  auto m = make("local_attention", R"({"sparse_window": 5})");
  Generator gen(4);
  Tensor x = randn({1, 20, kC}, gen, DType::f64);
  Tensor y0 = m->forward(x, {});
  for (int64_t s : {14, 15}) {
    Tensor x2 = x.clone();
    core::copy_(x2.narrow(1, s, 1), randn({1, 1, kC}, gen, DType::f64));
    const double moved = max_abs_diff(m->forward(x2, {}).narrow(1, 19, 1), y0.narrow(1, 19, 1));
    if (s == 14) CHECK(moved == 0);
    if (s == 15) CHECK(moved > 1e-6);
  }
  TZ_PROOF_NUMBER("max rel error vs dense masked", e);
}

TZ_PROOF(sparse_transformer,
         "strided and fixed, merged and split heads == dense masked reference (l 7, c 2, "
         "T 63/100), reachability in two layers proved on the layout (test_core)") {
  double e = against_reference("sparse_transformer", R"({"sparse_pattern": "strided", "sparse_stride": 7})",
                               [](int64_t, int64_t p, int64_t j) { return p - j < 7 || (p - j) % 7 == 0; });
  e = std::max(e,
               against_reference("sparse_transformer",
                                 R"({"sparse_pattern": "fixed", "sparse_stride": 7, "sparse_summary": 2, )"
                                 R"("sparse_heads": "split"})",
                                 [](int64_t h, int64_t p, int64_t j) { return h == 0 ? p / 7 == j / 7 : j % 7 >= 5; }));
  CHECK(against_full("sparse_transformer", R"({"sparse_stride": 1})") == 0);
  TZ_PROOF_NUMBER("max rel error vs dense masked", e);
}

TZ_PROOF(longformer,
         "dilated window + global prefix == dense masked reference (w 9, d 1/3, g 3, T 63/100), "
         "w >= T is full causal") {
  const double e =
      against_reference("longformer", R"({"sparse_window": 9, "sparse_dilations": [1, 3], "sparse_global": 3})",
                        [](int64_t h, int64_t p, int64_t j) {
                          const int64_t d = h == 0 ? 1 : 3;
                          return j < 3 || (p - j < 9 * d && (p - j) % d == 0);
                        });
  CHECK(against_full("longformer", R"({"sparse_window": 64, "sparse_global": 0})") == 0);
  TZ_PROOF_NUMBER("max rel error vs dense masked", e);
}

TZ_PROOF(bigbird,
         "window + global + seeded random blocks == dense masked reference with the same seed (b 12, "
         "T 63/100), a window of all blocks is full causal") {
  const kernels::SparsePattern bb = kernels::bigbird_pattern(12, 1, 1, 2, 5, kH, 100);
  const double e = against_reference(
      "bigbird",
      R"({"sparse_block": 12, "sparse_window_blocks": 1, "sparse_global": 1, "sparse_random": 2, "sparse_seed": 5})",
      [bb](int64_t h, int64_t p, int64_t j) { return bb.visible(h, p, j); });
  CHECK(against_full("bigbird", R"({"sparse_block": 8, "sparse_window_blocks": 8, "sparse_random": 0})") == 0);
  TZ_PROOF_NUMBER("max rel error vs dense masked", e);
}

TZ_PROOF(blockwise_attention,
         "block kernel == dense masked reference (b 13, shifts 0/1, T 63/100), one block "
         "(identity head) is full causal attention") {
  const double e = against_reference("blockwise_attention", R"({"sparse_block": 13})",
                                     [](int64_t h, int64_t p, int64_t j) { return j / 13 == p / 13 - h; });
  // n = 1: the identity head (head 0, H = 1 here) equals full causal attention exactly.
  Generator gen(2);
  Tensor q = randn({1, 1, 40, 4}, gen, DType::f64), k = randn({1, 1, 40, 4}, gen, DType::f64),
         v = randn({1, 1, 40, 4}, gen, DType::f64);
  const double one = max_abs_diff(nn::attend_pattern(nn::blockwise_pattern(64))(q, k, v, 0), attention(q, k, v, true));
  CHECK(one == 0);
  TZ_PROOF_NUMBER("max rel error vs dense masked", e);
}

// LongNet's merge against its definition: o_i = sum_j c_ij e^{s_ij} v_j / sum_j c_ij e^{s_ij},
// c_ij the number of branches that hold (i, j) (loops in f64).
TZ_PROOF(longnet_dilated,
         "merged dilated branches == softmax over the branches' pairs with multiplicity "
         "(w0 5, 3 branches, T 63), one branch with w = T, r = 1 is full causal") {
  const int64_t T = 63, D = 4, w0 = 5, N = 3;
  Generator gen(6);
  Tensor q = randn({1, kH, T, D}, gen, DType::f64), k = randn({1, kH, T, D}, gen, DType::f64),
         v = randn({1, kH, T, D}, gen, DType::f64);
  Tensor o = nn::longnet_attend(w0, N)(q, k, v, 0);
  std::vector<double> ref(size_t(kH * T * D), 0.0);
  const std::vector<double> qs = q.to_vector<double>(), ks = k.to_vector<double>(), vs = v.to_vector<double>();
  for (int64_t h = 0; h < kH; ++h)
    for (int64_t i = 0; i < T; ++i) {
      double den = 0;
      std::vector<double> num(size_t(D), 0.0);
      for (int64_t j = 0; j <= i; ++j) {
        int64_t c = 0;
        for (int64_t n = 0; n < N; ++n) {
          const int64_t w = w0 << n, r = int64_t(1) << n;
          c += i / w == j / w && i % r == h % r && j % r == h % r;
        }
        if (c == 0) continue;
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += qs[size_t((h * T + i) * D + d)] * ks[size_t((h * T + j) * D + d)];
        const double e = double(c) * std::exp(s / std::sqrt(double(D)));
        den += e;
        for (int64_t d = 0; d < D; ++d) num[size_t(d)] += e * vs[size_t((h * T + j) * D + d)];
      }
      for (int64_t d = 0; d < D; ++d) ref[size_t((h * T + i) * D + d)] = den > 0 ? num[size_t(d)] / den : 0;
    }
  const double e = rel_max(o, from_vector(ref, {1, kH, T, D}));
  CHECK(e <= 1e-12);
  CHECK(max_abs_diff(nn::longnet_attend(T, 1)(q, k, v, 0), attention(q, k, v, true)) == 0);
  CHECK(against_full("longnet_dilated", R"({"sparse_segment": 64, "sparse_branches": 1})") == 0);
  TZ_PROOF_NUMBER("max rel error vs multiset softmax", e);
}

TZ_PROOF(flash_attention,
         "equals naive softmax attention for ragged T around the 32 tile (1..100), f64 1e-12 "
         "and f32 1e-5, activation memory O(T)") {
  double worst = 0;
  for (int64_t T : {1, 31, 32, 33, 63, 64, 65, 100}) {
    auto m = make("flash_attention", "{}");
    Generator gen{uint64_t(T)};
    Tensor x = randn({kB, T, kC}, gen, DType::f64), w = randn({kB, T, kC}, gen, DType::f64);
    Run a = run(*m, x, w), r = run(*m, x, w, [](int64_t, int64_t, int64_t) { return true; });
    const double e = std::max(rel_max(a.y, r.y), rel_max(a.dx, r.dx));
    CHECK_MESSAGE(e <= 1e-12, "T ", T, ": ", e);
    worst = std::max(worst, e);
    auto m32 = make("flash_attention", "{}", DType::f32);
    Run a32 = run(*m32, x.to(DType::f32), w.to(DType::f32));
    const double e32 = std::max(rel_max(a32.y, r.y), rel_max(a32.dx, r.dx));
    CHECK_MESSAGE(e32 <= 1e-5, "f32 T ", T, ": ", e32);
  }
  // Peak bytes of one attention forward + backward (q, k, v given): grows ~2x per doubling
  // of T (the composite's T x S scores would grow 4x).
  std::vector<double> peak;
  for (int64_t T : {512, 1024, 2048}) {
    Generator gen(1);
    Tensor q = randn({1, 2, T, 16}, gen).requires_grad_(), k = randn({1, 2, T, 16}, gen).requires_grad_(),
           v = randn({1, 2, T, 16}, gen).requires_grad_();
    const size_t base = allocator_stats().live_bytes;
    reset_allocator_peak();
    sum(attention(q, k, v, true)).backward();
    peak.push_back(double(allocator_stats().peak_bytes - base));
  }
  MESSAGE("peak bytes at T 512, 1024, 2048: ", peak[0], ", ", peak[1], ", ", peak[2]);
  CHECK(peak[1] / peak[0] <= 2.2);
  CHECK(peak[2] / peak[1] <= 2.2);
  TZ_PROOF_NUMBER("max rel error vs naive", worst);
}

TZ_PROOF(memory_efficient_attn,
         "chunked queries and keys merged by lse == full causal attention for chunks 1, 3, "
         "4, 32, 100 (T 63), and at a cache offset") {
  double worst = 0;
  for (int64_t c : {1, 3, 4, 32, 100}) {
    const double e = against_full("memory_efficient_attn", cat_str(R"({"sparse_chunk": )", c, "}"));
    CHECK_MESSAGE(e <= 1e-12, "chunk ", c, ": ", e);
    worst = std::max(worst, e);
  }
  // Queries 37.. of 57 keys (a cache offset off the chunk grid).
  Generator gen(8);
  Tensor q = randn({1, 2, 20, 4}, gen, DType::f64), k = randn({1, 2, 57, 4}, gen, DType::f64),
         v = randn({1, 2, 57, 4}, gen, DType::f64);
  const double off = rel_max(nn::chunked_attention(q, k, v, 37, 5), attention(q, k, v, true, 37));
  CHECK(off <= 1e-12);
  TZ_PROOF_NUMBER("max abs error vs full", std::max(worst, off));
}
