#include "nn/attention/attention.h"

#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"

namespace tz::nn {

MultiHeadAttention::MultiHeadAttention(const AttentionOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.dim > 0 && o.heads > 0 && o.dim % o.heads == 0, "MultiHeadAttention: heads (", o.heads,
           ") must divide dim (", o.dim, ")");
  TZ_CHECK(o.dropout >= 0 && o.dropout < 1, "MultiHeadAttention: dropout must be in [0, 1), got ",
           o.dropout);
  qkv = register_module("qkv", std::make_shared<Linear>(
                                   LinearOptions{.in = o.dim, .out = 3 * o.dim, .bias = o.bias}, gen));
  out = register_module("out", std::make_shared<Linear>(
                                   LinearOptions{.in = o.dim, .out = o.dim, .bias = o.bias,
                                                 .init_std = o.out_init_std}, gen));
  resid_drop = register_module("resid_drop", std::make_shared<Dropout>(o.dropout));
}

// The composite reference: matmul, scale, (+ bias), causal masked_fill, softmax, matmul. It
// stores the [B, H, T, S] scores and probabilities; used with a score bias, and by tests.
// (Declared where it is used: tests/core/test_attention.cpp.)
Tensor scaled_dot_product_attention_ref(const Tensor& q, const Tensor& k, const Tensor& v,
                                        bool causal, int64_t q_offset, const Tensor& score_bias);

Tensor scaled_dot_product_attention_ref(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    int64_t q_offset, const Tensor& score_bias) {
  TZ_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention: expected q, k, v of rank 4 "
           "[B, H, T, D], got ", q.shape(), ", ", k.shape(), ", ", v.shape());
  TZ_CHECK(k.shape() == v.shape() && q.size(-1) == k.size(-1) && q.size(0) == k.size(0) &&
               q.size(1) == k.size(1),
           "attention: shape mismatch, q ", q.shape(), " k ", k.shape(), " v ", v.shape());
  const int64_t T = q.size(2), S = k.size(2), D = q.size(3);
  Tensor scores = matmul(q, k.transpose(-1, -2)) * (1.0 / std::sqrt(double(D)));  // [B, H, T, S]
  if (score_bias.defined()) scores = scores + score_bias;
  if (causal) {
    // Key j is hidden from query i when j > q_offset + i: an upper-triangular mask.
    Tensor mask = triu(ones({T, S}, DType::i64), q_offset + 1);
    scores = masked_fill(scores, mask, -std::numeric_limits<double>::infinity());
  }
  return matmul(softmax(scores), v);
}

// Without a score bias: the fused, tiled kernel (autograd/ops_attention.cpp), which never
// stores the T x S probabilities and returns a view of [B, T, H, D] memory (so merging the
// heads afterwards is free).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    int64_t q_offset, const Tensor& score_bias) {
  if (score_bias.defined() || (causal && q_offset < 0))
    return scaled_dot_product_attention_ref(q, k, v, causal, q_offset, score_bias);
  TZ_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention: expected q, k, v of rank 4 "
           "[B, H, T, D], got ", q.shape(), ", ", k.shape(), ", ", v.shape());
  return tz::attention(q, k, v, causal, q_offset);
}

Tensor MultiHeadAttention::forward(const Tensor& x, KVCache* cache, const Tensor& score_bias) const {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, "MultiHeadAttention: expected x [B, T, ",
           options.dim, "], got ", x.shape());
  const int64_t B = x.size(0), T = x.size(1), C = options.dim, H = options.heads, D = C / H;
  Tensor qkv_out = qkv->forward(x).view({B, T, 3, H, D});
  Tensor q = qkv_out.select(2, 0).permute({0, 2, 1, 3});  // [B, H, T, D]
  Tensor k = qkv_out.select(2, 1).permute({0, 2, 1, 3});
  Tensor v = qkv_out.select(2, 2).permute({0, 2, 1, 3});
  int64_t offset = 0;
  if (cache) {
    TZ_CHECK(!grad_enabled() || !x.requires_grad(), "MultiHeadAttention: the KV cache is for "
             "decoding; run it under NoGradGuard");
    TZ_CHECK(cache->k.defined() && cache->k.size(0) == B, "MultiHeadAttention: cache made for "
             "batch ", cache->k.defined() ? cache->k.size(0) : 0, ", input has batch ", B);
    TZ_CHECK(cache->length + T <= cache->capacity(), "MultiHeadAttention: KV cache full (",
             cache->length, " + ", T, " > capacity ", cache->capacity(), ")");
    offset = cache->length;
    core::copy_(cache->k.narrow(2, offset, T), k);
    core::copy_(cache->v.narrow(2, offset, T), v);
    cache->length += T;
    k = cache->k.narrow(2, 0, cache->length);
    v = cache->v.narrow(2, 0, cache->length);
  }
  Tensor y = scaled_dot_product_attention(q, k, v, options.causal, offset, score_bias);
  return resid_drop->forward(out->forward(y.permute({0, 2, 1, 3}).reshape({B, T, C})));
}

KVCache MultiHeadAttention::make_cache(int64_t batch, int64_t capacity, DType dtype) const {
  const int64_t H = options.heads, D = options.dim / options.heads;
  return KVCache{zeros({batch, H, capacity, D}, dtype), zeros({batch, H, capacity, D}, dtype), 0};
}

std::string MultiHeadAttention::describe() const {
  return cat_str("MultiHeadAttention(dim=", options.dim, ", heads=", options.heads,
                 options.causal ? ", causal" : "", ")");
}

}  // namespace tz::nn
