// Based: see based.h.
#include "nn/linear_rnn/based.h"

#include <cmath>

#include "core/creation.h"
#include "nn/linear_rnn/feature_maps.h"
#include "nn/registry.h"

namespace tz::nn {

Based::Based(const BasedOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.dim > 0 && o.heads > 0 && o.dim % o.heads == 0,
           "based: dim must be a positive multiple of heads, got dim ", o.dim, ", heads ", o.heads);
  TZ_CHECK(o.feature_dim >= 1 && o.feature_dim <= 64, "based: based_feature_dim must be in [1, 64], got ",
           o.feature_dim);
  TZ_CHECK(o.window >= 0, "based: based_window must be >= 0 (0 = no window branch), got ", o.window);
  TZ_CHECK(o.conv >= 0, "based: based_conv must be >= 0 (0 = no conv), got ", o.conv);
  TZ_CHECK(o.chunk >= 1, "based: linear_chunk must be >= 1, got ", o.chunk);
  const int64_t C = o.dim, Q = o.heads * o.feature_dim;
  auto lin = [&](const char* name, int64_t in, int64_t out) {
    return register_module(name, std::make_shared<Linear>(LinearOptions{.in = in, .out = out, .bias = o.bias}, gen));
  };
  qkv_proj = lin("qkv_proj", C, 2 * Q + C);
  if (o.window > 0) win_proj = lin("win_proj", C, 3 * C);
  o_proj = lin("o_proj", o.window > 0 ? 2 * C : C, C);
  if (o.conv > 0) {  // PyTorch's Conv1d default: U(+-1/sqrt(K))
    const double bound = 1.0 / std::sqrt(double(o.conv));
    conv_weight = register_parameter("conv_weight", rand({2 * Q + C, o.conv}, gen, DType::f32, -bound, bound));
  }
}

Tensor Based::features(const Tensor& x) const {
  return taylor_features(x * std::pow(double(options.feature_dim), -0.25));
}

Tensor Based::window_attention(const Tensor& a, const Tensor& b, const Tensor& c, int64_t start, BasedState* st) const {
  const int64_t T = a.size(2), W = options.window, P = st ? W : 0;  // P cached keys before x
  Tensor keys = st ? cat({st->win_k, b}, 2) : b, values = st ? cat({st->win_v, c}, 2) : c;
  // key j sits at position start - P + j; query i at start + i sees the keys in (i - W, i]
  std::vector<double> mask(size_t(T * (P + T)), 0.0);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < P + T; ++j) {
      const int64_t kp = start - P + j, qp = start + i;
      if (kp < 0 || kp > qp || kp <= qp - W) mask[size_t(i * (P + T) + j)] = -INFINITY;
    }
  Tensor scores = matmul(a, keys.transpose(-1, -2)) * (1.0 / std::sqrt(double(head_dim())));
  Tensor o = matmul(softmax(scores + from_vector(mask, {1, 1, T, P + T}).to(a.dtype())), values);
  if (st) {  // the last W keys and values
    st->win_k = keys.narrow(2, T, W).contiguous();
    st->win_v = values.narrow(2, T, W).contiguous();
  }
  return o;
}

Tensor Based::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.pos || !(ctx.pos->rotates() || ctx.pos->biases_scores() || ctx.pos->biases_with_queries()), describe(),
           ": the Taylor map has no scores to bias and rotates no q, k; use an embedding position scheme");
  BasedState* st = state ? &own_state<BasedState>(state, ctx) : nullptr;
  const int64_t H = options.heads, Q = H * options.feature_dim, C = options.dim;
  const int64_t start = st ? st->length : ctx.start;
  // linear branch: q, k, v through the short convs, then the Taylor features
  Tensor qkv = qkv_proj->forward(x);
  if (options.conv > 0)
    qkv = st && st->conv.defined() ? conv1d_causal_continue(qkv, conv_weight, Tensor(), st->conv)
                                   : conv1d_causal(qkv, conv_weight);
  Tensor q = features(split_heads(qkv.narrow(2, 0, Q), H)), k = features(split_heads(qkv.narrow(2, Q, Q), H));
  Tensor v = split_heads(qkv.narrow(2, 2 * Q, C), H);
  Tensor y =
      merge_heads(run_linear_attention(q, k, v, {.normalise = true, .form = options.form, .chunk = options.chunk}, st));
  if (options.window == 0) return o_proj->forward(y);
  // window branch
  Tensor abc = win_proj->forward(x);
  Tensor o = window_attention(split_heads(abc.narrow(2, 0, C), H), split_heads(abc.narrow(2, C, C), H),
                              split_heads(abc.narrow(2, 2 * C, C), H), start, st);
  return o_proj->forward(cat({y, merge_heads(o)}, 2));
}

std::unique_ptr<MixerState> Based::make_state(int64_t batch, int64_t, DType dtype) const {
  const int64_t H = options.heads, D = head_dim();
  auto s = std::make_unique<BasedState>();
  s->S = zeros({batch, H, feature_count(), D + 1}, dtype);
  if (options.conv > 1) s->conv = zeros({batch, options.conv - 1, 2 * H * options.feature_dim + options.dim}, dtype);
  if (options.window > 0) {
    s->win_k = zeros({batch, H, options.window, D}, dtype);
    s->win_v = zeros({batch, H, options.window, D}, dtype);
  }
  return s;
}

std::string Based::describe() const {
  return cat_str("Based(dim=", options.dim, ", heads=", options.heads, ", feature_dim=", options.feature_dim,
                 ", window=", options.window, ", conv=", options.conv, ", ", form_text(options.form, options.chunk),
                 ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_based(nn::Registry& r) {
  r.add(
      {.id = "based",
       .summary = "Based: Taylor-map linear attention (d' = 16) + sliding-window softmax + short convs",
       .keys = {nn::kBasedFeatureDim, nn::kBasedWindow, nn::kBasedConv, nn::kLinearChunk, nn::kLinearForm},
       // d' = 4 (21 features) keeps the gradient check quick; window 4 so that the causal and
       // step checks cross the window's edge
       .test_config = R"({"mixer": "based", "linear_chunk": 4, "heads": 2, "based_window": 4, "based_feature_dim": 4})",
       .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "based"})",
       .mixer =
           [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
             TZ_CHECK(d.causal && d.context_dim == 0, "based: a causal self-mixer only (no encoder or cross use)");
             return std::make_shared<nn::Based>(nn::BasedOptions{.dim = d.dim,
                                                                 .heads = d.heads,
                                                                 .feature_dim = c.get(nn::kBasedFeatureDim),
                                                                 .window = c.get(nn::kBasedWindow),
                                                                 .conv = c.get(nn::kBasedConv),
                                                                 .chunk = nn::linear_chunk(c),
                                                                 .form = nn::linear_form(c),
                                                                 .bias = d.bias},
                                                gen);
           },
       .chunk = 4});
}

}  // namespace tz::zoo
