// The Feedback Transformer: see feedback_transformer.h.
#include "models/feedback_transformer.h"

#include <algorithm>
#include <utility>

#include "autograd/ops.h"
#include "core/attention_partial.h"
#include "core/copy.h"
#include "core/creation.h"
#include "models/encoder_stack.h"
#include "models/keys.h"
#include "models/zoo.h"
#include "nn/linear_rnn/common.h"

namespace tz::models {

namespace {

// The keys and values a layer's query sees before the current step, as attention parts
// [B, H, S_c, D]. Each step adds a part of one key; two neighbouring parts of equal length
// join, as in a binary counter: at most log2(t) + 1 parts, and each key is copied log2(T)
// times in all, where one growing list would copy the whole past at every step.
struct Past {
  std::vector<Tensor> k, v;
  void push(const Tensor& kt, const Tensor& vt) {
    k.push_back(kt);
    v.push_back(vt);
    for (size_t n = k.size(); n >= 2 && k[n - 1].size(2) == k[n - 2].size(2); n = k.size())
      for (std::vector<Tensor>* xs : {&k, &v}) {
        Tensor joined = cat({(*xs)[n - 2], (*xs)[n - 1]}, 2);
        xs->resize(n - 2);
        xs->push_back(joined);
      }
  }
};

// The decoding state: per layer the keys and values of the memory (of its own inputs with
// feedback_memory false) [B, H, capacity, D], and the memory vectors m [B, capacity, C].
struct FeedbackState : nn::MixerState {
  Tensor memory;  // undefined with feedback_memory false
  std::vector<Tensor> k, v;
  void visit(nn::StateVisitor& vis) override {
    MixerState::visit(vis);
    vis.tensor("memory", memory);
    for (size_t l = 0; l < k.size(); ++l) {
      vis.tensor(cat_str("k", l), k[l]);
      vis.tensor(cat_str("v", l), v[l]);
    }
  }
};

}  // namespace

// One pre-norm block whose attention reads [past keys; its own input].
class FeedbackLayer : public nn::Module {
 public:
  FeedbackLayer(const nn::ModelDims& d, const nn::Registry& registry, const nn::Config& c, Generator& gen)
      : heads_(d.heads) {
    const std::string norm = c.get(kNorm);
    norm1 = register_module("norm1", registry.make_norm(norm, d, c, gen));
    q = register_module(
        "q", std::make_shared<nn::Linear>(nn::LinearOptions{.in = d.dim, .out = d.dim, .bias = d.bias}, gen));
    kv = register_module(
        "kv", std::make_shared<nn::Linear>(nn::LinearOptions{.in = d.dim, .out = 2 * d.dim, .bias = d.bias}, gen));
    out = register_module(
        "out", std::make_shared<nn::Linear>(nn::LinearOptions{.in = d.dim, .out = d.dim, .bias = d.bias}, gen));
    norm2 = register_module("norm2", registry.make_norm(norm, d, c, gen));
    ffn = register_module("ffn", registry.make_ffn(c.get(kFfn), d, c, gen));
    drop = register_module("drop", std::make_shared<nn::Dropout>(d.dropout));
  }
  std::string describe() const override { return "FeedbackLayer"; }

  // Keys and values of a normed input a [B, n, C]: [B, H, n, D] each.
  std::pair<Tensor, Tensor> keys_values(const Tensor& a) const {
    Tensor kvs = kv->forward(a);
    const int64_t C = a.size(2);
    return {nn::split_heads(kvs.narrow(2, 0, C), heads_), nn::split_heads(kvs.narrow(2, C, C), heads_)};
  }
  // The memory's keys and values, read through the attention norm as the layer's input is.
  std::pair<Tensor, Tensor> memory_keys_values(const Tensor& m) const { return keys_values(norm1->forward(m)); }

  struct Step {
    Tensor h, k, v;  // h_t^l [B, 1, C]; the keys and values of the layer's own input [B, H, 1, D]
  };
  // One step: x = h_t^{l-1} [B, 1, C] attends to [past; itself], then the FFN.
  Step step(const Tensor& x, const Past& past) const {
    Tensor a = norm1->forward(x);
    auto [k, v] = keys_values(a);
    std::vector<core::AttentionPart> parts;
    for (size_t i = 0; i < past.k.size(); ++i) parts.push_back({past.k[i], past.v[i], {}});
    parts.push_back({k, v, {}});
    Tensor z = attention_merged(nn::split_heads(q->forward(a), heads_), parts);  // [B, H, 1, D]
    Tensor h = x + drop->forward(out->forward(nn::merge_heads(z)));
    return {h + drop->forward(ffn->forward(norm2->forward(h))), k, v};
  }

  std::shared_ptr<nn::UnaryModule> norm1, norm2, ffn, drop;
  std::shared_ptr<nn::Linear> q, kv, out;

 private:
  int64_t heads_ = 0;
};

std::vector<nn::ConfigKey> feedback_keys() {
  nn::ConfigKey model = kModel;
  model.doc = "feedback_transformer selects this model (absent: gpt, the decoder LM)";
  return {model, kVocab, kDim,  kDepth,      kHeads,   kContext,       kPos,
          kFfn,  kNorm,  kBias, kTieWeights, kDropout, kFeedbackMemory};
}

FeedbackTransformer::FeedbackTransformer(const nn::Config& config, const nn::Registry& registry, Generator& gen)
    : Model(config) {
  const nn::Config& c = config_;
  check_model_key(c, {"feedback_transformer"});
  vocab_ = c.get(kVocab);
  dim_ = c.get(kDim);
  depth_ = c.get(kDepth);
  heads_ = c.get(kHeads);
  context_ = c.get(kContext);
  feedback_ = c.get(kFeedbackMemory);
  for (auto [key, value] :
       {std::pair{"vocab", vocab_}, {"dim", dim_}, {"depth", depth_}, {"heads", heads_}, {"context", context_}})
    TZ_CHECK(value > 0, c.source(), ": ", key, " must be positive, got ", value);
  TZ_CHECK(dim_ % heads_ == 0, c.source(), ": heads (", heads_, ") must divide dim (", dim_, ")");
  const nn::ModelDims d{.dim = dim_,
                        .heads = heads_,
                        .context = context_,
                        .depth = depth_,
                        .bias = c.get(kBias),
                        .dropout = c.get(kDropout)};
  TZ_CHECK(d.dropout >= 0 && d.dropout < 1, c.source(), ": dropout must be in [0, 1), got ", d.dropout);
  tok_emb = register_module("tok_emb",
                            std::make_shared<nn::Embedding>(nn::EmbeddingOptions{.num = vocab_, .dim = dim_}, gen));
  const std::string pos_id = c.get(kPos);
  pos = register_module("pos", registry.make_position(pos_id, d, c, gen));
  TZ_CHECK(pos_id == "none" || pos->embed(0, 1, DType::f32).defined(), c.source(), ": pos '", pos_id,
           "' acts inside attention; the feedback transformer adds positions to the embeddings: use learned_abs_pe, "
           "sinusoidal_pe or none");
  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  for (int64_t l = 0; l < depth_; ++l) {
    nn::ModelDims dl = d;
    dl.layer = l;
    layers->push_back(std::make_shared<FeedbackLayer>(dl, registry, c, gen));
  }
  norm_f = register_module("norm_f", registry.make_norm(c.get(kNorm), d, c, gen));
  if (!c.get(kTieWeights))
    head = register_module(
        "head", std::make_shared<nn::Linear>(nn::LinearOptions{.in = dim_, .out = vocab_, .bias = false}, gen));
  // w = 0: the memory starts as the mean of the layers.
  if (feedback_) layer_weights = register_parameter("layer_weights", zeros({depth_ + 1}));

  std::vector<std::string> valid;
  for (const nn::ConfigKey& k : feedback_keys()) valid.push_back(k.key);
  for (const std::string& id : {pos_id, c.get(kFfn), c.get(kNorm)})
    if (const nn::VariantInfo* v = registry.find(id))
      for (const nn::ConfigKey& k : v->keys) valid.push_back(k.key);
  c.check_all_read(valid);
}

std::string FeedbackTransformer::describe() const {
  return cat_str("FeedbackTransformer(vocab ", vocab_, ", dim ", dim_, ", depth ", depth_, ", heads ", heads_,
                 feedback_ ? "" : ", feedback_memory off", ")");
}

Tensor FeedbackTransformer::forward(const std::vector<Tensor>& inputs, State* state, nn::AuxLosses*) {
  TZ_CHECK(!inputs.empty() && inputs[0].dim() == 2 && inputs[0].dtype() == DType::i64, describe(),
           ": expected {ids i64 [B, T]}");
  const Tensor& ids = inputs[0];
  const int64_t B = ids.size(0), T = ids.size(1);
  FeedbackState* st = nullptr;
  if (state) {
    TZ_CHECK(state->layers.size() == 1, describe(), ": forward() was given a state not made by its make_state()");
    st = dynamic_cast<FeedbackState*>(state->layers[0].get());
    TZ_CHECK(st, describe(), ": forward() was given a state not made by its make_state()");
    TZ_CHECK(st->k[0].size(0) == B, describe(), ": the state holds ", st->k[0].size(0), " sequences, the input ", B);
  }
  const int64_t start = st ? st->length : 0, limit = st ? st->k[0].size(2) : context_;
  TZ_CHECK(start + T <= limit, describe(), ": positions up to ", start + T, " exceed the ",
           st ? "state's capacity " : "context ", limit);

  Tensor e = tok_emb->forward(ids);
  if (Tensor p = pos->embed(start, T, e.dtype()); p.defined()) e = e + p;
  auto seen = [&](int64_t t, int64_t l, const Tensor& h) { return tap ? tap(start + t, l, h) : h; };
  const Tensor mix = feedback_ ? softmax(layer_weights).reshape({depth_ + 1, 1, 1, 1}) : Tensor();
  std::vector<Past> past(static_cast<size_t>(depth_));
  std::vector<std::vector<Tensor>> new_k(past.size()), new_v(past.size());
  std::vector<Tensor> tops, mems;
  if (st && start > 0)
    for (size_t l = 0; l < past.size(); ++l) {
      past[l].k.push_back(st->k[l].narrow(2, 0, start));
      past[l].v.push_back(st->v[l].narrow(2, 0, start));
    }
  for (int64_t t = 0; t < T; ++t) {
    std::vector<Tensor> h{seen(t, 0, e.narrow(1, t, 1))};  // h_t^0 .. h_t^L
    std::vector<FeedbackLayer::Step> steps;
    for (size_t l = 0; l < past.size(); ++l) {
      steps.push_back(layers->at<FeedbackLayer>(l)->step(h.back(), past[l]));
      h.push_back(seen(t, int64_t(l) + 1, steps.back().h));
    }
    tops.push_back(h.back());
    if (!st && t == T - 1) break;  // the last memory vector has no reader
    Tensor m;
    if (feedback_) {
      m = sum(stack(h, 0) * mix, {0});  // m_t = sum_l softmax(w)_l h_t^l  [B, 1, C]
      mems.push_back(m);
    }
    for (size_t l = 0; l < past.size(); ++l) {
      auto [k, v] = feedback_ ? layers->at<FeedbackLayer>(l)->memory_keys_values(m) : std::pair{steps[l].k, steps[l].v};
      past[l].push(k, v);
      new_k[l].push_back(k);
      new_v[l].push_back(v);
    }
  }
  if (st) {  // the chunk's memory, a constant for later calls
    NoGradGuard no_grad;
    for (size_t l = 0; l < past.size(); ++l) {
      core::copy_(st->k[l].narrow(2, start, T), cat(new_k[l], 2));
      core::copy_(st->v[l].narrow(2, start, T), cat(new_v[l], 2));
    }
    if (feedback_) core::copy_(st->memory.narrow(1, start, T), cat(mems, 1));
    st->length += T;
    state->length = st->length;
  }
  Tensor y = norm_f->forward(cat(tops, 1));
  return head ? head->forward(y) : linear(y, tok_emb->weight);
}

Model::State FeedbackTransformer::make_state(int64_t batch, int64_t capacity) const {
  TZ_CHECK(batch >= 1 && capacity >= 1 && capacity <= context_, describe(),
           ": a state needs batch >= 1 and 1 <= ", "capacity <= context ", context_, ", got batch ", batch,
           ", capacity ", capacity);
  const DType dt = tok_emb->weight.dtype();
  auto st = std::make_unique<FeedbackState>();
  for (int64_t l = 0; l < depth_; ++l) {
    st->k.push_back(zeros({batch, heads_, capacity, dim_ / heads_}, dt));
    st->v.push_back(zeros({batch, heads_, capacity, dim_ / heads_}, dt));
  }
  if (feedback_) st->memory = zeros({batch, capacity, dim_}, dt);
  State s;
  s.layers.push_back(std::move(st));
  return s;
}

// x1..xn SEP x1..xn: reading SEP predicts x1, ..., reading x(n-1) predicts xn (the rest -100).
Model::Batch FeedbackTransformer::sample(int64_t B, Generator& gen) const {
  const int64_t T = std::min<int64_t>(context_, 16), n = T / 2;
  TZ_CHECK(T >= 4 && vocab_ >= 3, describe(), ": the copy task needs context >= 4 and vocab >= 3");
  Tensor x = zeros({B, T}, DType::i64), y = full({B, T}, -100.0, DType::i64);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> s(size_t(T + 1), 0);
    for (int64_t i = 0; i < n; ++i) s[size_t(i)] = s[size_t(n + 1 + i)] = gen.randint(2, vocab_);
    s[size_t(n)] = 1;
    for (int64_t t = 0; t < T; ++t) {
      x.set({b, t}, double(s[size_t(t)]));
      if (t >= n && t < 2 * n) y.set({b, t}, double(s[size_t(t + 1)]));
    }
  }
  return {{x}, y};
}

}  // namespace tz::models

namespace tz::zoo {

void register_feedback_transformer(nn::Registry& r) {
  r.add({.id = "feedback_transformer",
         .summary = "Every layer at step t attends to the memory m_s = sum_l softmax(w)_l h_s^l (s < t) and its own "
                    "input: lower layers read past higher-layer states; runs token by token",
         .keys = models::feedback_keys(),
         .test_config =
             R"({"model": "feedback_transformer", "vocab": 16, "dim": 16, "depth": 2, "heads": 2, "context": 24})",
         .example = R"({"model": "feedback_transformer", "dim": 128, "depth": 2, "heads": 4, "context": 128})",
         .model = [](const nn::Config& c, Generator& g) {
           return std::make_shared<models::FeedbackTransformer>(c, registry(), g);
         }});
}

}  // namespace tz::zoo
