#include "models/gpt.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "core/creation.h"

namespace tz::models {

void GPTConfig::validate() const {
  TZ_CHECK(vocab > 0, "GPTConfig: vocab must be positive, got ", vocab);
  TZ_CHECK(dim > 0 && depth > 0 && heads > 0 && context > 0 && mlp_mult > 0,
           "GPTConfig: dim, depth, heads, context and mlp_mult must be positive");
  TZ_CHECK(dim % heads == 0, "GPTConfig: heads (", heads, ") must divide dim (", dim, ")");
  TZ_CHECK(dropout >= 0 && dropout < 1, "GPTConfig: dropout must be in [0, 1), got ", dropout);
  nn::parse_activation(activation);
  nn::parse_norm(norm);
}

GPTConfig GPTConfig::from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(cat_str("GPTConfig: invalid JSON: ", e.what()));
  }
  TZ_CHECK(j.is_object(), "GPTConfig: expected a JSON object, got ", j.type_name());
  GPTConfig c;
  const char* valid = "vocab, dim, depth, heads, context, mlp_mult, activation, norm, bias, "
                      "dropout, tie_weights";
  for (auto& [key, value] : j.items()) {
    try {
      if (key == "vocab") c.vocab = value.get<int64_t>();
      else if (key == "dim") c.dim = value.get<int64_t>();
      else if (key == "depth") c.depth = value.get<int64_t>();
      else if (key == "heads") c.heads = value.get<int64_t>();
      else if (key == "context") c.context = value.get<int64_t>();
      else if (key == "mlp_mult") c.mlp_mult = value.get<int64_t>();
      else if (key == "activation") c.activation = value.get<std::string>();
      else if (key == "norm") c.norm = value.get<std::string>();
      else if (key == "bias") c.bias = value.get<bool>();
      else if (key == "dropout") c.dropout = value.get<double>();
      else if (key == "tie_weights") c.tie_weights = value.get<bool>();
      else throw Error(cat_str("GPTConfig: unknown key '", key, "'; valid keys: ", valid));
    } catch (const nlohmann::json::exception& e) {
      throw Error(cat_str("GPTConfig: key '", key, "' has the wrong type (", value.type_name(), ")"));
    }
  }
  c.validate();
  return c;
}

std::string GPTConfig::to_json() const {
  nlohmann::json j = {{"vocab", vocab},         {"dim", dim},       {"depth", depth},
                      {"heads", heads},         {"context", context}, {"mlp_mult", mlp_mult},
                      {"activation", activation}, {"norm", norm},   {"bias", bias},
                      {"dropout", dropout},     {"tie_weights", tie_weights}};
  return j.dump();
}

Block::Block(const GPTConfig& c, Generator& gen) {
  const double resid_std = 0.02 / std::sqrt(2.0 * double(c.depth));
  nn::NormKind norm = nn::parse_norm(c.norm);
  norm1 = register_module("norm1", nn::make_norm(norm, c.dim));
  attn = register_module("attn", std::make_shared<nn::MultiHeadAttention>(
                                     nn::AttentionOptions{.dim = c.dim, .heads = c.heads, .causal = true,
                                                          .bias = c.bias, .dropout = c.dropout,
                                                          .out_init_std = resid_std}, gen));
  norm2 = register_module("norm2", nn::make_norm(norm, c.dim));
  mlp = register_module("mlp", std::make_shared<nn::MLP>(
                                   nn::MLPOptions{.dim = c.dim, .hidden = c.mlp_mult * c.dim,
                                                  .activation = nn::parse_activation(c.activation),
                                                  .bias = c.bias, .dropout = c.dropout,
                                                  .out_init_std = resid_std}, gen));
}

Tensor Block::forward(const Tensor& x, nn::KVCache* cache) const {
  Tensor h = x + attn->forward(norm1->forward(x), cache);
  return h + mlp->forward(norm2->forward(h));
}

GPT::GPT(const GPTConfig& c, Generator& gen) : config(c) {
  c.validate();
  tok_emb = register_module("tok_emb", std::make_shared<nn::Embedding>(
                                           nn::EmbeddingOptions{.num = c.vocab, .dim = c.dim}, gen));
  pos_emb = register_module("pos_emb", std::make_shared<nn::Embedding>(
                                           nn::EmbeddingOptions{.num = c.context, .dim = c.dim}, gen));
  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < c.depth; ++i) layers->push_back(std::make_shared<Block>(c, gen));
  norm_f = register_module("norm_f", nn::make_norm(nn::parse_norm(c.norm), c.dim));
  if (!c.tie_weights)
    head = register_module("head", std::make_shared<nn::Linear>(
                                       nn::LinearOptions{.in = c.dim, .out = c.vocab, .bias = false}, gen));
}

Tensor GPT::forward(const Tensor& ids, std::vector<nn::KVCache>* caches) const {
  TZ_CHECK(ids.dim() == 2 && ids.dtype() == DType::i64, "GPT: expected ids i64 [B, T], got ",
           dtype_name(ids.dtype()), " ", ids.shape());
  TZ_CHECK(!caches || int64_t(caches->size()) == config.depth, "GPT: expected ", config.depth,
           " caches, got ", caches ? caches->size() : 0);
  const int64_t T = ids.size(1);
  const int64_t start = caches ? (*caches)[0].length : 0;
  TZ_CHECK(start + T <= config.context, "GPT: positions up to ", start + T, " exceed the context of ",
           config.context);
  Tensor pos = arange(double(start), double(start + T), 1.0, DType::i64);
  Tensor h = tok_emb->forward(ids) + pos_emb->forward(pos);
  for (size_t i = 0; i < layers->size(); ++i)
    h = layers->at<Block>(i)->forward(h, caches ? &(*caches)[i] : nullptr);
  h = norm_f->forward(h);
  return head ? head->forward(h) : linear(h, tok_emb->weight);
}

Tensor GPT::loss(const Tensor& ids, const Tensor& targets) const {
  Tensor logits = forward(ids);
  return cross_entropy(logits.reshape({-1, config.vocab}), targets.reshape({-1}));
}

std::vector<nn::KVCache> GPT::make_caches(int64_t batch, int64_t capacity) const {
  std::vector<nn::KVCache> caches;
  DType dt = tok_emb->weight.dtype();
  for (size_t i = 0; i < layers->size(); ++i)
    caches.push_back(layers->at<Block>(i)->attn->make_cache(batch, capacity, dt));
  return caches;
}

std::string GPT::describe() const {
  return cat_str("GPT(vocab=", config.vocab, ", dim=", config.dim, ", depth=", config.depth,
                 ", heads=", config.heads, ", context=", config.context,
                 config.tie_weights ? ", tied head" : "", ")");
}

}  // namespace tz::models
