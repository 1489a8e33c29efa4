#include "models/encoder_stack.h"

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/text.h"
#include "models/keys.h"
#include "models/wrapper_attention.h"
#include "nn/residual/residual.h"

namespace tz::models {

std::shared_ptr<nn::ModuleList> make_stack(const StackOptions& o, const nn::ModelDims& dims,
                                           const nn::Registry& registry, const nn::Config& c, Generator& gen) {
  auto stack = std::make_shared<nn::ModuleList>();
  const std::vector<std::string> mixers = c.get(kMixer);
  TZ_CHECK(mixers.size() == 1, c.source(), ": the wrappers take one attention id in 'mixer', got ", mixers.size());
  const BlockPieces pieces{
      .registry = registry,
      .config = c,
      .norm = c.get(kNorm),
      .ff_dropout = c.get(kFfDropout),
      .mixer = [&](const SublayerSpec& s, Generator& g) { return make_wrapper_attention(s, registry, c, g); }};
  for (int64_t i = 0; i < o.depth; ++i) {
    nn::ModelDims d = dims;
    d.layer = i;
    d.causal = o.causal;
    std::vector<SublayerSpec> block{{.kind = SublayerSpec::Kind::mixer,
                                     .id = mixers[0],
                                     .name = "attn",
                                     .norm_name = "norm1",
                                     .tag = "1",
                                     .dims = d}};
    if (o.context_dim > 0) {
      nn::ModelDims dc = d;
      dc.context_dim = o.context_dim;
      dc.causal = false;
      block.push_back({.kind = SublayerSpec::Kind::mixer,
                       .id = mixers[0],
                       .name = "cross",
                       .norm_name = "norm_c",
                       .tag = "_c",
                       .dims = dc});
    }
    block.push_back({.kind = SublayerSpec::Kind::ffn,
                     .id = c.get(kFfn),
                     .name = "ffn",
                     .norm_name = "norm2",
                     .tag = "2",
                     .dims = d});
    stack->push_back(std::make_shared<Block>(block, pieces, gen));
  }
  return stack;
}

Tensor run_stack(const nn::ModuleList& stack, Tensor h, nn::MixerContext ctx) {
  for (size_t i = 0; i < stack.size(); ++i) {
    ctx.layer = int64_t(i);
    h = stack.at<Block>(i)->forward(h, ctx);
  }
  return h;
}

PositionTable::PositionTable(int64_t positions, int64_t dim, Generator& gen)
    : table_(std::make_shared<nn::Embedding>(nn::EmbeddingOptions{.num = positions, .dim = dim}, gen)) {
  weight = register_parameter("weight", table_->weight);
}

Tensor PositionTable::embed(int64_t start, int64_t T, DType) const {
  TZ_CHECK(start >= 0 && start + T <= weight.size(0), "positions ", start, "..", start + T - 1, " exceed the ",
           weight.size(0), " learned positions (raise 'context')");
  return table_->forward(arange(double(start), double(start + T), 1.0, DType::i64));
}

std::string PositionTable::describe() const {
  return cat_str("PositionTable(", weight.size(0), ", ", weight.size(1), ")");
}

std::shared_ptr<nn::PositionScheme> make_wrapper_positions(const nn::ModelDims& d, const nn::Registry& registry,
                                                           const nn::Config& c, Generator& gen) {
  const std::string id = c.get(kPos);
  if (id == kPos.fallback) return std::make_shared<PositionTable>(d.context, d.dim, gen);
  return registry.make_position(id, d, c, gen);
}

std::vector<nn::ConfigKey> stack_keys() {
  std::vector<nn::ConfigKey> keys = {kModel, kMixer, kPos, kFfn, kNorm, kBias, kDropout, kFfDropout};
  for (const nn::ConfigKey& k : nn::residual_config_keys()) keys.push_back(k);
  return keys;
}

std::vector<nn::ConfigKey> wrapper_keys(std::vector<nn::ConfigKey> own) {
  for (const nn::ConfigKey& k : stack_keys()) own.push_back(k);
  return own;
}

void check_wrapper_keys(const nn::Config& c, const nn::Registry& registry, const std::vector<nn::ConfigKey>& own) {
  std::vector<std::string> valid;
  for (const auto& list : {own, stack_keys()})
    for (const nn::ConfigKey& k : list) valid.push_back(k.key);
  std::vector<std::string> ids = c.get(kMixer);
  for (const std::string& id : {c.get(kPos), c.get(kFfn), c.get(kNorm)}) ids.push_back(id);
  for (const std::string& id : ids)
    if (const nn::VariantInfo* v = registry.find(id))
      for (const nn::ConfigKey& k : v->keys) valid.push_back(k.key);
  c.check_all_read(valid);
}

void check_model_key(const nn::Config& c, const std::vector<std::string>& ids) {
  if (!c.has(kModel.name)) return;
  const std::string m = c.get(kModel);
  for (const std::string& id : ids)
    if (m == id) return;
  throw Error(cat_str(c.source(), ": model '", m, "' given to the ", join(ids), " wrapper"));
}

}  // namespace tz::models
