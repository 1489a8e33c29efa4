// A GPT-style decoder-only language model (Radford et al. 2019, "Language Models are
// Unsupervised Multitask Learners"), pre-norm:
//   h0 = tok_emb[ids] + pos_emb[positions]
//   h  = h + attn(norm1(h));  h = h + mlp(norm2(h))        (depth times)
//   logits = norm_f(h) W_head^T      (W_head = tok_emb.weight when tied)
// Initialisation as GPT-2: N(0, 0.02), residual projections N(0, 0.02 / sqrt(2 * depth)).
#pragma once

#include <string>
#include <vector>

#include "nn/attention/attention.h"
#include "nn/ffn/mlp.h"

namespace tz::models {

struct GPTConfig {
  int64_t vocab = 256;
  int64_t dim = 256;
  int64_t depth = 4;
  int64_t heads = 4;
  int64_t context = 256;  // longest sequence (learned positions)
  int64_t mlp_mult = 4;
  std::string activation = "gelu";
  std::string norm = "layernorm";
  bool bias = true;
  double dropout = 0.0;
  bool tie_weights = true;

  void validate() const;  // throws naming the bad field
  // JSON object with any subset of the fields above; unknown keys throw, listing the valid ones.
  static GPTConfig from_json(const std::string& json);
  std::string to_json() const;
};

class Block : public nn::Module {
 public:
  Block(const GPTConfig& config, Generator& gen);
  Tensor forward(const Tensor& x, nn::KVCache* cache = nullptr) const;
  std::string describe() const override { return "Block(pre-norm)"; }
  std::shared_ptr<nn::UnaryModule> norm1, norm2;
  std::shared_ptr<nn::MultiHeadAttention> attn;
  std::shared_ptr<nn::MLP> mlp;
};

class GPT : public nn::Module {
 public:
  GPT(const GPTConfig& config, Generator& gen);
  // ids i64 [B, T] → logits [B, T, vocab]. With caches (one per layer), the tokens sit at
  // positions caches[0].length ... and their keys/values are appended.
  Tensor forward(const Tensor& ids, std::vector<nn::KVCache>* caches = nullptr) const;
  // Mean cross-entropy of next-token targets i64 [B, T] (-100 = ignored).
  Tensor loss(const Tensor& ids, const Tensor& targets) const;
  std::vector<nn::KVCache> make_caches(int64_t batch, int64_t capacity) const;
  std::string describe() const override;

  GPTConfig config;
  std::shared_ptr<nn::Embedding> tok_emb, pos_emb;
  std::shared_ptr<nn::ModuleList> layers;
  std::shared_ptr<nn::UnaryModule> norm_f;
  std::shared_ptr<nn::Linear> head;  // null when tied
};

}  // namespace tz::models
