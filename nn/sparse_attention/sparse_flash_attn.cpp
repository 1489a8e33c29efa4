// Sparse Flash attention (hash-sparse): see sparse_flash_attn.h.
#include "nn/sparse_attention/sparse_flash_attn.h"

#include <algorithm>
#include <cmath>

#include "core/creation.h"
#include "core/random.h"
#include "nn/registry.h"

namespace tz::nn {

BucketCausalMask::BucketCausalMask(std::vector<int64_t> qb_, std::vector<int64_t> qpos_, std::vector<int64_t> kb_,
                                   std::vector<int64_t> kpos_, int64_t B_, int64_t H_, int64_t T_, int64_t S_)
    : qb(std::move(qb_)),
      qpos(std::move(qpos_)),
      kb(std::move(kb_)),
      kpos(std::move(kpos_)),
      B(B_),
      H(H_),
      T(T_),
      S(S_) {}

void BucketCausalMask::check(int64_t B_, int64_t H_, int64_t S_) const {
  TZ_CHECK(B_ == B && H_ == H && S_ == S, "sparse_flash_attn: the bucket mask is for B ", B, ", H ", H, ", S ", S,
           ", got B ", B_, ", H ", H_, ", S ", S_);
}

kernels::Tile BucketCausalMask::classify(int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                                         int64_t) const {
  const size_t q = size_t((b * H + h) * T), k = size_t((b * H + h) * S);
  // Buckets ascend along both axes; so do positions inside one bucket.
  if (kb[k + size_t(j1 - 1)] < qb[q + size_t(i0)] || kb[k + size_t(j0)] > qb[q + size_t(i1 - 1)])
    return kernels::Tile::hidden;
  if (qb[q + size_t(i0)] == qb[q + size_t(i1 - 1)] && kb[k + size_t(j0)] == kb[k + size_t(j1 - 1)] &&
      qb[q + size_t(i0)] == kb[k + size_t(j0)]) {
    if (kpos[k + size_t(j0)] > qpos[q + size_t(i1 - 1)]) return kernels::Tile::hidden;
    if (kpos[k + size_t(j1 - 1)] <= qpos[q + size_t(i0)]) return kernels::Tile::visible;
  }
  return kernels::Tile::partial;
}

void BucketCausalMask::fill(int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t, uint8_t* out,
                            int64_t ld) const {
  const size_t q = size_t((b * H + h) * T), k = size_t((b * H + h) * S);
  for (int64_t r = 0; r < ni; ++r)
    for (int64_t c = 0; c < nj; ++c) {
      const size_t qi = q + size_t(i0 + r), kj = k + size_t(j0 + c);
      out[r * ld + c] = kb[kj] == qb[qi] && kpos[kj] <= qpos[qi];
    }
}

std::vector<int64_t> hash_buckets(const std::vector<double>& x, int64_t n, int64_t D, int64_t buckets, int64_t h) {
  std::vector<int64_t> out(size_t(n), 0);
  if (buckets == 1) return out;
  const int64_t half = buckets / 2;
  // R_h drawn once from (D, n_b, h): the same hash in every call, forward and decoding.
  Generator gen(uint64_t(0x5fa + 7919 * h + 104729 * D + 15485863 * buckets));
  const std::vector<double> R = randn({D, half}, gen, DType::f64).to_vector<double>();
  for (int64_t i = 0; i < n; ++i) {
    double best = -INFINITY;
    for (int64_t c = 0; c < half; ++c) {
      double s = 0;
      for (int64_t d = 0; d < D; ++d) s += x[size_t(i * D + d)] * R[size_t(d * half + c)];
      if (s > best) best = s, out[size_t(i)] = c;
      if (-s > best) best = -s, out[size_t(i)] = half + c;
    }
  }
  return out;
}

Attend hash_sparse_attend(int64_t buckets) {
  TZ_CHECK(buckets == 1 || (buckets >= 2 && buckets % 2 == 0),
           "sparse_flash_attn: hash_buckets must be 1 or even, got ", buckets);
  return [buckets](const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_offset) {
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), S = k.size(2), D = q.size(3);
    // Per (b, h): the order by (bucket, position) of queries and keys, and the way back.
    std::vector<int64_t> qb, qpos, kb, kpos, qidx, kidx, back;
    auto order = [](const std::vector<int64_t>& bucket, int64_t n) {
      std::vector<int64_t> o(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) o[size_t(i)] = i;
      std::stable_sort(o.begin(), o.end(), [&](int64_t a, int64_t c) { return bucket[size_t(a)] < bucket[size_t(c)]; });
      return o;
    };
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h) {
        const std::vector<int64_t> bq = hash_buckets(q.select(0, b).select(0, h).detach().to_vector<double>(), T, D,
                                                     buckets, h),
                                   bk = hash_buckets(k.select(0, b).select(0, h).detach().to_vector<double>(), S, D,
                                                     buckets, h);
        const std::vector<int64_t> oq = order(bq, T), ok = order(bk, S);
        std::vector<int64_t> inv(static_cast<size_t>(T));
        for (int64_t i = 0; i < T; ++i) {
          const int64_t src = oq[size_t(i)];
          qb.push_back(bq[size_t(src)]), qpos.push_back(q_offset + src), inv[size_t(src)] = i;
          for (int64_t d = 0; d < D; ++d) qidx.push_back(src);
        }
        for (int64_t j = 0; j < S; ++j) {
          kb.push_back(bk[size_t(ok[size_t(j)])]), kpos.push_back(ok[size_t(j)]);
          for (int64_t d = 0; d < D; ++d) kidx.push_back(ok[size_t(j)]);
        }
        for (int64_t i = 0; i < T; ++i)
          for (int64_t d = 0; d < D; ++d) back.push_back(inv[size_t(i)]);
      }
    const Tensor iq = from_vector(qidx, {B, H, T, D}), ik = from_vector(kidx, {B, H, S, D}),
                 ib = from_vector(back, {B, H, T, D});
    auto mask = std::make_shared<kernels::AttentionMask>();
    mask->terms = {
        std::make_shared<BucketCausalMask>(std::move(qb), std::move(qpos), std::move(kb), std::move(kpos), B, H, T, S)};
    Tensor o = attention(gather(q, 2, iq), gather(k, 2, ik), gather(v, 2, ik), AttentionSpec{.mask = mask});
    return gather(o, 2, ib);
  };
}

}  // namespace tz::nn

namespace tz::zoo {

void register_sparse_flash_attn(nn::Registry& r) {
  r.add({.id = "sparse_flash_attn",
         .summary = "Sparse Flash (hash-sparse): Q, K bucketed by LSH, compacted, causal on original positions",
         .keys = {nn::kHashBuckets},
         .test_config = R"({"mixer": "sparse_flash_attn", "hash_buckets": 2})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "sparse_flash_attn", "hash_buckets": 4})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           nn::check_causal_self("sparse_flash_attn", d.causal, d.context_dim);
           const int64_t nb = c.get(nn::kHashBuckets);
           return std::make_shared<nn::SparseAttention>(
               nn::SparseAttentionOptions{.dim = d.dim,
                                          .heads = d.heads,
                                          .name = cat_str("sparse_flash_attn(buckets=", nb, ")"),
                                          .attend = nn::hash_sparse_attend(nb)},
               gen);
         }});
}

}  // namespace tz::zoo
