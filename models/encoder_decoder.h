// The encoder-decoder Transformer (Vaswani et al. 2017, arXiv:1706.03762; x-transformers'
// XTransformer with tie_token_emb). Shapes: B batch, S source / T target positions, C width,
// V vocabulary.
//   e = norm_enc(Encoder(emb[src] + pos_enc, src_mask))      bidirectional, padded keys hidden
//   d = Decoder(emb[tgt] + pos_dec, e, src_mask)             causal self-attention, then
//                                                            cross-attention to e, then FFN
//   logits = norm_dec(d) emb^T            (one embedding for both sides and the head when tied)
// Both stacks are the zoo's blocks (models/encoder_stack.h), so the config's mixer options,
// pos, ffn, norm and residual keys apply inside them. No step form: the decoder's cached
// decoding is left out (its causality is proven instead).
#pragma once

#include <memory>

#include "models/model.h"
#include "nn/layers.h"
#include "nn/registry.h"

namespace tz::models {

class EncoderDecoder : public Model {
 public:
  EncoderDecoder(const nn::Config& config, const nn::Registry& registry, Generator& gen);
  // src i64 [B, S], src_mask i64 [B, S] (1 = token, 0 = padding) → e [B, S, C]
  Tensor encode(const Tensor& src, const Tensor& src_mask, nn::AuxLosses* aux = nullptr);
  // tgt i64 [B, T] over the encoding e → logits [B, T, V]
  Tensor decode(const Tensor& tgt, const Tensor& enc, const Tensor& src_mask, nn::AuxLosses* aux = nullptr);
  using Model::forward;
  // {src, src_mask, tgt} → logits [B, T, V]
  Tensor forward(const std::vector<Tensor>& inputs, State* state = nullptr, nn::AuxLosses* aux = nullptr) override;
  Batch sample(int64_t batch, Generator& gen) const override;  // the copy task
  int causal_input() const override { return 2; }
  std::string why_no_step() const override {
    return "decoder KV-cached decoding not implemented (causality is checked)";
  }
  int64_t vocab() const override { return vocab_; }
  int64_t context() const override { return context_; }
  std::string describe() const override { return "EncoderDecoder"; }
  const nn::Embedding& src_embedding() const { return src_emb_own ? *src_emb_own : *tok_emb; }

  std::shared_ptr<nn::Embedding> tok_emb, src_emb_own;  // src_emb_own only when untied
  std::shared_ptr<nn::PositionScheme> pos_enc, pos_dec;
  std::shared_ptr<nn::ModuleList> encoder, decoder;  // of Block
  std::shared_ptr<nn::UnaryModule> norm_enc, norm_dec;

 private:
  int64_t vocab_ = 0, context_ = 0;
};

std::vector<nn::ConfigKey> encoder_decoder_keys();

}  // namespace tz::models
