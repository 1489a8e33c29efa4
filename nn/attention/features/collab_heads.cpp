// Collaborative heads (attn_collab_heads). "Multi-Head Attention: Collaborate Instead of
// Concatenate", Cordonnier et al. 2020, arXiv:2006.16362.
// Shared projections W_q, W_k: C -> D_k (D_k = compression H D) and one mixing vector
// m_h [D_k] per head: score_h(i, j) = (q_i * m_h) . k_j / sqrt(D). Values keep H heads.
// With D_k = H D and m_h one-hot on head h's block this is plain MHA (the init).
// Stages: projections (shared q and k: replaces the head layout) and qk (the score form).
// The cache holds the shared keys [B, 1, S, D_k]. Refused with rotary position schemes: the
// mixing vectors do not commute with the rotation.
#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/attention/attention.h"

namespace tz::nn {

namespace {
const Key<bool> kCollab{"attn_collab_heads", false,
                        "collaborative heads: shared query/key projections with per-head mixing vectors"};
const Key<double> kCompression{"attn_collab_compression", 0.5,
                               "collab_heads: shared query/key width = compression * heads * D"};

class CollabHeads : public AttentionFeature {
 public:
  explicit CollabHeads(double compression) : compression_(compression) {}
  std::string key() const override { return kCollab.name; }
  std::vector<Hook> hooks() const override { return {{Stage::projections, true}, {Stage::qk, true}}; }
  std::string describe() const override { return cat_str(", collab_heads(x", compression_, ")"); }
  void layout(AttentionLayout& L) const override {
    const int64_t Dk = std::llround(compression_ * double(L.H * L.D));
    TZ_CHECK(Dk >= L.H, "Attention: attn_collab_compression ", compression_, " gives a shared width ", Dk, " < heads ",
             L.H);
    L.q_heads = L.k_heads = 1;
    L.Dk = Dk;
    L.scale = 1.0 / std::sqrt(double(L.D));
  }
  void build(Attention& a, Generator&) const override {
    // m_h = one-hot on its block of D_k / H columns (= plain heads when D_k = H D).
    const int64_t H = a.layout.H, Dk = a.layout.Dk;
    Tensor m = zeros({H, Dk});
    for (int64_t j = 0; j < Dk; ++j) m.set({j * H / Dk, j}, 1.0);
    a.add_parameter("collab_mix", m);
  }
  void check_call(const Attention&, const AttentionCall& c) const override {
    TZ_CHECK(!(c.ctx.pos && c.ctx.pos->rotates()),
             "Attention: attn_collab_heads cannot be combined with a rotary "
             "position scheme (the per-head mixing vectors do not commute with the rotation)");
  }
  void score_form(const Attention& a, Tensor& q, Tensor& k) const override {
    // head h: (q * m_h) . k - the mixing vector selects/weights the shared dimensions.
    const int64_t H = a.layout.H, Dk = a.layout.Dk;
    q = q * a.param("collab_mix").view({1, H, 1, Dk});
    k = k.expand({k.size(0), H, k.size(2), Dk}).contiguous();
  }

 private:
  double compression_;
};
}  // namespace

AttentionFeatureInfo attn_feature_collab_heads() {
  return {.name = "collab_heads",
          .keys = {kCollab, kCompression},
          .make = [](const AttentionOptions&, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            const bool on = c.get(kCollab);
            check_needs(c, kCompression, on, kCollab);
            const double compression = c.get(kCompression);
            TZ_CHECK(compression > 0, "Attention: attn_collab_compression must be > 0, got ", compression);
            return on ? std::make_shared<CollabHeads>(compression) : nullptr;
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_collab_heads(nn::Registry& r) {
  r.add({.id = "collab_heads",
         .paper = "arXiv:2006.16362",
         .summary = "Collaborative heads: shared W_q, W_k of width compression * H D; head h scores (q * m_h) . k",
         .keys = nn::attention_config_keys("collab_heads"),
         .test_config = R"({"attn_collab_heads": true, "attn_collab_compression": 0.5})",
         .example = R"({"attn_collab_heads": true, "attn_collab_compression": 0.5})"});
}

}  // namespace tz::zoo
