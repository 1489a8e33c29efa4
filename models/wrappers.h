// Zoo models whose inputs are not a single token sequence: an encoder-decoder, a ViT image
// classifier and a continuous-input wrapper (x-transformers' XTransformer, ViTransformerWrapper
// and ContinuousTransformerWrapper). Shapes: B batch, S source / T target positions, C width,
// V vocabulary, P = p·p·channels patch size, N patches.
//
//   encoder_decoder (arXiv:1706.03762):
//     e = Encoder(emb[src] + pos, src_mask)   bidirectional self-attention, padded keys masked
//     d_l = d + SelfAttn_causal(LN d);  d += CrossAttn(LN d, e, src_mask);  d += FFN(LN d)
//     logits = LN(d) emb^T                      (one Embedding shared by both sides and the head)
//   vit_wrapper (arXiv:2010.11929):
//     patches = patchify(img) [B, N, P];  z = [cls; patches W_p + b_p] + pos_emb  [B, N+1, C]
//     logits = W_h LN(Encoder(z)[:, 0])  [B, classes]
//   continuous_wrapper (x-transformers README):
//     y = W_out LN(Layers(x W_in + b_in + pos_emb, mask)) [B, T, dim_out]; causal option;
//     with `cross` each layer also cross-attends to a context [B, S, dim_context] (the
//     `cross_attention` catalogue id: CrossAttender-style conditioning).
// Every block is pre-norm: x += Attn(LN x); (x += CrossAttn(LN x, c)); x += MLP(LN x).
// None has a step form here: the encoders are bidirectional, and the decoder's KV-cached
// decoding is left out (its causality is proven instead).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/attention/cross_attention.h"
#include "nn/config.h"
#include "nn/ffn/mlp.h"
#include "nn/layers.h"
#include "nn/registry.h"

namespace tz::models {

// What the conformance suite needs from a non-LM model.
class ZooModel : public nn::Module {
 public:
  struct Example {
    std::vector<Tensor> inputs;
    Tensor targets;
  };
  // A batch of the model's own small learning task (also the example input for the checks).
  virtual Example sample(int64_t batch, Generator& gen) const = 0;
  // The main output (logits or values) for the inputs of a sample.
  virtual Tensor forward(const std::vector<Tensor>& inputs) = 0;
  virtual Tensor loss(const Example& example) = 0;
  // The input whose positions (dim 1) map causally to the output's positions (dim 1), or -1.
  virtual int causal_input() const { return -1; }
  virtual std::string why_not_causal() const = 0;
  virtual std::string why_no_step() const = 0;
};

struct EncoderLayerOptions {
  int64_t dim = 0, heads = 0;
  bool causal = false;
  bool cross = false;
  int64_t context_dim = 0;
};

// x += Attn(LN x, mask); (x += CrossAttn(LN x, c, c_mask)); x += MLP(LN x)
class EncoderLayer : public nn::Module {
 public:
  EncoderLayer(const EncoderLayerOptions& o, Generator& gen);
  Tensor forward(const Tensor& x, const Tensor& mask, const Tensor& context = Tensor(),
                 const Tensor& context_mask = Tensor()) const;
  std::string describe() const override { return "EncoderLayer"; }
  std::shared_ptr<nn::LayerNorm> norm1, norm_c, norm2;
  std::shared_ptr<nn::CrossAttention> attn, cross;
  std::shared_ptr<nn::MLP> ffn;
};

// img [B, ch, H, W] → [B, N, p·p·ch] (patch rows in raster order, channel last) and back.
Tensor patchify(const Tensor& img, int64_t p);
Tensor unpatchify(const Tensor& patches, int64_t p, int64_t channels, int64_t height, int64_t width);

class EncoderDecoder : public ZooModel {
 public:
  EncoderDecoder(const nn::Config& c, Generator& gen);
  // src i64 [B, S], src_mask i64 [B, S] (1 = token, 0 = padding) → e [B, S, C]
  Tensor encode(const Tensor& src, const Tensor& src_mask);
  Tensor decode(const Tensor& tgt, const Tensor& enc, const Tensor& src_mask);  // → logits [B, T, V]
  Example sample(int64_t batch, Generator& gen) const override;  // inputs {src, src_mask, tgt}
  Tensor forward(const std::vector<Tensor>& in) override { return decode(in[2], encode(in[0], in[1]), in[1]); }
  Tensor loss(const Example& ex) override;
  int causal_input() const override { return 2; }
  std::string why_not_causal() const override { return ""; }
  std::string why_no_step() const override { return "decoder KV-cached decoding not implemented (causality is checked)"; }
  std::string describe() const override { return "EncoderDecoder"; }
  int64_t vocab = 0, dim = 0, context = 0;
  std::shared_ptr<nn::Embedding> tok_emb, src_emb_own;  // src_emb_own only when untied
  std::shared_ptr<nn::Embedding> pos_enc, pos_dec;
  std::shared_ptr<nn::ModuleList> encoder, decoder;
  std::shared_ptr<nn::LayerNorm> norm_enc, norm_dec;
  const nn::Embedding& src_embedding() const { return src_emb_own ? *src_emb_own : *tok_emb; }
};

class ViT : public ZooModel {
 public:
  ViT(const nn::Config& c, Generator& gen);
  Example sample(int64_t batch, Generator& gen) const override;  // inputs {img}; targets class ids
  Tensor forward(const std::vector<Tensor>& in) override;        // → [B, classes]
  Tensor loss(const Example& ex) override;
  std::string why_not_causal() const override { return "an image classifier: one output per image"; }
  std::string why_no_step() const override { return "bidirectional encoder over all patches"; }
  std::string describe() const override { return "ViT"; }
  int64_t image = 0, patch = 0, channels = 0, classes = 0, dim = 0;
  std::shared_ptr<nn::Linear> patch_emb, head;
  Tensor cls, pos;
  std::shared_ptr<nn::ModuleList> layers;
  std::shared_ptr<nn::LayerNorm> norm;
};

class ContinuousWrapper : public ZooModel {
 public:
  ContinuousWrapper(const nn::Config& c, Generator& gen);
  // inputs {x [B, T, dim_in], mask i64 [B, T]} (+ {context [B, S, dim_context], context_mask})
  Example sample(int64_t batch, Generator& gen) const override;
  Tensor forward(const std::vector<Tensor>& in) override;  // → [B, T, dim_out]
  Tensor loss(const Example& ex) override;                  // masked mean squared error
  int causal_input() const override { return causal ? 0 : -1; }
  std::string why_not_causal() const override { return causal ? "" : "bidirectional encoder (causal: false)"; }
  std::string why_no_step() const override { return "no cached step form in the wrapper"; }
  std::string describe() const override { return "ContinuousWrapper"; }
  int64_t dim_in = 0, dim_out = 0, dim = 0, context = 0, dim_context = 0;
  bool causal = false, cross = false;
  std::shared_ptr<nn::Linear> project_in, project_out;
  std::shared_ptr<nn::Embedding> pos;
  std::shared_ptr<nn::ModuleList> layers;
  std::shared_ptr<nn::LayerNorm> norm;
};

// The config keys of each wrapper (registry docs and the unread-key check).
const std::vector<nn::ConfigKey>& encdec_keys();
const std::vector<nn::ConfigKey>& vit_keys();
const std::vector<nn::ConfigKey>& cont_keys();

}  // namespace tz::models
