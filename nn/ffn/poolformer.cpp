#include "nn/ffn/poolformer.h"

#include <algorithm>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/text.h"
#include "nn/registry.h"

namespace tz::nn {

Tensor PoolFormerMixer::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == dim_, describe(), ": x must be [B, T, ", dim_, "], got ", x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": pooling has no keys to mask and takes no segment memory");
  PoolFormerState* s = state ? &own_state<PoolFormerState>(state, ctx) : nullptr;
  const int64_t B = x.size(0), T = x.size(1), start = s ? s->length : 0;  // no state: no past
  std::vector<double> inv(static_cast<size_t>(T));                        // 1 / the positions each window holds
  Tensor sums;
  if (window_ == 0) {
    Tensor before = s ? s->rows.unsqueeze(1) : zeros({B, 1, dim_}, x.dtype());
    sums = cumsum(x, 1) + before;
    if (s) s->rows = sums.select(1, T - 1).contiguous();
    for (int64_t t = 0; t < T; ++t) inv[size_t(t)] = 1.0 / double(start + t + 1);
  } else {
    // Buffer row r holds position start - (w - 1) + r (rows before position 0 are zeros);
    // P[r] is the sum of rows < r, so the window ending at t is P[t + w] - P[t].
    const int64_t H = window_ - 1;
    Tensor buffer = cat({s ? s->rows : zeros({B, H, dim_}, x.dtype()), x}, 1);
    Tensor P = cat({zeros({B, 1, dim_}, x.dtype()), cumsum(buffer, 1)}, 1);
    if (s) s->rows = buffer.narrow(1, T, H).contiguous();
    sums = P.narrow(1, window_, T) - P.narrow(1, 0, T);
    for (int64_t t = 0; t < T; ++t) inv[size_t(t)] = 1.0 / double(std::min(window_, start + t + 1));
  }
  if (s) s->length += T;
  return sums * from_vector(inv, {1, T, 1}).to(x.dtype()) - x;
}

std::unique_ptr<MixerState> PoolFormerMixer::make_state(int64_t batch, int64_t, DType dtype) const {
  auto s = std::make_unique<PoolFormerState>();
  s->rows = window_ == 0 ? zeros({batch, dim_}, dtype) : zeros({batch, window_ - 1, dim_}, dtype);
  return s;
}

std::string PoolFormerMixer::describe() const {
  return window_ == 0 ? "PoolFormer(causal mean of the past - x)"
                      : cat_str("PoolFormer(causal pool ", window_, " - x)");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_metaformer(nn::Registry& r) {
  r.add({
      .id = "metaformer",
      .summary = "MetaFormer with PoolFormer's parameter-free mixer, causal: mean of the past minus x",
      .keys = {nn::kPoolWindow},
      .test_config = R"({"mixer": ["metaformer", "vanilla_mha"], "pool_window": 0})",
      .example = R"({"mixer": ["metaformer", "metaformer", "metaformer", "vanilla_mha"], "depth": 4})",

      .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator&) -> std::shared_ptr<nn::Mixer> {
        const int64_t w = c.get(nn::kPoolWindow);
        TZ_CHECK(w >= 0, c.source(), ": pool_window must be ≥ 0 (0 = all the past), got ", w);
        return std::make_shared<nn::PoolFormerMixer>(d.dim, w);
      },
  });
}

}  // namespace tz::zoo
