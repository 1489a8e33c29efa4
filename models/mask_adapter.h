// TEMPORARY: masks as data reach today's attention through the position-scheme hook.
//
// MixerContext carries the masks as data (forgotten_keys for FCM, key_padding for padded
// encoders); the attention pipeline that reads them itself is not on main yet. Until it is,
// this one place turns them into an additive score term (0 or -inf, [B, 1, T, S]) that
// attention picks up through PositionScheme::query_score_bias, wrapping the model's scheme.
// When the pipeline lands: delete this file and the two MaskAdapter uses (models/lm.cpp,
// models/encoder_stack.cpp).
#pragma once

#include <memory>

#include "nn/mixer.h"

namespace tz::models {

// The additive score mask [B, 1, T, T] (0 visible, -inf hidden) of forgotten keys [B, T] (key
// j hidden from queries i > j) and key padding [B, T] (0 = hidden from every query); either
// may be undefined.
Tensor mask_score_bias(const Tensor& forgotten_keys, const Tensor& key_padding, int64_t T, DType dtype);

class MaskAdapter {
 public:
  // When ctx carries forgotten keys or key padding (for T queries over the same T keys, no
  // cache), points ctx.pos at a scheme that adds their score mask to ctx.pos's own terms;
  // does nothing otherwise. The adapter must outlive the forward that uses ctx.
  void apply(nn::MixerContext& ctx, int64_t T, DType dtype);

 private:
  std::unique_ptr<nn::PositionScheme> scheme_;
};

}  // namespace tz::models
