#include "models/encoder_decoder.h"

#include "autograd/ops.h"
#include "core/creation.h"
#include "models/encoder_stack.h"
#include "models/keys.h"
#include "models/zoo.h"

namespace tz::models {

// The encoder-decoder's own keys (its defaults are a tiny model's).
namespace encdec {
const nn::Key<int64_t> kVocab{"vocab", 16, "vocabulary (0 = padding, 1 = BOS)"};
const nn::Key<int64_t> kDim{"dim", 16, "width C"};
const nn::Key<int64_t> kDepth{"depth", 1, "encoder and decoder layers"};
const nn::Key<int64_t> kHeads{"heads", 2, "heads"};
const nn::Key<int64_t> kContext{"context", 12, "longest sequence"};
const nn::Key<bool> kTieTokenEmb{"tie_token_emb", true, "one token embedding for encoder, decoder and head"};
}  // namespace encdec

std::vector<nn::ConfigKey> encoder_decoder_keys() {
  return {encdec::kVocab, encdec::kDim, encdec::kDepth, encdec::kHeads, encdec::kContext, encdec::kTieTokenEmb};
}

EncoderDecoder::EncoderDecoder(const nn::Config& config, const nn::Registry& registry, Generator& gen) : Model(config) {
  const nn::Config& c = config_;
  check_model_key(c, {"encoder_decoder"});
  vocab_ = c.get(encdec::kVocab);
  context_ = c.get(encdec::kContext);
  const nn::ModelDims d{.dim = c.get(encdec::kDim),
                        .heads = c.get(encdec::kHeads),
                        .context = context_,
                        .depth = c.get(encdec::kDepth),
                        .bias = c.get(models::kBias),
                        .dropout = c.get(models::kDropout)};
  TZ_CHECK(vocab_ > 2 && d.dim > 0 && d.depth > 0 && d.heads > 0 && d.dim % d.heads == 0 && context_ > 0, c.source(),
           ": vocab > 2, dim, depth, heads > 0 with heads dividing dim, context > 0");
  tok_emb = register_module("tok_emb",
                            std::make_shared<nn::Embedding>(nn::EmbeddingOptions{.num = vocab_, .dim = d.dim}, gen));
  if (!c.get(encdec::kTieTokenEmb))
    src_emb_own = register_module(
        "src_emb", std::make_shared<nn::Embedding>(nn::EmbeddingOptions{.num = vocab_, .dim = d.dim}, gen));
  pos_enc = register_module("pos_enc", make_wrapper_positions(d, registry, c, gen));
  pos_dec = register_module("pos_dec", make_wrapper_positions(d, registry, c, gen));
  encoder = register_module("encoder", make_stack({.depth = d.depth, .causal = false}, d, registry, c, gen));
  decoder = register_module("decoder",
                            make_stack({.depth = d.depth, .causal = true, .context_dim = d.dim}, d, registry, c, gen));
  norm_enc = register_module("norm_enc", registry.make_norm(c.get(models::kNorm), d, c, gen));
  norm_dec = register_module("norm_dec", registry.make_norm(c.get(models::kNorm), d, c, gen));
  check_wrapper_keys(c, registry, encoder_decoder_keys());
}

Tensor EncoderDecoder::encode(const Tensor& src, const Tensor& src_mask, nn::AuxLosses* aux) {
  const int64_t S = src.size(1);
  TZ_CHECK(S <= context_, "EncoderDecoder: source length ", S, " exceeds context ", context_);
  Tensor h = src_embedding().forward(src);
  Tensor p = pos_enc->embed(0, S, h.dtype());
  std::map<std::string, Tensor> carry;
  h = run_stack(*encoder, p.defined() ? h + p : h,
                {.pos = pos_enc.get(), .aux = aux, .carry = &carry, .key_padding = src_mask});
  return norm_enc->forward(h);
}

Tensor EncoderDecoder::decode(const Tensor& tgt, const Tensor& enc, const Tensor& src_mask, nn::AuxLosses* aux) {
  const int64_t T = tgt.size(1);
  TZ_CHECK(T <= context_, "EncoderDecoder: target length ", T, " exceeds context ", context_);
  Tensor h = tok_emb->forward(tgt);
  Tensor p = pos_dec->embed(0, T, h.dtype());
  std::map<std::string, Tensor> carry;
  h = run_stack(*decoder, p.defined() ? h + p : h,
                {.pos = pos_dec.get(), .aux = aux, .carry = &carry, .context = &enc, .context_padding = src_mask});
  return linear(norm_dec->forward(h), tok_emb->weight);
}

Tensor EncoderDecoder::forward(const std::vector<Tensor>& in, State* state, nn::AuxLosses* aux) {
  TZ_CHECK(!state, "EncoderDecoder: no step form (", why_no_step(), ")");
  TZ_CHECK(in.size() == 3, "EncoderDecoder: expected inputs {src, src_mask, tgt}, got ", in.size());
  return decode(in[2], encode(in[0], in[1], aux), in[1], aux);
}

// Copy task: src = random tokens (2..V-1) then padding; tgt = BOS + src shifted; targets = src.
Model::Batch EncoderDecoder::sample(int64_t B, Generator& gen) const {
  const int64_t S = context_;
  Tensor src = zeros({B, S}, DType::i64), mask = zeros({B, S}, DType::i64), tgt = zeros({B, S}, DType::i64);
  Tensor targets = full({B, S}, -100.0, DType::i64);
  for (int64_t b = 0; b < B; ++b) {
    int64_t L = gen.randint(S / 2, S + 1);
    for (int64_t t = 0; t < S; ++t) {
      int64_t tok = t < L ? gen.randint(2, vocab_) : 0;
      src.set({b, t}, double(tok));
      mask.set({b, t}, t < L ? 1.0 : 0.0);
      if (t < L) targets.set({b, t}, double(tok));
      if (t + 1 < S) tgt.set({b, t + 1}, double(tok));
    }
    tgt.set({b, 0}, 1.0);
  }
  return {{src, mask, tgt}, targets};
}

}  // namespace tz::models

namespace tz::zoo {

void register_encoder_decoder(nn::Registry& r) {
  r.add(
      {.id = "encoder_decoder",
       .summary =
           "Bidirectional encoder (padding mask) + decoder of causal self-attn, cross-attn, FFN; tied embeddings",
       .keys = models::wrapper_keys(models::encoder_decoder_keys()),
       .test_config = R"({"vocab": 16, "dim": 16, "depth": 1, "heads": 2, "context": 12})",
       .example =
           R"({"model": "encoder_decoder", "vocab": 256, "dim": 256, "depth": 6, "heads": 8, "context": 256, "pos": "rope", "ffn": "glu_variants"})",
       .model = [](const nn::Config& c,
                   Generator& g) { return std::make_shared<models::EncoderDecoder>(c, registry(), g); },
       .learn_steps = 1000,
       .learn_reason = "the decoder must first learn to read the source through cross-attention: 0.81 after 800 "
                       "steps, 1.00 after 1000"});
}

}  // namespace tz::zoo
