// The shared block of the LTI SSM layers: see ssm_block.h.
#include "nn/ssm/ssm_block.h"

#include "autograd/ops.h"

namespace tz::nn {

Tensor SsmBlock::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == dim_, describe(), ": x must be [B, T, ", dim_, "], got ", x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": a convolution has no keys to mask and takes no segment memory");
  Tensor y;
  if (state) {  // continuing a sequence: the recurrence from the state
    SsmState& s = own_state<SsmState>(state, ctx);
    y = recur(x, &s.h);
    s.length += x.size(1);
  } else {
    y = convolve(x);
  }
  return out_proj->forward(gelu(y));
}

std::unique_ptr<MixerState> SsmBlock::state_with(Tensor h) {
  auto s = std::make_unique<SsmState>();
  s->h = std::move(h);
  return s;
}

}  // namespace tz::nn
