// Query-key normalisation as an attention feature, and its max-free kernel (qk_norm.h).
#include "nn/attention/features/qk_norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/attention/attention.h"

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

namespace {
const Key<bool> kQkNorm{"attn_qk_norm", false, "l2-normalise queries and keys per head; score = g q.k"};
const Key<double> kQkNormScale{"attn_qk_norm_scale", 0.0,
                               "qk_norm: fixed g (cosine-sim attention, e.g. 10); 0 = learned, init log2(L^2 - L)"};

class QkNorm : public AttentionFeature {
 public:
  QkNorm(double fixed, int64_t context) : fixed_(fixed), context_(context) {}
  std::string key() const override { return kQkNorm.name; }
  std::vector<Hook> hooks() const override { return {{Stage::qk, true}}; }
  std::string describe() const override { return fixed_ > 0 ? cat_str(", qk_norm(g=", fixed_, ")") : ", qk_norm"; }
  void layout(AttentionLayout& L) const override { L.scale = 1.0; }  // g is folded into q
  void build(Attention& a, Generator&) const override {
    if (fixed_ == 0) a.add_parameter("qk_scale", full({1}, qk_norm_init_scale(context_)));
  }
  Tensor qk(const Attention&, const Tensor& t) const override { return l2_normalize(t); }
  void score_form(const Attention& a, Tensor& q, Tensor&) const override {
    q = fixed_ > 0 ? q * fixed_ : q * a.param("qk_scale");
  }

 private:
  double fixed_;
  int64_t context_;
};
}  // namespace

AttentionFeatureInfo attn_feature_qk_norm() {
  return {.name = "qk_norm",
          .keys = {kQkNorm, kQkNormScale},
          .make = [](const AttentionOptions& o, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            const bool on = c.get(kQkNorm);
            check_needs(c, kQkNormScale, on, kQkNorm);
            const double g = c.get(kQkNormScale);
            TZ_CHECK(g >= 0, "Attention: attn_qk_norm_scale must be >= 0 (0 = learned), got ", g);
            if (!on) return nullptr;
            // The model's position scheme, read only to refuse the schemes whose query-dependent
            // score terms assume q.k / sqrt(D), which qk_norm replaces by g q^.k^.
            if (c.has("pos")) {
              const std::string pos = c.get_string("pos", "");
              TZ_CHECK(pos != "tupe" && pos != "txl_rel_pos", c.source(), ": 'attn_qk_norm' and pos '", pos,
                       "' conflict: the scheme's score terms assume q.k / sqrt(D), which attn_qk_norm replaces by "
                       "g q^.k^");
            }
            return std::make_shared<QkNorm>(g, o.context);
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_qk_norm(nn::Registry& r) {
  r.add({.id = "qk_norm",
         .summary =
             "l2-normalised q and k per head, score = g q.k with g learned (init log2(L^2-L)) or fixed (cosine-sim)",
         .keys = nn::attention_config_keys("qk_norm"),
         .test_config = R"({"attn_qk_norm": true})",
         .example = R"({"attn_qk_norm": true, "attn_qk_norm_scale": 10})"});
}

}  // namespace tz::zoo
