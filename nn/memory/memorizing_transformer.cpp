// Memorizing Transformer: see memorizing_transformer.h.
#include "nn/memory/memorizing_transformer.h"

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/index.h"
#include "core/text.h"
#include "nn/attention/features/qk_norm.h"
#include "nn/attention/sdpa.h"
#include "nn/registry.h"

namespace tz::nn {

namespace {
Tensor append(const Tensor& a, const Tensor& b) { return a.defined() ? cat({a, b}, 2) : b; }
// The last `keep` rows (dim 2) in their own storage, so that a restored memory is the same bits.
Tensor last_rows(const Tensor& t, int64_t keep) { return t.narrow(2, t.size(2) - keep, keep).contiguous(); }
}  // namespace

Tensor knn_memory_attention(const Tensor& q_hat, const Tensor& g, const Tensor& mem_k, const Tensor& mem_v, int64_t k) {
  TZ_CHECK(q_hat.dim() == 4 && mem_k.dim() == 4 && mem_k.shape() == mem_v.shape() && q_hat.size(0) == mem_k.size(0) &&
               q_hat.size(1) == mem_k.size(1) && q_hat.size(3) == mem_k.size(3),
           "knn_memory_attention: expected q [B, H, T, D] and memory [B, H, n, D], got ", q_hat.shape(), ", ",
           mem_k.shape(), " and ", mem_v.shape());
  TZ_CHECK(k >= 1, "knn_memory_attention: k must be >= 1, got ", k);
  const int64_t B = q_hat.size(0), H = q_hat.size(1), T = q_hat.size(2), D = q_hat.size(3), n = mem_k.size(2);
  const int64_t kk = std::min(k, n);
  // The hits as rows of the flattened memory [B H n, D]: exactly kk per query, whatever ties.
  std::vector<int64_t> rows = knn_search(q_hat, mem_k, kk).contiguous().to_vector<int64_t>();
  for (size_t i = 0; i < rows.size(); ++i) rows[i] += int64_t(i) / (T * kk) * n;
  const Tensor index = from_vector(rows, {int64_t(rows.size())});
  const Tensor ks = index_select(mem_k.reshape({B * H * n, D}), 0, index).reshape({B, H, T, kk, D});
  const Tensor vs = index_select(mem_v.reshape({B * H * n, D}), 0, index).reshape({B, H, T, kk, D});
  Tensor s = matmul(q_hat.unsqueeze(3), ks.transpose(3, 4));  // [B, H, T, 1, kk]
  if (g.defined()) s = s * g.view({1, H, 1, 1, 1});
  return matmul(softmax(s), vs).squeeze(3);
}

Tensor knn_search(const Tensor& q_hat, const Tensor& mem_k, int64_t k) {
  TZ_CHECK(q_hat.dim() == 4 && mem_k.dim() == 4 && q_hat.size(3) == mem_k.size(3), "knn_search: expected q [B, H, T, ",
           "D] and memory [B, H, n, D], got ", q_hat.shape(), " and ", mem_k.shape());
  NoGradGuard no_grad;
  const Tensor scores = matmul(q_hat, mem_k.transpose(2, 3));  // [B, H, T, n]
  return core::topk(scores, std::min(k, mem_k.size(2)), -1, true).indices;
}

MemorizingAttention::MemorizingAttention(const MemorizingOptions& o, Generator& gen) : options(o) {
  const int64_t C = o.dim, H = o.heads;
  TZ_CHECK(C > 0 && H > 0 && C % H == 0, "memorizing_transformer: dim must be a positive multiple of heads, got dim ",
           C, ", heads ", H);
  TZ_CHECK(o.segment >= 1, "memorizing_transformer: knn_segment must be >= 1, got ", o.segment);
  TZ_CHECK(o.memory >= 1, "memorizing_transformer: knn_memory must be >= 1, got ", o.memory);
  TZ_CHECK(o.k >= 1, "memorizing_transformer: knn_k must be >= 1, got ", o.k);
  qkv = register_module("qkv", std::make_shared<Linear>(LinearOptions{.in = C, .out = 3 * C, .bias = o.bias}, gen));
  out = register_module("out", std::make_shared<Linear>(
                                   LinearOptions{.in = C, .out = C, .bias = o.bias, .init_std = o.out_init_std}, gen));
  drop = register_module("drop", std::make_shared<Dropout>(o.dropout));
  scale = register_parameter("scale", full({H}, qk_norm_init_scale(std::max<int64_t>(o.segment, 2))));
  gate = register_parameter("gate", zeros({H}));  // σ(0) = 1/2: memory and segment alike at first
}

Tensor MemorizingAttention::queries(const Tensor& x) const {
  const int64_t B = x.size(0), T = x.size(1), H = options.heads, D = options.dim / H;
  return l2_normalize(qkv->forward(x).view({B, T, 3, H, D}).select(2, 0).permute({0, 2, 1, 3}));
}

Tensor MemorizingAttention::piece(const Tensor& q_hat, const Tensor& q, const Tensor& k, const Tensor& v,
                                  MemorizingState& s, const MixerContext& ctx, bool kept) {
  const int64_t n = q.size(2), H = options.heads, cached = s.seg_k.defined() ? s.seg_k.size(2) : 0;
  const int64_t start = s.length;  // the position of q's first row
  // Local: the segment's keys so far and these.
  Tensor lk = cached ? cat({s.seg_k, k}, 2) : k, lv = cached ? cat({s.seg_v, v}, 2) : v, lq = q;
  SdpaSpec local{.scale = 1.0, .causal = true, .q_offset = cached};
  if (ctx.pos) {
    if (ctx.pos->rotates()) ctx.pos->rotate(lq, lk, start, start - cached);
    if (ctx.pos->biases_scores()) local.rel_bias = ctx.pos->score_bias(H, cached, n, cached + n, q.dtype(), &ctx);
  }
  Tensor y = sdpa(lq, lk, lv, local);
  if (s.mem_k.defined()) {
    const Tensor g = sigmoid(gate).view({1, H, 1, 1});
    y = y + g * (knn_memory_attention(q_hat, scale, s.mem_k, s.mem_v, options.k) - y);
  }
  s.seg_k = append(s.seg_k, kept ? k.detach() : k);  // what a caller's state keeps is a constant
  s.seg_v = append(s.seg_v, kept ? v.detach() : v);
  s.length += n;
  if (s.length % options.segment == 0) {  // the segment ends: its pairs enter the FIFO memory
    Tensor mk = append(s.mem_k, s.seg_k), mv = append(s.mem_v, s.seg_v);
    const int64_t keep = std::min(options.memory, mk.size(2));
    s.mem_k = last_rows(mk, keep);
    s.mem_v = last_rows(mv, keep);
    s.seg_k = s.seg_v = Tensor();
  }
  return y;
}

Tensor MemorizingAttention::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0 &&
               ctx.context == nullptr,
           describe(), ": takes no key padding, forgotten keys, segment memory or context (its memory is its own)");
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": expected x [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.pos || (!ctx.pos->biases_with_queries() && !ctx.pos->qk_input(0, 1, x.dtype()).defined()), describe(),
           ": the local attention takes rotary and relative-bias position schemes, not query-dependent terms or "
           "position-infused inputs");
  const int64_t B = x.size(0), T = x.size(1), H = options.heads, D = options.dim / H, L = options.segment;
  MemorizingState scratch;  // from scratch: the memory lives for this call
  scratch.length = ctx.start;
  MemorizingState& s = state ? own_state<MemorizingState>(state, ctx) : scratch;
  TZ_CHECK(!s.mem_k.defined() || s.mem_k.size(0) == B, describe(), ": state made for batch ", s.mem_k.size(0),
           ", input has batch ", B);
  const Tensor p = qkv->forward(x).view({B, T, 3, H, D});
  const Tensor q_hat = l2_normalize(p.select(2, 0).permute({0, 2, 1, 3})), q = q_hat * scale.view({1, H, 1, 1});
  const Tensor k = l2_normalize(p.select(2, 1).permute({0, 2, 1, 3})), v = p.select(2, 2).permute({0, 2, 1, 3});
  std::vector<Tensor> ys;
  for (int64_t done = 0; done < T;) {  // pieces that stay inside one segment
    const int64_t n = std::min(T - done, L - s.length % L);
    ys.push_back(piece(q_hat.narrow(2, done, n), q.narrow(2, done, n), k.narrow(2, done, n), v.narrow(2, done, n), s,
                       ctx, state != nullptr));
    done += n;
  }
  Tensor y = ys.size() == 1 ? ys[0] : cat(ys, 2);
  return drop->forward(out->forward(y.permute({0, 2, 1, 3}).reshape({B, T, options.dim})));
}

std::unique_ptr<MixerState> MemorizingAttention::make_state(int64_t, int64_t, DType) const {
  return std::make_unique<MemorizingState>();  // bounded by N + L pairs whatever the length
}

std::string MemorizingAttention::describe() const {
  return cat_str("MemorizingAttention(dim=", options.dim, ", heads=", options.heads, ", segment=", options.segment,
                 ", memory=", options.memory, ", k=", options.k, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_memorizing_transformer(nn::Registry& r) {
  r.add({.id = "memorizing_transformer",
         .summary = "kNN-augmented attention: causal attention over the segment plus exact top-k attention into a "
                    "FIFO memory of earlier segments' (key, value) pairs (detached), mixed by a learned gate per head",
         .keys = {nn::kKnnSegment, nn::kKnnMemory, nn::kKnnK},
         .test_config = R"({"mixer": ["vanilla_mha", "memorizing_transformer"], "knn_segment": 4, "knn_memory": 6,)"
                        R"( "knn_k": 3})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "context": 2048, "pos": "t5_rel_bias", "mixer": )"
                    R"(["vanilla_mha", "vanilla_mha", "memorizing_transformer", "vanilla_mha"], "knn_segment": 512, )"
                    R"("knn_memory": 65536, "knn_k": 32})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               TZ_CHECK(d.causal && d.context_dim == 0, c.source(),
                        ": memorizing_transformer is a causal self-attention mixer (no encoder or cross use)");
               const nn::MemorizingOptions o{
                   .dim = d.dim,
                   .heads = d.heads,
                   .segment = c.get(nn::kKnnSegment),
                   .memory = c.get(nn::kKnnMemory),
                   .k = c.get(nn::kKnnK),
                   .bias = d.bias,
                   .dropout = d.dropout,
                   .out_init_std = 0.02 / std::sqrt(2.0 * double(std::max<int64_t>(d.depth, 1)))};
               TZ_CHECK(o.segment >= 1, c.source(), ": knn_segment must be >= 1, got ", o.segment);
               TZ_CHECK(o.memory >= 1, c.source(), ": knn_memory must be >= 1, got ", o.memory);
               TZ_CHECK(o.k >= 1, c.source(), ": knn_k must be >= 1, got ", o.k);
               return std::make_shared<nn::MemorizingAttention>(o, gen);
             },
         .chunk = 4});
}

}  // namespace tz::zoo
