// Proofs of the approximate attention mixers (nn/approx_attention/): each against softmax
// attention written out with the plain ops, in f64.
#include <array>
#include <cmath>

#include "autograd/ops.h"
#include "core/allocator.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/kernels/attention_layout.h"
#include "models/zoo.h"
#include "nn/approx_attention/linformer.h"
#include "nn/approx_attention/reformer_lsh.h"
#include "nn/approx_attention/sdm.h"
#include "tests/test_util.h"
#include "tests/zoo/mixer_runs.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
constexpr int64_t kB = 2, kC = 16, kH = 2, kD = kC / kH;

std::shared_ptr<nn::Mixer> make(const std::string& id, const std::string& cfg, int64_t context, DType dt = DType::f64) {
  Generator gen(3);
  auto m = zoo::registry().make_mixer(id, nn::ModelDims{.dim = kC, .heads = kH, .context = context, .depth = 1},
                                      nn::Config::parse(cfg), gen);
  REQUIRE(m != nullptr);
  m->to(dt);
  return m;
}

using tz::testing::rel_max;
using tz::testing::run;

// q, k, v [B, H, T, D] of a layer with a fused qkv projection, and its output projection.
struct Qkv {
  Tensor q, k, v;
};
Qkv split_qkv(nn::Linear& qkv, const Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1);
  Tensor p = qkv.forward(x).view({B, T, 3, kH, kD});
  return {p.select(2, 0).permute({0, 2, 1, 3}), p.select(2, 1).permute({0, 2, 1, 3}),
          p.select(2, 2).permute({0, 2, 1, 3})};
}
Tensor merge_out(nn::Linear& out, const Tensor& o) {
  return out.forward(o.permute({0, 2, 1, 3}).reshape({o.size(0), o.size(2), kC}));
}

// Linformer's heads written out: E, F [H or 1, k, n] applied to keys and values zero-padded
// from T to n (the paper's fixed length), scores [T, k] materialised, no mask.
Tensor linformer_reference(nn::Linformer& m, const Tensor& x) {
  const int64_t T = x.size(1), n = m.context;
  Qkv s = split_qkv(*m.qkv, x);
  auto pad = [&](const Tensor& z) { return T == n ? z : cat({z, zeros({z.size(0), kH, n - T, kD}, z.dtype())}, 2); };
  const Tensor& F = m.share == nn::Linformer::Share::kv ? m.E : m.F;
  Tensor kp = matmul(m.E, pad(s.k)), vp = matmul(F, pad(s.v));
  Tensor p = softmax(matmul(s.q, kp.transpose(2, 3)) * (1.0 / std::sqrt(double(kD))));
  return merge_out(*m.out, matmul(p, vp));
}
}  // namespace

TZ_PROOF(linformer,
         "k = n with E = F = I is softmax attention (y, dx), == the zero-padded written-out form for each "
         "sharing (T < n), memory linear in T at fixed k, not causal (as documented)") {
  Generator gen(5);
  double worst = 0;
  // 1. k = n = T, E = F = I: every projected key is one key, so plain bidirectional attention.
  for (const char* share : {"headwise", "none", "kv"}) {
    auto base = make("linformer", cat_str(R"({"linformer_k": 24, "linformer_share": ")", share, R"("})"), 24);
    auto& m = dynamic_cast<nn::Linformer&>(*base);
    for (Tensor* t : {&m.E, &m.F})
      if (t->defined()) core::copy_(*t, eye(24, DType::f64).unsqueeze(0).expand(t->shape()));
    auto full = [&](const Tensor& x) {
      Qkv s = split_qkv(*m.qkv, x);
      return merge_out(*m.out, attention_composite(s.q, s.k, s.v, AttentionSpec{}));
    };
    Tensor x = randn({kB, 24, kC}, gen, DType::f64), w = randn({kB, 24, kC}, gen, DType::f64);
    const double e = rel_max(run([&](const Tensor& z) { return m.forward(z, {}); }, x, w), run(full, x, w));
    CHECK_MESSAGE(e <= 1e-12, share, ": ", e);
    worst = std::max(worst, e);
  }
  // 2. Learned E, F (k 6 < T 17 < n 24): the layer == the written-out form over zero-padded keys.
  for (const char* share : {"headwise", "none", "kv"}) {
    auto base = make("linformer", cat_str(R"({"linformer_k": 6, "linformer_share": ")", share, R"("})"), 24);
    auto& m = dynamic_cast<nn::Linformer&>(*base);
    CHECK(m.E.size(0) == (std::string(share) == "none" ? kH : 1));
    CHECK(m.F.defined() == (std::string(share) != "kv"));
    Tensor x = randn({kB, 17, kC}, gen, DType::f64), w = randn({kB, 17, kC}, gen, DType::f64);
    const double e = rel_max(run([&](const Tensor& z) { return m.forward(z, {}); }, x, w),
                             run([&](const Tensor& z) { return linformer_reference(m, z); }, x, w));
    CHECK_MESSAGE(e <= 1e-12, share, ": ", e);
    worst = std::max(worst, e);
  }
  // 3. Memory: the forward's peak allocation at fixed k grows linearly in T (f32, no grad);
  // softmax attention's score matrix would grow 4x per doubling.
  {
    auto base = make("linformer", R"({"linformer_k": 32})", 4096, DType::f32);
    NoGradGuard no_grad;
    std::vector<double> peak;
    for (int64_t T : {1024, 2048, 4096}) {
      Tensor x = randn({1, T, kC}, gen);
      const size_t before = allocator_stats().live_bytes;
      reset_allocator_peak();
      Tensor y = base->forward(x, {});
      peak.push_back(double(allocator_stats().peak_bytes - before));
    }
    for (size_t i = 1; i < peak.size(); ++i) {
      CAPTURE(peak[i - 1]);
      CAPTURE(peak[i]);
      CHECK(peak[i] / peak[i - 1] <= 2.1);
    }
    MESSAGE("linformer forward peak bytes at T 1k/2k/4k (k 32): ", peak[0], " / ", peak[1], " / ", peak[2]);
  }
  // 4. Not causal: redrawing the last input moves the first output.
  {
    auto base = make("linformer", R"({"linformer_k": 6})", 24);
    CHECK_FALSE(base->causal());
    Tensor x = randn({1, 12, kC}, gen, DType::f64), x2 = x.clone();
    core::copy_(x2.narrow(1, 11, 1), randn({1, 1, kC}, gen, DType::f64));
    NoGradGuard no_grad;
    CHECK(tz::testing::max_abs_diff(base->forward(x, {}).narrow(1, 0, 1), base->forward(x2, {}).narrow(1, 0, 1)) >
          1e-6);
  }
  TZ_PROOF_NUMBER("max rel error", worst);
}

namespace {
// Reformer's layer written out densely for one sequence (B 1): shared-QK scores against unit
// keys, the buckets argmax [aR; -aR] from the layer's rotations by the plain ops, and the
// visible set of each query by the definition in reformer_lsh.h, counted from scratch:
// j <= i in i's bucket in some round with chunk(j) >= chunk(i) - 1, where
// chunk = (earlier positions in the same bucket) / m; itself only when nothing else is.
Tensor reformer_reference(nn::ReformerLsh& m, const Tensor& x, bool full_causal = false) {
  const int64_t T = x.size(1), H = m.heads, D = kD, R = m.rounds, mc = m.chunk;
  Tensor p = m.qkv->forward(x).view({1, T, 2, H, D});
  Tensor a = p.select(2, 0).permute({0, 2, 1, 3}), v = p.select(2, 1).permute({0, 2, 1, 3});
  std::vector<std::vector<int64_t>> bucket(size_t(R * H));  // [r][h] -> per position
  for (int64_t r = 0; r < R; ++r)
    for (int64_t h = 0; h < H; ++h) {
      std::vector<int64_t>& b = bucket[size_t(r * H + h)];
      if (m.buckets == 1) {
        b.assign(size_t(T), 0);
        continue;
      }
      Tensor proj = matmul(a.select(0, 0).select(0, h).detach(), m.rotations.select(0, r).select(0, h).to(a.dtype()));
      b = argmax(cat({proj, proj * -1.0}, 1), 1).to_vector<int64_t>();
    }
  auto before = [&](const std::vector<int64_t>& b, int64_t i) {
    int64_t n = 0;
    for (int64_t j = 0; j < i; ++j) n += b[size_t(j)] == b[size_t(i)];
    return n;
  };
  auto other = [&](int64_t h, int64_t i, int64_t j) {  // j < i visible in some round
    for (int64_t r = 0; r < R; ++r) {
      const std::vector<int64_t>& b = bucket[size_t(r * H + h)];
      if (b[size_t(j)] == b[size_t(i)] && before(b, j) / mc >= before(b, i) / mc - 1) return true;
    }
    return false;
  };
  auto mask = std::make_shared<kernels::AttentionMask>();
  mask->terms = {kernels::DenseMask::of(
      [&](int64_t h, int64_t i, int64_t j) {
        if (j > i) return false;
        if (full_causal) return j < i || i == 0;
        if (j < i) return other(h, i, j);
        for (int64_t e = 0; e < i; ++e)
          if (other(h, i, e)) return false;
        return true;  // alone: itself
      },
      H, T, T)};
  Tensor k = a * rsqrt(sum(a * a, {3}, true) + 1e-24);
  Tensor o = attention_composite(a, k, v, AttentionSpec{.mask = mask});
  return merge_out(*m.out, o);
}

std::shared_ptr<nn::Mixer> make_reformer(int64_t buckets, int64_t chunk, int64_t rounds) {
  return make("reformer_lsh",
              cat_str(R"({"lsh_buckets": )", buckets, R"(, "lsh_chunk": )", chunk, R"(, "lsh_rounds": )", rounds, "}"),
              128);
}
}  // namespace

TZ_PROOF(reformer_lsh,
         "1 bucket with chunk >= T is shared-QK causal attention, n_r rounds == dense attention over the union of "
         "their sets (y, dx), causal on original positions, error against full attention falls with rounds") {
  Generator gen(8);
  double worst = 0;
  auto layer = [](nn::Mixer& m) { return [&m](const Tensor& z) { return m.forward(z, {}); }; };
  // 1. One bucket, one chunk: every earlier key, itself only at position 0.
  for (int64_t T : {23, 40}) {
    auto base = make_reformer(1, 64, 1);
    auto& m = dynamic_cast<nn::ReformerLsh&>(*base);
    Tensor x = randn({1, T, kC}, gen, DType::f64), w = randn({1, T, kC}, gen, DType::f64);
    const double e =
        rel_max(run(layer(m), x, w), run([&](const Tensor& z) { return reformer_reference(m, z, true); }, x, w));
    CHECK_MESSAGE(e <= 1e-12, "T ", T, ": ", e);
    worst = std::max(worst, e);
  }
  // 2. Several buckets, chunks and rounds: the sorted, chunked, merged computation against the
  // dense union written out (chunk boundaries inside buckets, pairs repeated across rounds).
  for (auto [nb, mc, nr, T] : {std::array<int64_t, 4>{4, 4, 3, 37}, {2, 3, 2, 50}, {8, 2, 4, 29}}) {
    auto base = make_reformer(nb, mc, nr);
    auto& m = dynamic_cast<nn::ReformerLsh&>(*base);
    Tensor x = randn({1, T, kC}, gen, DType::f64), w = randn({1, T, kC}, gen, DType::f64);
    const double e = rel_max(run(layer(m), x, w), run([&](const Tensor& z) { return reformer_reference(m, z); }, x, w));
    CHECK_MESSAGE(e <= 1e-12, "buckets ", nb, ", chunk ", mc, ", rounds ", nr, ", T ", T, ": ", e);
    worst = std::max(worst, e);
  }
  // 3. Causal on original positions: redrawing x_s moves no output before s (T 48, 4 buckets,
  // chunks of 4, 2 rounds), and moves later ones.
  {
    auto base = make_reformer(4, 4, 2);
    NoGradGuard no_grad;
    Tensor x = randn({1, 48, kC}, gen, DType::f64);
    Tensor y0 = base->forward(x, {});
    for (int64_t s : {5, 20, 40}) {
      Tensor x2 = x.clone();
      core::copy_(x2.narrow(1, s, 1), randn({1, 1, kC}, gen, DType::f64));
      Tensor y1 = base->forward(x2, {});
      CHECK(tz::testing::max_abs_diff(y0.narrow(1, 0, s), y1.narrow(1, 0, s)) == 0.0);
      CHECK(tz::testing::max_abs_diff(y0.narrow(1, s, 48 - s), y1.narrow(1, s, 48 - s)) > 1e-6);
    }
  }
  // 4. The union grows with the rounds (round r's hash is the same in every layer with more
  // rounds), so the error against full shared-QK causal attention falls (4 buckets, chunks of
  // 8, T 96). Inputs scaled by 16 give peaked attention, the regime LSH is for; with diffuse
  // attention a few keys cannot stand for the average of all of them (errors above 1).
  {
    Tensor x = randn({1, 96, kC}, gen, DType::f64) * 16.0;
    NoGradGuard no_grad;
    std::vector<double> err;
    for (int64_t nr : {1, 2, 4, 8}) {
      auto base = make_reformer(4, 8, nr);
      auto& m = dynamic_cast<nn::ReformerLsh&>(*base);
      Tensor y = m.forward(x, {}), full = reformer_reference(m, x, true);
      err.push_back(std::sqrt(sum((y - full) * (y - full)).item() / sum(full * full).item()));  // relative L2
    }
    MESSAGE("reformer_lsh relative L2 error against full attention, rounds 1/2/4/8: ", err[0], " / ", err[1], " / ",
            err[2], " / ", err[3]);
    for (size_t i = 1; i < err.size(); ++i) CHECK(err[i] < err[i - 1]);
  }
  TZ_PROOF_NUMBER("max rel error", worst);
}

TZ_PROOF(sdm_attention,
         "Hamming-ball intersections == brute-force count, SDM read weights track softmax(beta cos) at the fitted "
         "beta (total variation), through the attention op with unit queries and keys") {
  // 1. I(h) against counting every point of {0, 1}^12.
  {
    const int64_t n = 12;
    double worst = 0;
    for (int64_t d : {2, 3, 5})
      for (int64_t h = 0; h <= n; ++h) {
        int64_t count = 0;
        for (int64_t x = 0; x < (int64_t(1) << n); ++x) {
          const int64_t b = (int64_t(1) << h) - 1;  // centres 0 and b, h bits apart
          if (__builtin_popcountll(uint64_t(x)) <= d && __builtin_popcountll(uint64_t(x ^ b)) <= d) ++count;
        }
        const double got = nn::sdm_log_intersection(n, d, h);
        if (count == 0) {
          CHECK(got == -INFINITY);
        } else {
          worst = std::max(worst, std::abs(std::exp(got) - double(count)) / double(count));
        }
      }
    CHECK(worst <= 1e-12);
  }
  // 2. A query, 64 random patterns and 32 noisy copies of it at distances 2..33 (n 64, d 20).
  const int64_t n = 64, d = 20, M = 96, Dv = 4;
  Generator gen(12);
  Tensor query = randint(0, 2, {n}, gen).to(DType::f64);
  std::vector<double> q = query.to_vector<double>(), pats;
  for (int64_t mu = 0; mu < M; ++mu) {
    std::vector<double> p(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) p[size_t(i)] = double(gen.randint(0, 2));
    if (mu < 32) {  // a copy with the first mu + 2 of a random order of bits flipped
      p = q;
      std::vector<int64_t> order(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
      for (int64_t i = 0; i < mu + 2; ++i) {
        std::swap(order[size_t(i)], order[size_t(gen.randint(i, n))]);
        p[size_t(order[size_t(i)])] = 1 - p[size_t(order[size_t(i)])];
      }
    }
    pats.insert(pats.end(), p.begin(), p.end());
  }
  Tensor patterns = from_vector(pats, {M, n}), values = randn({M, Dv}, gen, DType::f64);
  const Tensor w_sdm = nn::sdm_weights(patterns, query, d);
  const double beta = nn::sdm_fit_beta(n, d);
  auto bipolar_unit = [&](const Tensor& b) { return (b * 2.0 - 1.0) * (1.0 / std::sqrt(double(n))); };
  auto tv = [&](double scale) {  // total variation between the SDM weights and softmax(scale cos)
    Tensor w = softmax(matmul(bipolar_unit(patterns), bipolar_unit(query).unsqueeze(1)).squeeze(1) * scale);
    return 0.5 * sum(abs(w - w_sdm)).item();
  };
  const double at_fit = tv(beta), half = tv(beta / 2), twice = tv(beta * 2);
  MESSAGE("sdm n 64, d 20: fitted beta ", beta, "; total variation against softmax(beta cos) ", at_fit,
          " (beta/2: ", half, ", 2 beta: ", twice, ")");
  CHECK(at_fit <= 0.1);
  CHECK(at_fit < half / 3);
  CHECK(at_fit < twice / 3);
  // 3. The same read through the attention op (unit-norm query and keys, scale beta: qk_norm);
  // the values padded to the key width, which the op asks for.
  Tensor padded = cat({values, zeros({M, n - Dv}, DType::f64)}, 1);
  Tensor read_attn =
      attention_composite(bipolar_unit(query).view({1, 1, 1, n}), bipolar_unit(patterns).view({1, 1, M, n}),
                          padded.view({1, 1, M, n}), AttentionSpec{.scale = beta})
          .view({n})
          .narrow(0, 0, Dv);
  Tensor read_sdm = nn::sdm_read(patterns, values, query, d);
  const double e = rel_max(read_attn, read_sdm);
  MESSAGE("read through attention against the SDM read: relative max error ", e);
  CHECK(e <= 0.1);
  CHECK_THROWS_WITH_AS(nn::sdm_weights(patterns * 2.0, query, d), doctest::Contains("must be 0 or 1"), tz::Error);
  CHECK_THROWS_WITH_AS(nn::sdm_weights(patterns, query.narrow(0, 0, 8), d), doctest::Contains("expected patterns"),
                       tz::Error);
  TZ_PROOF_NUMBER("total variation at fitted beta", at_fit);
}
