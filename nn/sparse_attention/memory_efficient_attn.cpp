// Memory-efficient (chunked) attention: see memory_efficient_attn.h.
#include "nn/sparse_attention/memory_efficient_attn.h"

#include <algorithm>

#include "nn/registry.h"

namespace tz::nn {

Tensor chunked_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_offset, int64_t c) {
  TZ_CHECK(c >= 1, "memory_efficient_attn: sparse_chunk must be >= 1, got ", c);
  const int64_t T = q.size(2), S = k.size(2);
  std::vector<Tensor> outs;
  for (int64_t i0 = 0; i0 < T;) {
    const int64_t P = q_offset + i0, i1 = std::min(T, i0 + c - P % c);  // to the next multiple of c
    std::vector<core::AttentionPart> parts;
    // Key chunks start at multiples of c up to the chunk's last position: never after P, so
    // every part's causal offset P - c0 is >= 0.
    for (int64_t c0 = 0; c0 <= q_offset + i1 - 1 && c0 < S; c0 += c) {
      const int64_t n = std::min(c, S - c0);
      parts.push_back({k.narrow(2, c0, n), v.narrow(2, c0, n), AttentionSpec{.causal = true, .q_offset = P - c0}});
    }
    outs.push_back(attention_merged(q.narrow(2, i0, i1 - i0), parts));
    i0 = i1;
  }
  return outs.size() == 1 ? outs[0] : cat(outs, 2);
}

}  // namespace tz::nn

namespace tz::zoo {

void register_memory_efficient_attn(nn::Registry& r) {
  r.add({.id = "memory_efficient_attn",
         .summary = "Memory-efficient attention: query and key chunks, key chunks merged by log-sum-exp",
         .keys = {nn::kSparseChunk},
         .test_config = R"({"mixer": "memory_efficient_attn", "sparse_chunk": 4})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "memory_efficient_attn", "sparse_chunk": 256})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& cfg, Generator& gen) {
               nn::check_causal_self("memory_efficient_attn", d.causal, d.context_dim);
               const int64_t c = cfg.get(nn::kSparseChunk);
               TZ_CHECK(c >= 1, "memory_efficient_attn: sparse_chunk must be >= 1, got ", c);
               return std::make_shared<nn::SparseAttention>(
                   nn::SparseAttentionOptions{
                       .dim = d.dim,
                       .heads = d.heads,
                       .name = cat_str("memory_efficient_attn(chunk=", c, ")"),
                       .attend = [c](const Tensor& q, const Tensor& k, const Tensor& v,
                                     int64_t q_offset) { return nn::chunked_attention(q, k, v, q_offset, c); }},
                   gen);
             },
         .chunk = 4});
}

}  // namespace tz::zoo
