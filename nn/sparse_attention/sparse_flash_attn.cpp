// Sparse Flash attention (hash-sparse): see sparse_flash_attn.h.
#include "nn/sparse_attention/sparse_flash_attn.h"

#include <algorithm>
#include <cmath>

#include "core/creation.h"
#include "core/random.h"
#include "nn/registry.h"

namespace tz::nn {

kernels::Tile PositionCausalMask::classify(int64_t, int64_t, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                                           int64_t) const {
  if (kpos[size_t(j0)] > qpos[size_t(i1 - 1)]) return kernels::Tile::hidden;
  if (kpos[size_t(j1 - 1)] <= qpos[size_t(i0)]) return kernels::Tile::visible;
  return kernels::Tile::partial;
}

void PositionCausalMask::fill(int64_t, int64_t, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t, uint8_t* out,
                              int64_t ld) const {
  for (int64_t r = 0; r < ni; ++r)
    for (int64_t c = 0; c < nj; ++c) out[r * ld + c] = kpos[size_t(j0 + c)] <= qpos[size_t(i0 + r)];
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

namespace {
Tensor index_tensor(const std::vector<int64_t>& idx) { return from_vector(idx, {int64_t(idx.size())}); }
}  // namespace

Attend hash_sparse_attend(int64_t buckets) {
  TZ_CHECK(buckets == 1 || (buckets >= 2 && buckets % 2 == 0),
           "sparse_flash_attn: hash_buckets must be 1 or even, got ", buckets);
  return [buckets](const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_offset) {
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), S = k.size(2), D = q.size(3);
    std::vector<Tensor> rows;
    for (int64_t b = 0; b < B; ++b) {
      std::vector<Tensor> heads;
      for (int64_t h = 0; h < H; ++h) {
        Tensor qh = q.select(0, b).select(0, h), kh = k.select(0, b).select(0, h), vh = v.select(0, b).select(0, h);
        const std::vector<int64_t> bq = hash_buckets(qh.detach().to_vector<double>(), T, D, buckets, h),
                                   bk = hash_buckets(kh.detach().to_vector<double>(), S, D, buckets, h);
        std::vector<int64_t> order, inverse(static_cast<size_t>(T));  // queries by (bucket, position)
        std::vector<Tensor> outs;
        for (int64_t u = 0; u < buckets; ++u) {
          std::vector<int64_t> qi, qpos, kj;
          for (int64_t i = 0; i < T; ++i)
            if (bq[size_t(i)] == u) qi.push_back(i), qpos.push_back(q_offset + i);
          for (int64_t j = 0; j < S; ++j)
            if (bk[size_t(j)] == u) kj.push_back(j);
          if (qi.empty()) continue;
          for (int64_t i : qi) inverse[size_t(i)] = int64_t(order.size()), order.push_back(i);
          const int64_t n = int64_t(qi.size()), m = int64_t(kj.size());
          if (m == 0) {
            outs.push_back(zeros({n, D}, q.dtype()));
            continue;
          }
          auto mask = std::make_shared<kernels::AttentionMask>();
          mask->terms = {std::make_shared<PositionCausalMask>(qpos, kj)};
          Tensor kidx = index_tensor(kj);
          Tensor o = attention(index_select(qh, 0, index_tensor(qi)).view({1, 1, n, D}),
                               index_select(kh, 0, kidx).view({1, 1, m, D}),
                               index_select(vh, 0, kidx).view({1, 1, m, D}), AttentionSpec{.mask = mask});
          outs.push_back(o.view({n, D}));
        }
        Tensor sorted = outs.size() == 1 ? outs[0] : cat(outs, 0);
        heads.push_back(index_select(sorted, 0, index_tensor(inverse)));
      }
      rows.push_back(stack(heads, 0));
    }
    return stack(rows, 0);
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
