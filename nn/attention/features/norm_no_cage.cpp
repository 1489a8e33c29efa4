// Normalised attention weights (attn_norm_no_cage). "Normalized Attention Without Probability
// Cage", Richter & Wattenhofer 2020, arXiv:2005.09561: the softmax confines a head's output to
// the convex hull of its values (the probability "cage"); normalising each row of logits
// instead lets the weights leave the simplex. Per head h and query i, over the keys j it may
// see (j ≤ i when causal; n_i of them):
//   μ_i = Σ_j S_ij / n_i,   σ_i² = Σ_j (S_ij − μ_i)² / n_i
//   Ã_ij = g_h (S_ij − μ_i) / √(σ_i² + ε) + b_h      (0 for the keys it may not see)
//   out_i = Σ_j Ã_ij v_j
// with g_h = 1, b_h = 0 at init. Rows have zero mean and unit variance before the gain, so
// they do not sum to 1 and may be negative. The statistics read only the allowed keys: the
// masked logits arrive as −∞ and are excluded by count, not by value, so causality holds.
// A row with one allowed key (the first query) has σ = 0: its weight is b_h. The paper's
// code normalises without g and b; the catalogue row adds them, as here (g = 1, b = 0
// reproduces the plain normalisation). Stage: normaliser (replaces softmax; needs the
// materialised scores).
#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/attention/attention.h"

namespace tz::nn {

namespace {
const Key<bool> kNoCage{"attn_norm_no_cage", false,
                        "normalise each row of logits over its allowed keys (zero mean, unit variance, gain and "
                        "bias per head) instead of softmax"};
constexpr double kEps = 1e-6;

class NormNoCage : public AttentionFeature {
 public:
  std::string key() const override { return kNoCage.name; }
  std::vector<Hook> hooks() const override { return {{Stage::normaliser, true}}; }
  std::string describe() const override { return ", norm_no_cage"; }
  bool needs_scores(const AttentionCall&) const override { return true; }
  void build(Attention& a, Generator&) const override {
    a.add_parameter("cage_gain", ones({a.layout.H}));
    a.add_parameter("cage_bias", zeros({a.layout.H}));
  }
  Tensor normalise(const Attention& a, const Tensor& s, const AttentionCall&) const override {
    // Which logits are allowed: the masks arrive as −∞ (a constant of the call).
    Tensor allowed;
    {
      NoGradGuard ng;
      const std::vector<double> v = s.detach().to(DType::f64).contiguous().to_vector<double>();
      std::vector<double> m(v.size());
      for (size_t i = 0; i < v.size(); ++i) m[i] = std::isinf(v[i]) && v[i] < 0 ? 0.0 : 1.0;
      allowed = from_vector(m, s.shape()).to(s.dtype());
    }
    const int64_t H = a.layout.H;
    Tensor s0 = where(allowed, s, zeros_like(s.detach()));
    Tensor n = sum(allowed, {-1}, true);
    Tensor centred = (s0 - sum(s0, {-1}, true) / n) * allowed;
    Tensor var = sum(centred * centred, {-1}, true) / n;
    Tensor g = a.param("cage_gain").reshape({1, H, 1, 1}).to(s.dtype());
    Tensor b = a.param("cage_bias").reshape({1, H, 1, 1}).to(s.dtype());
    return (g * centred * rsqrt(var + kEps) + b) * allowed;
  }
};
}  // namespace

AttentionFeatureInfo attn_feature_norm_no_cage() {
  return {.name = "norm_no_cage",
          .keys = {kNoCage},
          .make = [](const AttentionOptions&, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            return c.get(kNoCage) ? std::make_shared<NormNoCage>() : nullptr;
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_norm_no_cage(nn::Registry& r) {
  r.add({.id = "normalized_attn_no_cage",
         .summary = "Attention weights by normalising each row of logits over its allowed keys (no softmax)",
         .keys = nn::attention_config_keys("norm_no_cage"),
         .test_config = R"({"attn_norm_no_cage": true})",
         .example = R"({"attn_norm_no_cage": true})"});
}

}  // namespace tz::zoo
