#include "nn/attention/qk_norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/attention/attention.h"
#include "nn/registry.h"

namespace tz::nn {

Tensor l2_normalize(const Tensor& x, double eps) { return x * rsqrt(sum(x * x, {-1}, true) + eps); }

double qk_norm_init_scale(int64_t L) {
  TZ_CHECK(L >= 2, "qk_norm: the learned scale's init log2(L^2 - L) needs context L >= 2, got ", L);
  return std::log2(double(L) * double(L) - double(L));
}

Tensor cosine_attention_fixed_scale(const Tensor& q_hat, const Tensor& k_hat, const Tensor& v, double g, bool causal,
                                    int64_t q_offset) {
  TZ_CHECK(q_hat.dim() == 4 && k_hat.shape() == v.shape() && q_hat.size(3) == k_hat.size(3) &&
               q_hat.size(0) == k_hat.size(0) && q_hat.size(1) == k_hat.size(1),
           "cosine attention: shape mismatch, q ", q_hat.shape(), " k ", k_hat.shape(), " v ", v.shape());
  const int64_t B = q_hat.size(0), H = q_hat.size(1), T = q_hat.size(2), S = k_hat.size(2), D = q_hat.size(3);
  constexpr int64_t kTile = 16;  // keys per tile
  std::vector<double> q = q_hat.to_vector<double>(), k = k_hat.to_vector<double>(), vv = v.to_vector<double>();
  std::vector<double> out(size_t(B * H * T * D));
  std::vector<double> acc(static_cast<size_t>(D));
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t i = 0; i < T; ++i) {
      const double* qi = q.data() + (bh * T + i) * D;
      const int64_t last = causal ? std::min(S, q_offset + i + 1) : S;  // keys 0..last-1
      std::fill(acc.begin(), acc.end(), 0.0);
      double den = 0;
      for (int64_t j0 = 0; j0 < last; j0 += kTile)
        for (int64_t j = j0; j < std::min(last, j0 + kTile); ++j) {
          const double* kj = k.data() + (bh * S + j) * D;
          const double* vj = vv.data() + (bh * S + j) * D;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += qi[d] * kj[d];
          double w = std::exp(g * dot - g);  // <= 1: no running max needed
          den += w;
          for (int64_t d = 0; d < D; ++d) acc[d] += w * vj[d];
        }
      for (int64_t d = 0; d < D; ++d) out[(bh * T + i) * D + d] = acc[d] / den;
    }
  Tensor y = from_vector(out, {B, H, T, D});
  return q_hat.dtype() == DType::f64 ? y : y.to(q_hat.dtype());
}

Tensor cosine_attention_fixed_scale_ref(const Tensor& q_hat, const Tensor& k_hat, const Tensor& v, double g,
                                        bool causal, int64_t q_offset) {
  return scaled_dot_product_attention_ref(q_hat, k_hat, v, causal, q_offset, Tensor(), g);
}

}  // namespace tz::nn

namespace tz::zoo {

void register_qk_norm(nn::Registry& r) {
  r.add({.id = "qk_norm",
         .summary = "l2-normalised q and k per head, score = g q.k with g learned (init log2(L^2-L)) or fixed (cosine-sim)",
         .keys = nn::attention_config_keys({"attn_qk_norm", "attn_qk_norm_scale"}),
         .test_config = R"({"attn_qk_norm": true})",
         .example = R"({"attn_qk_norm": true, "attn_qk_norm_scale": 10})"});
}

}  // namespace tz::zoo
