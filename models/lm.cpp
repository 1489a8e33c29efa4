#include "models/lm.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/text.h"
#include "nn/layers.h"

namespace tz::models {

Tensor SequenceModel::loss(const Tensor& ids, const Tensor& targets) {
  nn::AuxLosses aux;
  Tensor logits = forward(ids, &aux);
  Tensor l = cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}));
  Tensor extra = aux.total();
  return extra.defined() ? l + extra : l;
}

std::vector<nn::ConfigKey> lm_config_keys() {
  return {
      {"vocab", "256", "vocabulary size (256 = bytes)"},
      {"dim", "256", "model width C"},
      {"depth", "4", "number of blocks"},
      {"heads", "4", "attention heads (must divide dim)"},
      {"context", "256", "longest sequence"},
      {"mixer", "\"vanilla_mha\"", "sequence mixer id, or a list with one id per layer"},
      {"pos", "\"learned_abs_pe\"", "position scheme id"},
      {"ffn", "\"ffn_mlp\"", "feed-forward id"},
      {"norm", "\"layernorm\"", "norm id"},
      {"norm_placement", "\"pre\"", "pre (x + f(norm(x))) or post (norm(x + f(x)))"},
      {"tie_weights", "true", "share the token embedding with the output head"},
      {"bias", "true", "biases in the linear layers"},
      {"dropout", "0.0", "residual dropout"},
  };
}

LMBlock::LMBlock(const nn::ModelDims& dims, const nn::Config& config, const nn::Registry& registry,
                 const std::string& id, Generator& gen)
    : mixer_id(id) {
  std::string norm_id = config.get_string("norm", "layernorm");
  std::string placement = config.get_string("norm_placement", "pre");
  TZ_CHECK(placement == "pre" || placement == "post", config.source(), ": norm_placement must be 'pre' or "
           "'post', got '", placement, "'");
  post_norm = placement == "post";
  norm1 = register_module("norm1", registry.make_norm(norm_id, dims, config, gen));
  mixer = register_module("mixer", registry.make_mixer(id, dims, config, gen));
  norm2 = register_module("norm2", registry.make_norm(norm_id, dims, config, gen));
  ffn = register_module("ffn", registry.make_ffn(config.get_string("ffn", "ffn_mlp"), dims, config, gen));
}

Tensor LMBlock::forward(const Tensor& x, const nn::MixerContext& ctx) {
  if (post_norm) {
    Tensor h = norm1->forward(x + mixer->forward(x, ctx));
    return norm2->forward(h + ffn->forward(h));
  }
  Tensor h = x + mixer->forward(norm1->forward(x), ctx);
  return h + ffn->forward(norm2->forward(h));
}

Tensor LMBlock::step(const Tensor& x, nn::MixerState& state, const nn::MixerContext& ctx) {
  if (post_norm) {
    Tensor h = norm1->forward(x + mixer->step(x, state, ctx));
    return norm2->forward(h + ffn->forward(h));
  }
  Tensor h = x + mixer->step(norm1->forward(x), state, ctx);
  return h + ffn->forward(norm2->forward(h));
}

std::string LMBlock::describe() const {
  return cat_str("Block(", mixer_id, post_norm ? ", post-norm" : ", pre-norm", ")");
}

LM::LM(const nn::Config& config, const nn::Registry& registry, Generator& gen) : config_(config) {
  const nn::Config& c = config_;
  vocab_ = c.get_int("vocab", 256);
  dims_.dim = c.get_int("dim", 256);
  dims_.depth = c.get_int("depth", 4);
  dims_.heads = c.get_int("heads", 4);
  dims_.context = c.get_int("context", 256);
  dims_.bias = c.get_bool("bias", true);
  dims_.dropout = c.get_double("dropout", 0.0);
  TZ_CHECK(vocab_ > 0 && dims_.dim > 0 && dims_.depth > 0 && dims_.heads > 0 && dims_.context > 0,
           c.source(), ": vocab, dim, depth, heads and context must be positive");
  TZ_CHECK(dims_.dim % dims_.heads == 0, c.source(), ": heads (", dims_.heads, ") must divide dim (", dims_.dim, ")");
  TZ_CHECK(dims_.dropout >= 0 && dims_.dropout < 1, c.source(), ": dropout must be in [0, 1), got ", dims_.dropout);
  std::vector<std::string> mixers = c.get_strings("mixer", {"vanilla_mha"});
  TZ_CHECK(mixers.size() == 1 || int64_t(mixers.size()) == dims_.depth, c.source(), ": 'mixer' lists ",
           mixers.size(), " ids for depth ", dims_.depth, " (give one id, or one per layer)");

  tok_emb = register_module("tok_emb", std::make_shared<nn::Embedding>(
                                           nn::EmbeddingOptions{.num = vocab_, .dim = dims_.dim}, gen));
  pos = register_module("pos", registry.make_position(c.get_string("pos", "learned_abs_pe"), dims_, c, gen));
  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < dims_.depth; ++i) {
    nn::ModelDims d = dims_;
    d.layer = i;
    layers->push_back(std::make_shared<LMBlock>(d, c, registry, mixers[mixers.size() == 1 ? 0 : size_t(i)], gen));
  }
  bool post = layers->at<LMBlock>(0)->post_norm;
  if (!post) norm_f = register_module("norm_f", registry.make_norm(c.get_string("norm", "layernorm"), dims_, c, gen));
  if (!c.get_bool("tie_weights", true))
    head = register_module("head", std::make_shared<nn::Linear>(
                                       nn::LinearOptions{.in = dims_.dim, .out = vocab_, .bias = false}, gen));

  // Every key must have been read by the LM or a chosen component.
  std::vector<std::string> valid;
  for (auto& k : lm_config_keys()) valid.push_back(k.key);
  auto add_keys = [&](const std::string& id) {
    if (const nn::VariantInfo* v = registry.find(id))
      for (auto& k : v->keys) valid.push_back(k.key);
  };
  for (auto& m : mixers) add_keys(m);
  add_keys(c.get_string("pos", "learned_abs_pe"));
  add_keys(c.get_string("ffn", "ffn_mlp"));
  add_keys(c.get_string("norm", "layernorm"));
  c.check_all_read(valid);
}

Tensor LM::embed(const Tensor& ids, int64_t start) {
  TZ_CHECK(ids.dim() == 2 && ids.dtype() == DType::i64, "LM: expected ids i64 [B, T], got ",
           dtype_name(ids.dtype()), " ", ids.shape());
  const int64_t T = ids.size(1);
  int64_t limit = pos->max_positions();
  TZ_CHECK(limit == 0 || start + T <= limit, "LM: positions up to ", start + T, " exceed the ", limit,
           " positions of '", config_.get_string("pos", "learned_abs_pe"), "'");
  Tensor h = tok_emb->forward(ids);
  Tensor p = pos->embed(start, T, h.dtype());
  return p.defined() ? h + p : h;
}

Tensor LM::logits(const Tensor& h) {
  Tensor x = norm_f ? norm_f->forward(h) : h;
  return head ? head->forward(x) : linear(x, tok_emb->weight);
}

Tensor LM::forward(const Tensor& ids, nn::AuxLosses* aux) {
  Tensor h = embed(ids, 0);
  std::map<std::string, Tensor> carry;
  nn::MixerContext ctx{.start = 0, .pos = pos.get(), .aux = aux, .carry = &carry};
  for (size_t i = 0; i < layers->size(); ++i) {
    ctx.layer = int64_t(i);
    h = layers->at<LMBlock>(i)->forward(h, ctx);
  }
  return logits(h);
}

bool LM::causal() const {
  for (size_t i = 0; i < layers->size(); ++i)
    if (!layers->at<LMBlock>(i)->mixer->causal()) return false;
  return true;
}

bool LM::has_step() const { return why_no_step().empty(); }

std::string LM::why_no_step() const {
  for (size_t i = 0; i < layers->size(); ++i) {
    auto& m = layers->at<LMBlock>(i)->mixer;
    if (!m->has_step()) return cat_str("layer ", i, " (", m->describe(), "): ", m->why_no_step());
  }
  return "";
}

SequenceModel::State LM::make_state(int64_t batch, int64_t capacity) const {
  std::string why = why_no_step();
  TZ_CHECK(why.empty(), "LM: no step-by-step decoding: ", why);
  State s;
  for (size_t i = 0; i < layers->size(); ++i)
    s.layers.push_back(layers->at<LMBlock>(i)->mixer->make_state(batch, capacity, tok_emb->weight.dtype()));
  return s;
}

Tensor LM::step(const Tensor& ids, State& state) {
  TZ_CHECK(state.layers.size() == layers->size(), "LM: state has ", state.layers.size(), " layers, model has ",
           layers->size());
  Tensor h = embed(ids, state.length);
  std::map<std::string, Tensor> carry;
  nn::MixerContext ctx{.start = state.length, .pos = pos.get(), .aux = nullptr, .carry = &carry};
  for (size_t i = 0; i < layers->size(); ++i) {
    ctx.layer = int64_t(i);
    h = layers->at<LMBlock>(i)->step(h, *state.layers[i], ctx);
  }
  state.length += ids.size(1);
  return logits(h);
}

std::string LM::describe() const {
  return cat_str("LM(vocab=", vocab_, ", dim=", dims_.dim, ", depth=", dims_.depth, ", heads=", dims_.heads,
                 ", context=", dims_.context, head ? "" : ", tied head", ")");
}

}  // namespace tz::models

namespace tz::zoo {

void register_gpt(nn::Registry& r) {
  r.add({.id = "gpt",
         .family = "block_arch",
         .kind = "model",
         .paper = "Radford et al. 2019 (GPT-2)",
         .summary = "Decoder-only LM: token + learned positions, pre-norm attention/MLP blocks, tied head",
         .source = "models/lm.cpp",
         .keys = models::lm_config_keys(),
         .test_config = "{}",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "context": 256})"});
}

void register_pre_post_norm(nn::Registry& r) {
  r.add({.id = "pre_post_norm",
         .family = "norm_residual",
         .kind = "residual",
         .paper = "arXiv:2002.04745",
         .summary = "Norm placement: pre-LN x + f(LN(x)) with a final norm, or post-LN LN(x + f(x))",
         .source = "models/lm.cpp",
         .keys = {{"norm_placement", "\"pre\"", "pre or post"}},
         .test_config = R"({"norm_placement": "post"})",
         .example = R"({"norm_placement": "post"})"});
}

}  // namespace tz::zoo
