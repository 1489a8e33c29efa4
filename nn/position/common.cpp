// Helpers shared by the position schemes; see common.h.
#include "nn/position/common.h"

namespace tz::nn {

Tensor carry_once(const MixerContext* ctx, const std::string& key, const std::function<Tensor()>& compute) {
  if (!ctx || !ctx->carry) return compute();
  auto it = ctx->carry->find(key);
  if (it != ctx->carry->end()) return it->second;
  Tensor t = compute();
  (*ctx->carry)[key] = t;
  return t;
}

}  // namespace tz::nn
