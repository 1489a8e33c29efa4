#include "models/wrappers.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/text.h"
#include "nn/registry.h"

namespace tz::models {

EncoderLayer::EncoderLayer(const EncoderLayerOptions& o, Generator& gen) {
  norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(nn::NormOptions{.dim = o.dim}));
  attn = register_module("attn", std::make_shared<nn::CrossAttention>(
                                     nn::CrossAttentionOptions{.dim = o.dim, .heads = o.heads, .causal = o.causal}, gen));
  if (o.cross) {
    norm_c = register_module("norm_c", std::make_shared<nn::LayerNorm>(nn::NormOptions{.dim = o.dim}));
    cross = register_module("cross", std::make_shared<nn::CrossAttention>(
                                         nn::CrossAttentionOptions{.dim = o.dim, .heads = o.heads,
                                                                   .context_dim = o.context_dim}, gen));
  }
  norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(nn::NormOptions{.dim = o.dim}));
  ffn = register_module("ffn", std::make_shared<nn::MLP>(nn::MLPOptions{.dim = o.dim}, gen));
}

Tensor EncoderLayer::forward(const Tensor& x, const Tensor& mask, const Tensor& c, const Tensor& c_mask) const {
  Tensor u = norm1->forward(x);
  Tensor h = x + attn->forward(u, u, mask);
  if (cross) h = h + cross->forward(norm_c->forward(h), c, c_mask);
  return h + ffn->forward(norm2->forward(h));
}

Tensor patchify(const Tensor& img, int64_t p) {
  TZ_CHECK(img.dim() == 4 && img.size(2) % p == 0 && img.size(3) % p == 0, "patchify: expected [B, ch, H, W] with H, W "
           "multiples of ", p, ", got ", img.shape());
  const int64_t B = img.size(0), ch = img.size(1), H = img.size(2), W = img.size(3);
  return img.reshape({B, ch, H / p, p, W / p, p}).permute({0, 2, 4, 3, 5, 1}).reshape({B, (H / p) * (W / p), p * p * ch});
}

Tensor unpatchify(const Tensor& x, int64_t p, int64_t ch, int64_t H, int64_t W) {
  const int64_t B = x.size(0);
  return x.reshape({B, H / p, W / p, p, p, ch}).permute({0, 5, 1, 3, 2, 4}).reshape({B, ch, H, W});
}

namespace {
std::vector<std::string> keys_of(const std::vector<nn::ConfigKey>& ks) {
  std::vector<std::string> out;
  for (auto& k : ks) out.push_back(k.key);
  return out;
}

// Σ mask (pred - y)^2 / (Σ mask · width): mask [B, T] (nonzero = scored).
Tensor masked_mse(const Tensor& pred, const Tensor& y, const Tensor& mask) {
  Tensor m = mask.to(pred.dtype()).unsqueeze(-1);
  Tensor d = (pred - y) * m;
  return sum(d * d) / (sum(m).item() * double(pred.size(-1)));
}

}  // namespace
const std::vector<nn::ConfigKey>& encdec_keys() {
  static const std::vector<nn::ConfigKey> k = {
      {"vocab", "16", "vocabulary (0 = padding, 1 = BOS)"}, {"dim", "16", "width C"},
      {"depth", "1", "encoder and decoder layers"}, {"heads", "2", "heads"}, {"context", "12", "longest sequence"},
      {"tie_token_emb", "true", "one token embedding for encoder, decoder and head"}};
  return k;
}
const std::vector<nn::ConfigKey>& vit_keys() {
  static const std::vector<nn::ConfigKey> k = {
      {"image_size", "8", "H = W"}, {"patch_size", "4", "p"}, {"channels", "1", "image channels"},
      {"num_classes", "4", "classes"}, {"dim", "16", "width C"}, {"depth", "1", "encoder layers"}, {"heads", "2", "heads"}};
  return k;
}
const std::vector<nn::ConfigKey>& cont_keys() {
  static const std::vector<nn::ConfigKey> k = {
      {"dim_in", "4", "input features"}, {"dim_out", "2", "output features"}, {"dim", "16", "width C"},
      {"depth", "1", "layers"}, {"heads", "2", "heads"}, {"context", "12", "longest sequence"},
      {"causal", "false", "causal self-attention"}, {"cross", "false", "cross-attend to a context sequence"},
      {"dim_context", "4", "context features (with cross)"}};
  return k;
}

// ---- encoder-decoder ----

EncoderDecoder::EncoderDecoder(const nn::Config& c, Generator& gen) {
  vocab = c.get_int("vocab", 16);
  dim = c.get_int("dim", 16);
  int64_t depth = c.get_int("depth", 1), heads = c.get_int("heads", 2);
  context = c.get_int("context", 12);
  bool tie = c.get_bool("tie_token_emb", true);
  TZ_CHECK(vocab > 2 && dim > 0 && depth > 0 && heads > 0 && dim % heads == 0 && context > 0, c.source(),
           ": vocab > 2, dim, depth, heads > 0 with heads dividing dim, context > 0");
  c.check_all_read(keys_of(encdec_keys()));
  tok_emb = register_module("tok_emb", std::make_shared<nn::Embedding>(nn::EmbeddingOptions{.num = vocab, .dim = dim}, gen));
  if (!tie)
    src_emb_own = register_module("src_emb", std::make_shared<nn::Embedding>(nn::EmbeddingOptions{.num = vocab, .dim = dim}, gen));
  pos_enc = register_module("pos_enc", std::make_shared<nn::Embedding>(nn::EmbeddingOptions{.num = context, .dim = dim}, gen));
  pos_dec = register_module("pos_dec", std::make_shared<nn::Embedding>(nn::EmbeddingOptions{.num = context, .dim = dim}, gen));
  encoder = register_module("encoder", std::make_shared<nn::ModuleList>());
  decoder = register_module("decoder", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < depth; ++i) {
    encoder->push_back(std::make_shared<EncoderLayer>(EncoderLayerOptions{.dim = dim, .heads = heads}, gen));
    decoder->push_back(std::make_shared<EncoderLayer>(
        EncoderLayerOptions{.dim = dim, .heads = heads, .causal = true, .cross = true, .context_dim = dim}, gen));
  }
  norm_enc = register_module("norm_enc", std::make_shared<nn::LayerNorm>(nn::NormOptions{.dim = dim}));
  norm_dec = register_module("norm_dec", std::make_shared<nn::LayerNorm>(nn::NormOptions{.dim = dim}));
}

Tensor EncoderDecoder::encode(const Tensor& src, const Tensor& src_mask) {
  const int64_t S = src.size(1);
  TZ_CHECK(S <= context, "EncoderDecoder: source length ", S, " exceeds context ", context);
  Tensor h = src_embedding().forward(src) + pos_enc->forward(arange(S));
  for (size_t i = 0; i < encoder->size(); ++i) h = encoder->at<EncoderLayer>(i)->forward(h, src_mask);
  return norm_enc->forward(h);
}

Tensor EncoderDecoder::decode(const Tensor& tgt, const Tensor& enc, const Tensor& src_mask) {
  const int64_t T = tgt.size(1);
  TZ_CHECK(T <= context, "EncoderDecoder: target length ", T, " exceeds context ", context);
  Tensor h = tok_emb->forward(tgt) + pos_dec->forward(arange(T));
  for (size_t i = 0; i < decoder->size(); ++i) h = decoder->at<EncoderLayer>(i)->forward(h, Tensor(), enc, src_mask);
  return linear(norm_dec->forward(h), tok_emb->weight);
}

// Copy task: src = random tokens (2..V-1) then padding; tgt = BOS + src shifted; targets = src.
ZooModel::Example EncoderDecoder::sample(int64_t B, Generator& gen) const {
  const int64_t S = context;
  Tensor src = zeros({B, S}, DType::i64), mask = zeros({B, S}, DType::i64), tgt = zeros({B, S}, DType::i64);
  Tensor targets = full({B, S}, -100.0, DType::i64);
  for (int64_t b = 0; b < B; ++b) {
    int64_t L = gen.randint(S / 2, S + 1);
    for (int64_t t = 0; t < S; ++t) {
      int64_t tok = t < L ? gen.randint(2, vocab) : 0;
      src.set({b, t}, double(tok));
      mask.set({b, t}, t < L ? 1.0 : 0.0);
      if (t < L) targets.set({b, t}, double(tok));
      if (t + 1 < S) tgt.set({b, t + 1}, double(tok));
    }
    tgt.set({b, 0}, 1.0);
  }
  return {{src, mask, tgt}, targets};
}

Tensor EncoderDecoder::loss(const Example& ex) {
  Tensor logits = forward(ex.inputs);
  return cross_entropy(logits.reshape({-1, vocab}), ex.targets.reshape({-1}));
}

// ---- ViT ----

ViT::ViT(const nn::Config& c, Generator& gen) {
  image = c.get_int("image_size", 8);
  patch = c.get_int("patch_size", 4);
  channels = c.get_int("channels", 1);
  classes = c.get_int("num_classes", 4);
  dim = c.get_int("dim", 16);
  int64_t depth = c.get_int("depth", 1), heads = c.get_int("heads", 2);
  TZ_CHECK(patch > 0 && image > 0 && image % patch == 0, c.source(), ": patch_size (", patch,
           ") must divide image_size (", image, ")");
  TZ_CHECK(channels > 0 && classes > 1 && dim > 0 && depth > 0 && heads > 0 && dim % heads == 0, c.source(),
           ": channels, depth, heads > 0, num_classes > 1, heads dividing dim");
  c.check_all_read(keys_of(vit_keys()));
  const int64_t N = (image / patch) * (image / patch);
  patch_emb = register_module("patch_emb", std::make_shared<nn::Linear>(
                                               nn::LinearOptions{.in = patch * patch * channels, .out = dim}, gen));
  cls = register_parameter("cls", randn({1, 1, dim}, gen) * 0.02);
  pos = register_parameter("pos", randn({N + 1, dim}, gen) * 0.02);
  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < depth; ++i)
    layers->push_back(std::make_shared<EncoderLayer>(EncoderLayerOptions{.dim = dim, .heads = heads}, gen));
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(nn::NormOptions{.dim = dim}));
  head = register_module("head", std::make_shared<nn::Linear>(nn::LinearOptions{.in = dim, .out = classes}, gen));
}

Tensor ViT::forward(const std::vector<Tensor>& in) {
  const Tensor& img = in.at(0);
  TZ_CHECK(img.dim() == 4 && img.size(1) == channels && img.size(2) == image && img.size(3) == image,
           "ViT: expected images [B, ", channels, ", ", image, ", ", image, "], got ", img.shape());
  const int64_t B = img.size(0);
  Tensor z = patch_emb->forward(patchify(img, patch));             // [B, N, C]
  z = cat({cls.expand({B, 1, dim}), z}, 1) + pos;                  // [B, N + 1, C]
  for (size_t i = 0; i < layers->size(); ++i) z = layers->at<EncoderLayer>(i)->forward(z, Tensor());
  return head->forward(norm->forward(z.select(1, 0)));             // the [CLS] row
}

// Which quadrant holds the bright square: 4 classes (more classes reuse the quadrants + noise).
ZooModel::Example ViT::sample(int64_t B, Generator& gen) const {
  Tensor img = randn({B, channels, image, image}, gen) * 0.1;
  Tensor y = zeros({B}, DType::i64);
  const int64_t h = image / 2;
  for (int64_t b = 0; b < B; ++b) {
    int64_t k = gen.randint(0, std::min<int64_t>(classes, 4));
    y.set({b}, double(k));
    core::copy_(img.select(0, b).narrow(1, (k / 2) * h, h).narrow(2, (k % 2) * h, h),
                ones({channels, h, h}) + img.select(0, b).narrow(1, (k / 2) * h, h).narrow(2, (k % 2) * h, h));
  }
  return {{img}, y};
}

Tensor ViT::loss(const Example& ex) { return cross_entropy(forward(ex.inputs), ex.targets); }

// ---- continuous wrapper ----

ContinuousWrapper::ContinuousWrapper(const nn::Config& c, Generator& gen) {
  dim_in = c.get_int("dim_in", 4);
  dim_out = c.get_int("dim_out", 2);
  dim = c.get_int("dim", 16);
  int64_t depth = c.get_int("depth", 1), heads = c.get_int("heads", 2);
  context = c.get_int("context", 12);
  causal = c.get_bool("causal", false);
  cross = c.get_bool("cross", false);
  dim_context = c.get_int("dim_context", 4);
  TZ_CHECK(dim_in > 0 && dim_out > 0 && dim_out <= dim_in && dim > 0 && depth > 0 && heads > 0 && dim % heads == 0 &&
               context > 0 && dim_context >= dim_out,
           c.source(), ": dims positive, heads dividing dim, dim_out <= dim_in and dim_out <= dim_context");
  TZ_CHECK(cross || !c.has("dim_context"), c.source(), ": dim_context needs cross: true");
  c.check_all_read(keys_of(cont_keys()));
  project_in = register_module("project_in", std::make_shared<nn::Linear>(nn::LinearOptions{.in = dim_in, .out = dim}, gen));
  pos = register_module("pos", std::make_shared<nn::Embedding>(nn::EmbeddingOptions{.num = context, .dim = dim}, gen));
  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < depth; ++i)
    layers->push_back(std::make_shared<EncoderLayer>(
        EncoderLayerOptions{.dim = dim, .heads = heads, .causal = causal, .cross = cross, .context_dim = dim_context}, gen));
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(nn::NormOptions{.dim = dim}));
  project_out = register_module("project_out", std::make_shared<nn::Linear>(nn::LinearOptions{.in = dim, .out = dim_out}, gen));
}

Tensor ContinuousWrapper::forward(const std::vector<Tensor>& in) {
  const Tensor& x = in.at(0);
  TZ_CHECK(x.dim() == 3 && x.size(2) == dim_in && x.size(1) <= context, "ContinuousWrapper: expected x [B, T <= ",
           context, ", ", dim_in, "], got ", x.shape());
  TZ_CHECK(!cross || in.size() >= 4, "ContinuousWrapper: cross needs inputs {x, mask, context, context_mask}");
  Tensor h = project_in->forward(x) + pos->forward(arange(x.size(1)));
  Tensor mask = in.size() > 1 ? in[1] : Tensor();
  for (size_t i = 0; i < layers->size(); ++i)
    h = layers->at<EncoderLayer>(i)->forward(h, mask, cross ? in[2] : Tensor(), cross ? in[3] : Tensor());
  return project_out->forward(norm->forward(h));
}

// Causal: y_t = x_{t-1}[:dim_out]; bidirectional: y_t = x_{t+1}[:dim_out]; cross: y_t = the
// mean of the visible context rows [:dim_out]. Non-causal samples pad a random tail.
ZooModel::Example ContinuousWrapper::sample(int64_t B, Generator& gen) const {
  const int64_t T = context;
  Tensor x = randn({B, T, dim_in}, gen), mask = ones({B, T}, DType::i64), y = zeros({B, T, dim_out});
  std::vector<Tensor> in{x, mask};
  Tensor cx, cmask;
  if (cross) {
    cx = randn({B, T, dim_context}, gen);
    cmask = ones({B, T}, DType::i64);
  }
  for (int64_t b = 0; b < B; ++b) {
    int64_t L = causal ? T : gen.randint(T / 2, T + 1);
    for (int64_t t = L; t < T; ++t) mask.set({b, t}, 0.0);
    if (cross) {
      int64_t Lc = gen.randint(T / 2, T + 1);
      for (int64_t t = Lc; t < T; ++t) cmask.set({b, t}, 0.0);
      Tensor m = mean(cx.select(0, b).narrow(0, 0, Lc).narrow(1, 0, dim_out), {0}, true);  // [1, dim_out]
      core::copy_(y.select(0, b), m.expand({T, dim_out}));
    } else if (causal) {
      core::copy_(y.select(0, b).narrow(0, 1, T - 1), x.select(0, b).narrow(0, 0, T - 1).narrow(1, 0, dim_out));
    } else if (L > 1) {
      core::copy_(y.select(0, b).narrow(0, 0, L - 1), x.select(0, b).narrow(0, 1, L - 1).narrow(1, 0, dim_out));
    }
  }
  if (cross) in.insert(in.end(), {cx, cmask});
  return {in, y};
}

Tensor ContinuousWrapper::loss(const Example& ex) {
  return masked_mse(forward(ex.inputs), ex.targets.to(ex.inputs[0].dtype()), ex.inputs[1]);
}

}  // namespace tz::models

namespace tz::zoo {

void register_encoder_decoder(nn::Registry& r) {
  r.add({.id = "encoder_decoder", .summary = "Bidirectional encoder (padding mask) + decoder of causal self-attn, cross-attn, FFN; tied embeddings",
         .keys = models::encdec_keys(),
         .test_config = R"({"vocab": 16, "dim": 16, "depth": 1, "heads": 2, "context": 12})",
         .example = R"({"vocab": 256, "dim": 256, "depth": 6, "heads": 8, "context": 256, "tie_token_emb": true})",
         .model = [](const nn::Config& c, Generator& g) { return std::make_shared<models::EncoderDecoder>(c, g); }});
}

void register_vit_wrapper(nn::Registry& r) {
  r.add({.id = "vit_wrapper", .summary = "Image → p×p patches → linear embedding + [CLS] + learned positions → encoder → class logits",
         .keys = models::vit_keys(),
         .test_config = R"({"image_size": 8, "patch_size": 4, "num_classes": 4, "dim": 16, "heads": 2})",
         .example = R"({"image_size": 32, "patch_size": 4, "channels": 3, "num_classes": 10, "dim": 192, "depth": 6, "heads": 3})",
         .model = [](const nn::Config& c, Generator& g) { return std::make_shared<models::ViT>(c, g); }});
}

void register_continuous_wrapper(nn::Registry& r) {
  r.add({.id = "continuous_wrapper", .summary = "Real-valued [B, T, dim_in] → project_in → attention layers (mask; causal option) → project_out",
         .keys = models::cont_keys(),
         .test_config = R"({"dim_in": 4, "dim_out": 2, "dim": 16, "heads": 2, "context": 12, "causal": true})",
         .example = R"({"dim_in": 32, "dim_out": 32, "dim": 256, "depth": 4, "heads": 4, "causal": false})",
         .model = [](const nn::Config& c, Generator& g) { return std::make_shared<models::ContinuousWrapper>(c, g); }});
}

}  // namespace tz::zoo

namespace tz::zoo {

// The module lives in nn/attention/cross_attention.{h,cpp}; it is registered here because its
// conformance model (the continuous wrapper with `cross`, a CrossAttender-style stack) is a
// models/ class and nn/ may not depend on models/.
void register_cross_attention(nn::Registry& r) {
  r.add({.id = "cross_attention", .summary = "x += softmax(Q(x) K(c)^T / sqrt(d) + mask_c) V(c) over a context sequence c with a key mask",
         .keys = models::cont_keys(),
         .test_config = R"({"dim_in": 4, "dim_out": 2, "dim": 16, "heads": 2, "context": 12, "cross": true, "dim_context": 4})",
         .example = R"({"cross": true, "dim_context": 512, "dim_in": 32, "dim_out": 32})",
         .model = [](const nn::Config& c, Generator& g) { return std::make_shared<models::ContinuousWrapper>(c, g); }});
}

}  // namespace tz::zoo
