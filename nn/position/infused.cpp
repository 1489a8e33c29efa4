// Position-infused attention (Press et al. 2020, arXiv:2012.15832); see infused.h.
#include "nn/position/infused.h"

#include "nn/position/absolute.h"
#include "nn/registry.h"

namespace tz::nn {

InfusedPositions::InfusedPositions(int64_t dim_, double base_) : dim(dim_), base(base_) {
  TZ_CHECK(base > 1, "position_infused_attn: 'pos_base' must be > 1, got ", base);
}

Tensor InfusedPositions::qk_input(int64_t start, int64_t T, DType dtype) const {
  return sinusoidal_table(start, T, dim, base, dtype);
}

std::string InfusedPositions::describe() const { return cat_str("InfusedPositions(", dim, ", base=", base, ")"); }

}  // namespace tz::nn

namespace tz::zoo {

void register_position_infused_attn(nn::Registry& r) {
  r.add({.id = "position_infused_attn",
         .summary = "Shortformer: sinusoids added to the query/key projection input in every layer, never to values",
         .keys = {nn::kPosBase},
         .test_config = R"({"pos": "position_infused_attn"})",
         .example = R"({"pos": "position_infused_attn"})",
         .position = [](const nn::ModelDims& d, const nn::Config& c, Generator&) {
           return std::make_shared<nn::InfusedPositions>(d.dim, c.get(nn::kPosBase));
         }});
}

}  // namespace tz::zoo
