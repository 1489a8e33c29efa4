// The dropout sites of x-transformers (inverted dropout, kept values scaled by 1/(1-p)):
//   emb_dropout   after the token + position embedding            (the LM, models/lm.cpp)
//   attn_dropout  on the attention probabilities                  (read by vanilla_mha)
//   ff_dropout    on the FFN branch output                        (the block, models/block.cpp)
//   dropout       residual dropout inside the components          (ModelDims::dropout)
#include "models/keys.h"
#include "nn/attention/attention.h"
#include "nn/registry.h"

namespace tz::zoo {

void register_dropout_sites(nn::Registry& r) {
  std::vector<nn::ConfigKey> keys = {models::kEmbDropout};
  for (const nn::ConfigKey& k : nn::attention_config_keys({"attn_dropout"})) keys.push_back(k);
  keys.push_back(models::kFfDropout);
  keys.push_back(models::kDropout);
  r.add({.id = "dropout_sites",
         .summary = "Dropout after the embedding, on the attention probabilities, on the FFN branch and on "
                    "residual branches (inverted, 1/(1-p))",
         .keys = keys,
         .test_config = R"({"emb_dropout": 0.1, "ff_dropout": 0.1, "attn_dropout": 0.1})",
         .example = R"({"emb_dropout": 0.1, "ff_dropout": 0.1, "dropout": 0.1})"});
}

}  // namespace tz::zoo
