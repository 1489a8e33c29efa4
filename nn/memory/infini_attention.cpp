// Infini-attention: see infini_attention.h.
#include "nn/memory/infini_attention.h"

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/text.h"
#include "nn/attention/sdpa.h"
#include "nn/linear_rnn/linear_transformer.h"
#include "nn/registry.h"

namespace tz::nn {

namespace {
Tensor append(const Tensor& a, const Tensor& b) { return a.defined() ? cat({a, b}, 2) : b; }

// σ(a) M / (σ(a) . z) of rows a [B, H, n, D]: what the memory returns for them (eq. 3).
// Called only when the memory holds a segment, so the denominator is positive.
Tensor memory_read(const Tensor& a, const Tensor& M, const Tensor& z) {
  const Tensor sa = elu_plus_one(a);
  return matmul(sa, M) / matmul(sa, z.unsqueeze(3));
}

// The memory absorbs the closed segment of s (eq. 4 or 5), and the segment restarts.
void close_segment(const InfiniSpec& spec, InfiniState& s) {
  if (spec.gate.defined()) {
    const Tensor sk = elu_plus_one(s.seg_k);  // σ(K_s) [B, H, L, D]
    Tensor values = s.seg_v;
    if (spec.delta && s.M.defined()) values = values - memory_read(s.seg_k, s.M, s.z);  // what M lacks
    const Tensor dM = matmul(sk.transpose(2, 3), values), dz = sum(sk, {2});
    s.M = s.M.defined() ? s.M + dM : dM;
    s.z = s.z.defined() ? s.z + dz : dz;
  }
  s.seg_k = s.seg_v = Tensor();
}

// One piece of a call inside one segment, q, k, v [B, H, n, D]: the segment-wise form.
Tensor piece(const Tensor& q, const Tensor& k, const Tensor& v, const InfiniSpec& spec, InfiniState& s) {
  const int64_t n = q.size(2), H = q.size(1), cached = s.seg_k.defined() ? s.seg_k.size(2) : 0;
  const int64_t start = s.length;  // the position of q's first row
  Tensor lk = cached ? cat({s.seg_k, k}, 2) : k, lv = cached ? cat({s.seg_v, v}, 2) : v, lq = q;
  SdpaSpec local{.causal = true, .q_offset = cached};
  if (spec.ctx && spec.ctx->pos) {
    const PositionScheme& pos = *spec.ctx->pos;
    if (pos.rotates()) pos.rotate(lq, lk, start, start - cached);
    if (pos.biases_scores()) local.rel_bias = pos.score_bias(H, cached, n, cached + n, q.dtype(), spec.ctx);
  }
  Tensor y = sdpa(lq, lk, lv, local);  // A_dot
  if (spec.gate.defined()) {
    const Tensor g = spec.gate.view({1, H, 1, 1});
    y = s.M.defined() ? y + g * (memory_read(q, s.M, s.z) - y) : y * (1.0 - g);  // empty memory: A_mem = 0
  }
  s.seg_k = append(s.seg_k, spec.keep_detached ? k.detach() : k);
  s.seg_v = append(s.seg_v, spec.keep_detached ? v.detach() : v);
  s.length += n;
  if (s.length % spec.segment == 0) close_segment(spec, s);
  return y;
}

void check_kernel_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const InfiniSpec& spec) {
  TZ_CHECK(q.dim() == 4 && q.shape() == k.shape() && q.shape() == v.shape(),
           "infini_attention: expected q, k, v [B, H, T, D] alike, got ", q.shape(), ", ", k.shape(), ", ", v.shape());
  TZ_CHECK(spec.segment >= 1, "infini_attention: infini_segment must be >= 1, got ", spec.segment);
  TZ_CHECK(!spec.gate.defined() || (spec.gate.dim() == 1 && spec.gate.size(0) == q.size(1)),
           "infini_attention: expected the gate [H = ", q.size(1), "], got ", spec.gate.shape());
}
}  // namespace

Tensor infini_attention_segments(const Tensor& q, const Tensor& k, const Tensor& v, const InfiniSpec& spec,
                                 InfiniState& s) {
  check_kernel_inputs(q, k, v, spec);
  const int64_t T = q.size(2), L = spec.segment;
  std::vector<Tensor> ys;
  for (int64_t done = 0; done < T;) {  // pieces that stay inside one segment
    const int64_t n = std::min(T - done, L - s.length % L);
    ys.push_back(piece(q.narrow(2, done, n), k.narrow(2, done, n), v.narrow(2, done, n), spec, s));
    done += n;
  }
  return ys.size() == 1 ? ys[0] : cat(ys, 2);
}

Tensor infini_attention_recurrent(const Tensor& q, const Tensor& k, const Tensor& v, const InfiniSpec& spec,
                                  InfiniState& s) {
  check_kernel_inputs(q, k, v, spec);
  TZ_CHECK(!spec.ctx || !spec.ctx->pos, "infini_attention_recurrent: the reference takes no positions");
  const int64_t T = q.size(2), H = q.size(1), D = q.size(3), L = spec.segment;
  const Tensor g = spec.gate.defined() ? spec.gate.view({1, H, 1, 1}) : Tensor();
  std::vector<Tensor> ks, vs, ys;  // the open segment's keys and values, one token each
  Tensor dM, dz;                   // its pending update, token by token
  auto absorb = [&](const Tensor& kt, const Tensor& vt) {
    ks.push_back(kt);
    vs.push_back(vt);
    if (!g.defined()) return;
    const Tensor sk = elu_plus_one(kt);
    const Tensor value = spec.delta && s.M.defined() ? vt - memory_read(kt, s.M, s.z) : vt;
    const Tensor m = matmul(sk.transpose(2, 3), value), zt = sk.squeeze(2);
    dM = dM.defined() ? dM + m : m;
    dz = dz.defined() ? dz + zt : zt;
  };
  for (int64_t j = 0; s.seg_k.defined() && j < s.seg_k.size(2); ++j)
    absorb(s.seg_k.narrow(2, j, 1), s.seg_v.narrow(2, j, 1));
  for (int64_t t = 0; t < T; ++t) {
    const Tensor qt = q.narrow(2, t, 1), kt = k.narrow(2, t, 1), vt = v.narrow(2, t, 1);
    absorb(kt, vt);
    const Tensor a = softmax(matmul(qt, cat(ks, 2).transpose(2, 3)) * (1.0 / std::sqrt(double(D))));
    Tensor y = matmul(a, cat(vs, 2));  // A_dot of token t
    if (g.defined()) y = s.M.defined() ? g * memory_read(qt, s.M, s.z) + (1.0 - g) * y : (1.0 - g) * y;
    ys.push_back(y);
    if (++s.length % L == 0) {  // the segment closes: its pending update joins the memory
      if (g.defined()) {
        s.M = s.M.defined() ? s.M + dM : dM;
        s.z = s.z.defined() ? s.z + dz : dz;
      }
      ks.clear(), vs.clear(), dM = dz = Tensor();
    }
  }
  s.seg_k = ks.empty() ? Tensor() : cat(ks, 2);
  s.seg_v = vs.empty() ? Tensor() : cat(vs, 2);
  return cat(ys, 2);
}

InfiniAttention::InfiniAttention(const InfiniOptions& o, Generator& gen) : options(o) {
  const int64_t C = o.dim, H = o.heads;
  TZ_CHECK(C > 0 && H > 0 && C % H == 0, "infini_attention: dim must be a positive multiple of heads, got dim ", C,
           ", heads ", H);
  TZ_CHECK(o.segment >= 1, "infini_attention: infini_segment must be >= 1, got ", o.segment);
  qkv = register_module("qkv", std::make_shared<Linear>(LinearOptions{.in = C, .out = 3 * C, .bias = o.bias}, gen));
  out = register_module("out", std::make_shared<Linear>(
                                   LinearOptions{.in = C, .out = C, .bias = o.bias, .init_std = o.out_init_std}, gen));
  drop = register_module("drop", std::make_shared<Dropout>(o.dropout));
  if (o.memory) beta = register_parameter("beta", zeros({H}));  // sigmoid(0) = 1/2: memory and segment alike
}

Tensor InfiniAttention::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0 &&
               ctx.context == nullptr,
           describe(), ": takes no key padding, forgotten keys, segment memory or context (its memory is its own)");
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": expected x [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.pos || (!ctx.pos->biases_with_queries() && !ctx.pos->qk_input(0, 1, x.dtype()).defined()), describe(),
           ": the local attention takes rotary and relative-bias position schemes, not query-dependent terms or "
           "position-infused inputs");
  const int64_t B = x.size(0), T = x.size(1), H = options.heads, D = options.dim / H;
  InfiniState scratch;  // from scratch: the memory lives for this call
  scratch.length = ctx.start;
  InfiniState& s = state ? own_state<InfiniState>(state, ctx) : scratch;
  TZ_CHECK(!s.seg_k.defined() || s.seg_k.size(0) == B, describe(), ": state made for batch ", s.seg_k.size(0),
           ", input has batch ", B);
  TZ_CHECK(!s.M.defined() || s.M.size(0) == B, describe(), ": state made for batch ", s.M.size(0), ", input has batch ",
           B);
  const Tensor p = qkv->forward(x).view({B, T, 3, H, D});
  const Tensor q = p.select(2, 0).permute({0, 2, 1, 3}), k = p.select(2, 1).permute({0, 2, 1, 3});
  const Tensor v = p.select(2, 2).permute({0, 2, 1, 3});
  const InfiniSpec spec{.gate = options.memory ? sigmoid(beta) : Tensor(),
                        .segment = options.segment,
                        .delta = options.delta,
                        .ctx = &ctx,
                        .keep_detached = state != nullptr};
  const Tensor y = infini_attention_segments(q, k, v, spec, s);
  return drop->forward(out->forward(y.permute({0, 2, 1, 3}).reshape({B, T, options.dim})));
}

std::unique_ptr<MixerState> InfiniAttention::make_state(int64_t, int64_t, DType) const {
  return std::make_unique<InfiniState>();  // M, z and at most L keys whatever the length
}

std::string InfiniAttention::describe() const {
  return cat_str("InfiniAttention(dim=", options.dim, ", heads=", options.heads, ", segment=", options.segment,
                 ", update=", options.delta ? "delta" : "linear", options.memory ? "" : ", memory off", ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_infini_attention(nn::Registry& r) {
  r.add({.id = "infini_attention",
         .summary = "Infini-attention: causal softmax attention within segments plus a compressive linear-attention "
                    "memory (elu + 1 features) of all earlier segments, mixed by a learned gate per head",
         .keys = {nn::kInfiniSegment, nn::kInfiniUpdate, nn::kInfiniMemory},
         .test_config = R"({"mixer": ["vanilla_mha", "infini_attention"], "infini_segment": 4})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "context": 8192, "pos": "rope", "mixer": )"
                    R"("infini_attention", "infini_segment": 2048, "infini_update": "delta"})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               TZ_CHECK(d.causal && d.context_dim == 0, c.source(),
                        ": infini_attention is a causal self-attention mixer (no encoder or cross use)");
               const std::string rule = c.get(nn::kInfiniUpdate);
               TZ_CHECK(rule == "linear" || rule == "delta", c.source(),
                        ": infini_update must be 'linear' or 'delta', got '", rule, "'");
               const nn::InfiniOptions o{.dim = d.dim,
                                         .heads = d.heads,
                                         .segment = c.get(nn::kInfiniSegment),
                                         .delta = rule == "delta",
                                         .memory = c.get(nn::kInfiniMemory),
                                         .bias = d.bias,
                                         .dropout = d.dropout,
                                         .out_init_std = 0.02 / std::sqrt(2.0 * double(std::max<int64_t>(d.depth, 1)))};
               TZ_CHECK(o.segment >= 1, c.source(), ": infini_segment must be >= 1, got ", o.segment);
               return std::make_shared<nn::InfiniAttention>(o, gen);
             },
         .chunk = 4});
}

}  // namespace tz::zoo
