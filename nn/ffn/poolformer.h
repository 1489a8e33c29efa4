// MetaFormer / PoolFormer (Yu et al. 2022, "MetaFormer Is Actually What You Need for Vision",
// arXiv:2111.11418): the block X ← X + TokenMixer(Norm(X)); X ← X + MLP(Norm(X)) is what
// matters, and even a parameter-free token mixer, average pooling minus the identity,
//   TokenMixer(X) = Pool(X) − X
// makes a competitive model. The zoo's blocks are this MetaFormer (any mixer id); the id adds
// PoolFormer's mixer in its causal 1-D form (lucidrains' metaformer-gpt: causal mean
// centring) with x [B, T, C]:
//   y_t = mean { x_s : t − w < s ≤ t, s ≥ 0 } − x_t        pool_window w > 0
//   y_t = mean { x_s : 0 ≤ s ≤ t } − x_t                    pool_window 0 (all the past)
// The mean divides by the positions the window holds (PoolFormer's count_include_pad=False),
// so position 0 gives y_0 = 0. The default w = 3 is the paper's pool size. Deviations: the paper pools a 3×3 window of
// image patches on both sides; the causal form looks back only. The catalogue writes the AR form as x_t − mean, the
// negative of the paper's Pool(X) − X; this follows the paper. Decoding: pool_window 0 keeps the running sum [B, C]; w
// > 0 the last w − 1 inputs. A pooling mixer cannot look a token up, so the suite's model pairs it with attention in
// the second block, as the MetaFormer baselines' CAFormer pairs poolers/convolutions with
// attention in the last stages, and pools over all the past: with w = 3 in front, the
// attention block did not learn the copy task at all (0.07 after 1500 steps; 1.00 with
// w = 1, where the mixer is zero, and 0.96-0.98 with w = 0 in 400), although w = 3 is the
// better mixer on text (tests/zoo/proofs_metaformer.cpp).
#pragma once

#include "nn/config.h"
#include "nn/mixer.h"

namespace tz::nn {

inline const Key<int64_t> kPoolWindow{
    "pool_window", 3,
    "PoolFormer's causal pool: mean of the last w positions (the paper's pool size 3; 0 = all the past)"};

struct PoolFormerState : MixerState {
  Tensor rows;  // pool_window 0: the sum of all inputs so far [B, C]; w > 0: the last w - 1 inputs [B, w - 1, C]
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("rows", rows);
  }
};

class PoolFormerMixer : public Mixer {
 public:
  PoolFormerMixer(int64_t dim, int64_t window) : dim_(dim), window_(window) {}
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

 private:
  int64_t dim_, window_;
};

}  // namespace tz::nn
