// Remixer (Remixers: A Mixer-Transformer Architecture with Compositional Operators for Natural
// Language Understanding, Hua et al., ACL ARR / OpenReview 2021): a feed-forward sublayer that
// also mixes positions, with x [B, T, C], F = remixer_mult · C and L the context:
//   u, g = split(x W_in)                     [B, T, F] each
//   u ← GELU(g) ⊙ u                          (a GEGLU, the FFN part)
//   m_t = Σ_{j ≤ t} softmax_j(M_t) u_j       M [L, L] learned, causal (row t over j ≤ t)
//   y = (α (u ⊙ m) + (1 − α)(u − m)) W_out,  α = σ(a), a learned scalar
// α mixes the multiplicative and subtractive compositions of a token with its context;
// α = 1 / α = 0 give either alone. The paper's model keeps attention and replaces each FFN
// by this unit: the suite's model alternates the two (layout "ss", mixer [vanilla_mha,
// remixer]). Decoding keeps u of earlier positions in a [B, L, F] history.
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

inline const Key<int64_t> kRemixerMult{"remixer_mult", 4, "Remixer: hidden width F = remixer_mult · dim"};

struct RemixerState : MixerState {
  Tensor rows;  // u of the positions so far, then zeros: [B, L, F]
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("rows", rows);
  }
};

class Remixer : public Mixer {
 public:
  Remixer(int64_t dim, int64_t hidden, int64_t context, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  std::shared_ptr<Linear> in, out;
  Tensor mix;    // M [L, L]
  Tensor alpha;  // a [1]; α = σ(a)

 private:
  int64_t dim_, hidden_, context_;
};

}  // namespace tz::nn
