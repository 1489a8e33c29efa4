// Proofs of the second half of the sparse and memory-efficient attention mixers
// (nn/sparse_attention/): memory-compressed attention, Sparse Flash attention, ETC,
// Poolingformer, the Blockwise Parallel Transformer, Ring attention and MoA. Each against a
// reference written independently (dense masked attention through tz::attention_composite,
// or plain loops), with its row's reductions to full causal attention, in f64.
#include <cmath>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "models/zoo.h"
#include "nn/sparse_attention/blockwise_parallel_transformer.h"
#include "nn/sparse_attention/common.h"
#include "nn/sparse_attention/etc_global_local.h"
#include "nn/sparse_attention/memory_compressed_attn.h"
#include "nn/sparse_attention/moa.h"
#include "nn/sparse_attention/ring_attention.h"
#include "nn/sparse_attention/sparse_flash_attn.h"
#include "tests/test_util.h"
#include "tests/zoo/mixer_runs.h"
#include "tests/zoo/proofs.h"

using namespace tz;
using tz::testing::max_abs_diff;

namespace {
constexpr int64_t kB = 2, kC = 16, kH = 2;

std::shared_ptr<nn::Mixer> make(const std::string& id, const std::string& cfg, DType dt = DType::f64) {
  Generator gen(3);
  auto m = zoo::registry().make_mixer(id, nn::ModelDims{.dim = kC, .heads = kH, .context = 128, .depth = 1},
                                      nn::Config::parse(cfg), gen);
  REQUIRE(m != nullptr);
  m->to(dt);
  return m;
}

using tz::testing::rel_max;
using tz::testing::Run;
using tz::testing::run;

// The largest |difference| of the mixer against flash_attention (full causal attention) with
// the same projection weights (both drew them first from the same seed), y and dx, at T 63.
double against_full(nn::Mixer& m) {
  auto full = make("flash_attention", "{}");
  Generator gen(9);
  Tensor x = randn({kB, 63, kC}, gen, DType::f64), w = randn({kB, 63, kC}, gen, DType::f64);
  Run a = run(m, x, w), r = run(*full, x, w);
  return std::max(max_abs_diff(a.y, r.y), max_abs_diff(a.dx, r.dx));
}

// The positions of y (one sequence, [1, T, C]) that move when x_s is redrawn.
std::vector<int64_t> moved_by(nn::Mixer& m, int64_t T, int64_t s) {
  Generator gen(4);
  Tensor x = randn({1, T, kC}, gen, DType::f64);
  Tensor y0 = m.forward(x, {});
  Tensor x2 = x.clone();
  core::copy_(x2.narrow(1, s, 1), randn({1, 1, kC}, gen, DType::f64));
  Tensor y1 = m.forward(x2, {});
  std::vector<int64_t> moved;
  for (int64_t t = 0; t < T; ++t)
    if (max_abs_diff(y1.narrow(1, t, 1), y0.narrow(1, t, 1)) > 1e-9) moved.push_back(t);
  return moved;
}

// Splits the layer's projections: q, k, v [B, H, T, D].
struct Qkv {
  Tensor q, k, v;
};
Qkv split_qkv(nn::SparseAttention& m, const Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), D = kC / kH;
  Tensor p = m.qkv->forward(x).view({B, T, 3, kH, D});
  return {p.select(2, 0).permute({0, 2, 1, 3}), p.select(2, 1).permute({0, 2, 1, 3}),
          p.select(2, 2).permute({0, 2, 1, 3})};
}
Tensor merge_out(nn::SparseAttention& m, const Tensor& o) {
  return m.out->forward(o.permute({0, 2, 1, 3}).reshape({o.size(0), o.size(2), kC}));
}
// MoA's layer against the same layer with its windows written out as a mask (T 63, 100).
double against_reference_moa() {
  auto base = make("moa", R"({"moa_alpha": [3, 1.5], "moa_beta": [0.125, 0.5], "moa_initial": 2})");
  auto& m = dynamic_cast<nn::SparseAttention&>(*base);
  double worst = 0;
  for (int64_t T : {63, 100}) {
    auto ref = [&](const Tensor& x) {
      Qkv s = split_qkv(m, x);
      auto mask = std::make_shared<kernels::AttentionMask>();
      mask->terms = {kernels::DenseMask::of(
          [](int64_t h, int64_t p, int64_t j) {
            const double a = h == 0 ? 3 : 1.5, b = h == 0 ? 0.125 : 0.5;
            return j < 2 || double(p - j) < std::max(1.0, std::floor(a + b * double(p + 1)));
          },
          kH, T, T)};
      return merge_out(m, attention_composite(s.q, s.k, s.v, AttentionSpec{.causal = true, .mask = mask}));
    };
    Generator gen{uint64_t(T)};
    Tensor x = randn({kB, T, kC}, gen, DType::f64), w = randn({kB, T, kC}, gen, DType::f64);
    const double e = rel_max(run(m, x, w), run(ref, x, w));
    CHECK_MESSAGE(e <= 1e-12, "T ", T, ": ", e);
    worst = std::max(worst, e);
  }
  return worst;
}
}  // namespace

// The reference: keys [kc; k] with the slot rule and the open block written out as one
// explicit mask, through the materialising composite; kc by slices of W (sum_t W_t k_{m k + t}).
TZ_PROOF(memory_compressed_attn,
         "== dense masked reference over [compressed, raw] keys (kappa 3, T 63/100, y and dx), "
         "kappa 1 with W = I is full causal, causal on compressed-block boundaries (perturbation)") {
  const int64_t kappa = 3;
  auto base = make("memory_compressed_attn", R"({"compress_stride": 3})");
  auto& m = dynamic_cast<nn::MemoryCompressedAttention&>(*base);
  double worst = 0;
  for (int64_t T : {63, 100}) {
    const int64_t M = T / kappa;
    auto ref = [&](const Tensor& x) {
      Qkv s = split_qkv(m, x);
      auto compress = [&](const Tensor& z, nn::Linear& conv) {
        Tensor zt = z.permute({0, 2, 1, 3}).reshape({kB, T, kC});  // [B, T, C]
        Tensor acc;
        for (int64_t t = 0; t < kappa; ++t) {
          std::vector<Tensor> rows;
          for (int64_t mm = 0; mm < M; ++mm) rows.push_back(zt.narrow(1, mm * kappa + t, 1));
          Tensor part = matmul(cat(rows, 1), conv.weight.narrow(1, t * kC, kC).transpose(0, 1));
          acc = acc.defined() ? acc + part : part;
        }
        acc = acc + conv.bias;
        return acc.view({kB, M, kH, kC / kH}).permute({0, 2, 1, 3});
      };
      Tensor k = cat({compress(s.k, *m.conv_k), s.k}, 2), v = cat({compress(s.v, *m.conv_v), s.v}, 2);
      auto mask = std::make_shared<kernels::AttentionMask>();
      mask->terms = {kernels::DenseMask::of(
          [&](int64_t, int64_t p, int64_t j) {
            if (j < M) return (j + 1) * kappa - 1 <= p;
            return j - M <= p && j - M >= (p + 1) / kappa * kappa;
          },
          kH, T, M + T)};
      return merge_out(m, attention_composite(s.q, k, v, AttentionSpec{.mask = mask}));
    };
    Generator gen{uint64_t(T)};
    Tensor x = randn({kB, T, kC}, gen, DType::f64), w = randn({kB, T, kC}, gen, DType::f64);
    const double e = rel_max(run(m, x, w), run(ref, x, w));
    CHECK_MESSAGE(e <= 1e-12, "T ", T, ": ", e);
    worst = std::max(worst, e);
  }
  // kappa = 1, W = I, b = 0: every slot is one key, visible iff j <= p.
  auto one = make("memory_compressed_attn", R"({"compress_stride": 1})");
  auto& m1 = dynamic_cast<nn::MemoryCompressedAttention&>(*one);
  for (nn::Linear* conv : {m1.conv_k.get(), m1.conv_v.get()}) {
    core::copy_(conv->weight, eye(kC, DType::f64));
    core::copy_(conv->bias, zeros({kC}, DType::f64));
  }
  const double full = against_full(m1);
  CHECK(full <= 1e-12);
  // Slot 2 covers 6, 7, 8: x_7 moves y_7 (its open block, raw) and y_8 on (slot 2 complete
  // at 8), never y_0..6.
  const std::vector<int64_t> moved = moved_by(m, 12, 7);
  CHECK(moved == std::vector<int64_t>{7, 8, 9, 10, 11});
  // x_6 with kappa 3: y_6 (raw), y_7 (raw), y_8 on; x_8: y_8 on only.
  CHECK(moved_by(m, 12, 8) == std::vector<int64_t>{8, 9, 10, 11});
  MESSAGE("kappa 1 vs full causal: ", full);
  TZ_PROOF_NUMBER("max rel error vs dense masked", worst);
}

// The reference: the bucket-equality and position-causal mask written out over the whole
// sequence (no compaction), through the materialising composite.
TZ_PROOF(sparse_flash_attn,
         "compacted buckets == dense masked reference on original positions (4 buckets, T 63/100, "
         "y and dx), one bucket is full causal, perturbing x_s moves no y_t with t < s") {
  auto base = make("sparse_flash_attn", R"({"hash_buckets": 4})");
  auto& m = dynamic_cast<nn::SparseAttention&>(*base);
  double worst = 0;
  for (int64_t T : {63, 100}) {
    auto ref = [&](const Tensor& x) {
      Qkv s = split_qkv(m, x);
      std::vector<uint8_t> vis;
      for (int64_t b = 0; b < kB; ++b)
        for (int64_t h = 0; h < kH; ++h) {
          const auto bq =
              nn::hash_buckets(s.q.select(0, b).select(0, h).detach().to_vector<double>(), T, kC / kH, 4, h);
          const auto bk =
              nn::hash_buckets(s.k.select(0, b).select(0, h).detach().to_vector<double>(), T, kC / kH, 4, h);
          for (int64_t i = 0; i < T; ++i)
            for (int64_t j = 0; j < T; ++j) vis.push_back(j <= i && bq[size_t(i)] == bk[size_t(j)]);
        }
      // One mask per (b, h): run each batch row alone.
      std::vector<Tensor> rows;
      for (int64_t b = 0; b < kB; ++b) {
        auto mask = std::make_shared<kernels::AttentionMask>();
        mask->terms = {std::make_shared<kernels::DenseMask>(
            std::vector<uint8_t>(vis.begin() + b * kH * T * T, vis.begin() + (b + 1) * kH * T * T), kH, T, T)};
        rows.push_back(attention_composite(s.q.narrow(0, b, 1), s.k.narrow(0, b, 1), s.v.narrow(0, b, 1),
                                           AttentionSpec{.mask = mask}));
      }
      return merge_out(m, cat(rows, 0));
    };
    Generator gen{uint64_t(T)};
    Tensor x = randn({kB, T, kC}, gen, DType::f64), w = randn({kB, T, kC}, gen, DType::f64);
    const double e = rel_max(run(m, x, w), run(ref, x, w));
    CHECK_MESSAGE(e <= 1e-12, "T ", T, ": ", e);
    worst = std::max(worst, e);
  }
  auto one = make("sparse_flash_attn", R"({"hash_buckets": 1})");
  CHECK(against_full(*one) <= 1e-12);
  // Causality on original positions: the compacted index of a key is not its position.
  for (int64_t s : {5, 20, 33}) {
    const std::vector<int64_t> moved = moved_by(m, 40, s);
    CHECK(!moved.empty());
    CHECK(moved.front() >= s);
  }
  TZ_PROOF_NUMBER("max rel error vs dense masked", worst);
}

// The reference: keys [k^g; k^l] with l2g and the banded l2l written out as one mask.
TZ_PROOF(etc_global_local,
         "l2g + banded l2l == dense masked reference over [x^g, x^l] (n_g 3, w 7, T 63/100, y and dx), "
         "w >= T equals full attention over [x^g, x^l]") {
  const int64_t ng = 3;
  double worst = 0;
  for (int64_t w : {7, 100}) {
    auto base = make("etc_global_local", cat_str(R"({"etc_global": 3, "sparse_window": )", w, "}"));
    auto& m = dynamic_cast<nn::EtcGlobalLocal&>(*base);
    for (int64_t T : {63, 100}) {
      auto ref = [&](const Tensor& x) {
        Qkv s = split_qkv(m, x);
        auto [kg, vg] = m.global_kv();
        Tensor k = cat({kg.expand({kB, -1, -1, -1}), s.k}, 2), v = cat({vg.expand({kB, -1, -1, -1}), s.v}, 2);
        if (w >= T)  // full attention over [x^g; x^l]: query i at key position n_g + i
          return merge_out(m, attention_composite(s.q, k, v, AttentionSpec{.causal = true, .q_offset = ng}));
        auto mask = std::make_shared<kernels::AttentionMask>();
        mask->terms = {kernels::DenseMask::of(
            [&](int64_t, int64_t p, int64_t j) { return j < ng || (j - ng <= p && p - (j - ng) < w); }, kH, T, ng + T)};
        return merge_out(m, attention_composite(s.q, k, v, AttentionSpec{.mask = mask}));
      };
      Generator gen{uint64_t(T)};
      Tensor x = randn({kB, T, kC}, gen, DType::f64), wt = randn({kB, T, kC}, gen, DType::f64);
      Run a = run(m, x, wt), r = run(ref, x, wt);
      const double e = rel_max(a, r);
      CHECK_MESSAGE(e <= 1e-12, "w ", w, " T ", T, ": ", e);
      worst = std::max(worst, e);
    }
  }
  TZ_PROOF_NUMBER("max rel error vs dense masked", worst);
}

// The reference: keys [mean-pooled slots; raw] with both levels written out as one mask, the
// slots pooled by explicit sums.
TZ_PROOF(poolingformer,
         "window + pooled complete past windows == dense masked reference (w1 5, w2 23, kappa 3, "
         "T 63/100, y and dx), kappa 1 with w2 >= T is full causal") {
  const int64_t w1 = 5, w2 = 23, kappa = 3;
  auto base = make("poolingformer", R"({"sparse_window": 5, "pool_window": 23, "pool_stride": 3})");
  auto& m = dynamic_cast<nn::SparseAttention&>(*base);
  double worst = 0;
  for (int64_t T : {63, 100}) {
    const int64_t M = T / kappa;
    auto ref = [&](const Tensor& x) {
      Qkv s = split_qkv(m, x);
      auto pool = [&](const Tensor& z) {
        std::vector<Tensor> slots;
        for (int64_t mm = 0; mm < M; ++mm) {
          Tensor acc = z.narrow(2, mm * kappa, 1);
          for (int64_t t = 1; t < kappa; ++t) acc = acc + z.narrow(2, mm * kappa + t, 1);
          slots.push_back(acc * (1.0 / double(kappa)));
        }
        return cat(slots, 2);
      };
      auto mask = std::make_shared<kernels::AttentionMask>();
      mask->terms = {kernels::DenseMask::of(
          [&](int64_t, int64_t p, int64_t j) {
            if (j < M) return p - w2 < j * kappa && (j + 1) * kappa - 1 <= p - w1;
            return j - M <= p && p - (j - M) < w1;
          },
          kH, T, M + T)};
      return merge_out(
          m, attention_composite(s.q, cat({pool(s.k), s.k}, 2), cat({pool(s.v), s.v}, 2), AttentionSpec{.mask = mask}));
    };
    Generator gen{uint64_t(T)};
    Tensor x = randn({kB, T, kC}, gen, DType::f64), w = randn({kB, T, kC}, gen, DType::f64);
    const double e = rel_max(run(m, x, w), run(ref, x, w));
    CHECK_MESSAGE(e <= 1e-12, "T ", T, ": ", e);
    worst = std::max(worst, e);
  }
  auto one = make("poolingformer", R"({"sparse_window": 5, "pool_window": 64, "pool_stride": 1})");
  const double full = against_full(*one);
  CHECK(full <= 1e-12);
  MESSAGE("kappa 1, w2 64 vs full causal: ", full);
  TZ_PROOF_NUMBER("max rel error vs dense masked", worst);
}

// The unfused block: attention over the whole sequence, then the FFN over every position.
TZ_PROOF(blockwise_parallel_transformer,
         "fused per query block == the unfused attention + FFN sublayers (blocks 1, 5, 32, 100, T 63, y and dx)") {
  double worst = 0;
  for (int64_t b : {1, 5, 32, 100}) {
    auto base = make("blockwise_parallel_transformer", cat_str(R"({"bpt_block": )", b, "}"));
    auto& m = dynamic_cast<nn::BlockwiseParallelTransformer&>(*base);
    auto unfused = [&](const Tensor& x) {
      Qkv s = split_qkv(m, x);
      Tensor a = merge_out(m, attention(s.q, s.k, s.v, true));
      return a + m.ffn(x + a);
    };
    Generator gen(11);
    Tensor x = randn({kB, 63, kC}, gen, DType::f64), w = randn({kB, 63, kC}, gen, DType::f64);
    const double e = rel_max(run(m, x, w), run(unfused, x, w));
    CHECK_MESSAGE(e <= 1e-12, "block ", b, ": ", e);
    worst = std::max(worst, e);
  }
  TZ_PROOF_NUMBER("max rel error vs unfused", worst);
}

// Outputs and dq, dk, dv of the ring against the fused causal attention, f64.
TZ_PROOF(ring_attention,
         "P workers exchanging K/V blocks == full causal attention, outputs and grads (P 1, 2, 3, 5, "
         "T 63 and queries 37.. of 57 keys)") {
  double worst = 0;
  for (int64_t P : {1, 2, 3, 5}) {
    for (int64_t off : {0, 37}) {
      const int64_t S = off ? 57 : 63, T = S - off;
      Generator gen{uint64_t(P * 100 + off)};
      Tensor q = randn({kB, kH, T, 8}, gen, DType::f64), k = randn({kB, kH, S, 8}, gen, DType::f64),
             v = randn({kB, kH, S, 8}, gen, DType::f64), g = randn({kB, kH, T, 8}, gen, DType::f64);
      std::vector<Tensor> got, want;
      for (bool ring : {true, false}) {
        Tensor qq = q.clone().requires_grad_(), kk = k.clone().requires_grad_(), vv = v.clone().requires_grad_();
        Tensor o = ring ? nn::ring_attention(qq, kk, vv, off, P) : attention(qq, kk, vv, true, off);
        sum(o * g).backward();
        (ring ? got : want) = {o.detach(), qq.grad(), kk.grad(), vv.grad()};
      }
      for (size_t i = 0; i < 4; ++i) {
        const double e = rel_max(got[i], want[i]);
        CHECK_MESSAGE(e <= 1e-12, "P ", P, " offset ", off, " tensor ", i, ": ", e);
        worst = std::max(worst, e);
      }
    }
  }
  auto m = make("ring_attention", R"({"ring_shards": 3})");
  CHECK(against_full(*m) <= 1e-12);
  TZ_PROOF_NUMBER("max rel error vs full causal", worst);
}

// Elastic windows against their mask written out; a plan from attention mass applied to a
// head's attention, its error bounded by the mass it drops: |o - o'|_inf <= 2 (1 - r_i) max|v|.
// The profile from a trained model's loss sensitivity: proofs_sparse_attention_moa.cpp.
TZ_PROOF(moa,
         "elastic per-head windows == dense masked reference (T 63/100, y and dx), span >= N is full "
         "causal, profile under a density budget keeps the mass it claims, error <= 2 (1 - mass) max|v|") {
  const double e = against_reference_moa();
  CHECK(against_full(*make("moa", R"({"moa_alpha": [1000], "moa_beta": [0]})")) == 0);
  // A head that looks back a little (scores fall with distance) and one that looks far.
  const int64_t N = 64, D = 8;
  Generator gen(12);
  Tensor q = randn({1, kH, N, D}, gen, DType::f64), k = randn({1, kH, N, D}, gen, DType::f64),
         v = randn({1, kH, N, D}, gen, DType::f64);
  const std::vector<double> decay{1.0, 0.02};
  std::vector<std::vector<double>> probs(kH, std::vector<double>(size_t(N * N), 0.0));
  const std::vector<double> qs = q.to_vector<double>(), ks = k.to_vector<double>();
  for (int64_t h = 0; h < kH; ++h)
    for (int64_t p = 0; p < N; ++p) {
      double z = 0;
      for (int64_t j = 0; j <= p; ++j) {
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += qs[size_t((h * N + p) * D + d)] * ks[size_t((h * N + j) * D + d)];
        z += probs[size_t(h)][size_t(p * N + j)] =
            std::exp(s / std::sqrt(double(D)) - decay[size_t(h)] * double(p - j));
      }
      for (int64_t j = 0; j <= p; ++j) probs[size_t(h)][size_t(p * N + j)] /= z;
    }
  // The plan with attention mass as the cost (the hidden mass summed over the queries).
  const std::vector<nn::MoaRule> candidates{{2, 0}, {4, 0}, {8, 0}, {0, 0.25}, {0, 0.5}, {0, 1.0}};
  const nn::MoaPlan prof = nn::moa_plan(probs, N, candidates, 1, 0.5);
  const double used = prof.mean_density();
  CHECK(used <= 0.5);
  CHECK(prof.rules[0].span(N) < prof.rules[1].span(N));  // the local head gets the shorter span
  const double retained0 = 1 - prof.cost[0] / double(N), retained1 = 1 - prof.cost[1] / double(N);
  MESSAGE("profile spans at N 64: ", prof.rules[0].span(N), ", ", prof.rules[1].span(N), "; retained mass ", retained0,
          ", ", retained1, "; density ", used);
  // Apply the profile to the same head, dense and windowed (loops): the gap per query.
  double worst_gap = INFINITY;
  const std::vector<double> vs = v.to_vector<double>();
  double vmax = 0;
  for (double x : vs) vmax = std::max(vmax, std::abs(x));
  const auto vis = nn::moa_pattern(prof.rules, 1).visible;
  for (int64_t h = 0; h < kH; ++h)
    for (int64_t p = 0; p < N; ++p) {
      double kept = 0;
      for (int64_t j = 0; j <= p; ++j)
        if (vis(h, p, j)) kept += probs[size_t(h)][size_t(p * N + j)];
      double gap = 0;
      for (int64_t d = 0; d < D; ++d) {
        double od = 0, os = 0;
        for (int64_t j = 0; j <= p; ++j) {
          const double pj = probs[size_t(h)][size_t(p * N + j)] * vs[size_t((h * N + j) * D + d)];
          od += pj;
          if (vis(h, p, j)) os += pj / kept;
        }
        gap = std::max(gap, std::abs(od - os));
      }
      CHECK(gap <= 2 * (1 - kept) * vmax + 1e-12);
      if (kept < 1 - 1e-9) worst_gap = std::min(worst_gap, 2 * (1 - kept) * vmax - gap);
    }
  MESSAGE("smallest slack of the mass bound where mass is dropped: ", worst_gap);
  CHECK(retained0 >= 0.9);
  TZ_PROOF_NUMBER("max rel error vs dense masked", e);
}
