// MambaByte (see mambabyte.h).
#include "nn/ssm/mambabyte.h"

#include "core/text.h"
#include "nn/registry.h"

namespace tz::nn {

std::string mambabyte_config(int64_t dim, int64_t depth, int64_t context) {
  TZ_CHECK(dim > 0 && depth > 0 && context > 0, "mambabyte_config: dim, depth and context must be positive, got ", dim,
           ", ", depth, ", ", context);
  return cat_str(R"({"vocab": )", kByteVocab, R"(, "dim": )", dim, R"(, "depth": )", depth, R"(, "context": )", context,
                 R"(, "layout": ")", std::string(size_t(depth), 's'),
                 R"(", "mixer": "mamba", "norm": "rmsnorm", "pos": "none"})");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_mambabyte(nn::Registry& r) {
  r.add(
      {.id = "mambabyte",
       .summary = "Mamba LM over raw bytes (vocab 256); speculative decoding in models/speculative.h",
       // The suite's tasks use 16 token ids. With the 256 outputs of bytes, this small model (dim
       // 32, 2 layers) stays at chance on copy in 1500 steps (0.06-0.21 over seeds 0-3, the scalar
       // path too); with 16 it learns it. The byte vocabulary is the proof's and the example's.
       .test_config = R"({"vocab": 16, "mixer": "mamba", "norm": "rmsnorm", "layout": "ss", "pos": "none",
                            "dim": 32, "ssm_chunk": 5})",
       .example = R"({"vocab": 256, "dim": 256, "layout": "ssss", "mixer": "mamba", "norm": "rmsnorm", "pos": "none"})",
       .chunk = 5,
       .learn_steps = 1500,
       .learn_reason = "as mamba: the copied bytes must pass through the recurrent state"});
}

}  // namespace tz::zoo
