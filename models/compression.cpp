// The Compressive Transformer's compression functions f_c and its two local losses (Rae et al.
// 2020, arXiv:1911.05507, sec. 3.1-3.2); the equations are in models/compression.h.
#include "models/compression.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/ops.h"
#include "core/creation.h"

namespace tz::models {

namespace {

const std::vector<std::string>& compress_fns() {
  static const std::vector<std::string> fns = {"max", "mean", "conv", "dilated_conv", "most_used"};
  return fns;
}

std::string joined(const std::vector<std::string>& xs) {
  std::string s;
  for (const auto& x : xs) s += (s.empty() ? "" : ", ") + x;
  return s;
}

void check_fn_rate(const std::string& fn, int64_t rate) {
  const auto& fns = compress_fns();
  TZ_CHECK(std::find(fns.begin(), fns.end(), fn) != fns.end(), kCompressFn.name, ": expected one of ", joined(fns),
           ", got '", fn, "'");
  TZ_CHECK(rate >= 1, kCompressRate.name, ": expected c >= 1, got ", rate);
}

// Tap spacing of f_c's windows: 2 for dilated_conv, else 1 (the plain window jc .. jc + c - 1).
int64_t dilation_of(const std::string& fn) { return fn == "dilated_conv" ? 2 : 1; }

}  // namespace

std::vector<nn::ConfigKey> compression_keys() {
  return {kCompressFn, kCompressRate, kCompressAeLoss, kCompressAttnLoss};
}

CompressionOptions read_compression(const nn::Config& config, int64_t dim) {
  CompressionOptions o{.fn = config.get(kCompressFn),
                       .rate = config.get(kCompressRate),
                       .dim = dim,
                       .ae_weight = config.get(kCompressAeLoss),
                       .attn_weight = config.get(kCompressAttnLoss)};
  check_fn_rate(o.fn, o.rate);
  TZ_CHECK(o.ae_weight >= 0 && std::isfinite(o.ae_weight), kCompressAeLoss.name, ": expected a weight >= 0, got ",
           o.ae_weight);
  TZ_CHECK(o.attn_weight >= 0 && std::isfinite(o.attn_weight), kCompressAttnLoss.name, ": expected a weight >= 0, got ",
           o.attn_weight);
  TZ_CHECK(dim > 0, "read_compression: the width C must be positive, got ", dim);
  return o;
}

// ---- the convolution ------------------------------------------------------------------------

CompressConv::CompressConv(int64_t dim_, int64_t rate_, int64_t dilation_, Generator& gen)
    : dim(dim_), rate(rate_), dilation(dilation_) {
  TZ_CHECK(dim > 0 && rate >= 1 && dilation >= 1, "CompressConv: expected dim > 0, rate >= 1, dilation >= 1, got ", dim,
           ", ", rate, ", ", dilation);
  // W_k = I / c + N(0, 0.01^2): at init f_c is close to mean pooling, so the first compressed
  // memories already summarise their sources (same scale as the memories, attention over them
  // sensible) and the reconstruction losses start small, instead of from random projections of
  // the memories that the main network would first have to learn to ignore.
  Tensor w = randn({dim, dim, rate}, gen, DType::f32, 0.0, 0.01);
  float* p = w.data<float>();
  for (int64_t i = 0; i < dim; ++i)
    for (int64_t k = 0; k < rate; ++k) p[(i * dim + i) * rate + k] += 1.0f / float(rate);
  weight = register_parameter("weight", w);
  bias = register_parameter("bias", zeros({dim}));
}

Tensor CompressConv::forward(const Tensor& x) const {
  TZ_CHECK(x.dim() == 3 && x.size(2) == dim, "CompressConv: expected x [B, n, ", dim, "], got ", x.shape());
  const int64_t B = x.size(0), n = x.size(1), c = rate, C = dim;
  const int64_t m = (n + c - 1) / c;
  if (m == 0) return x;  // nothing evicted
  // Zeros at the end up to the last tap's position: (m - 1) c + d (c - 1) + 1 >= n steps.
  const int64_t P = (m - 1) * c + dilation * (c - 1) + 1;
  Tensor xp = P > n ? cat({x, zeros({B, P - n, C}, x.dtype())}, 1) : x;
  // Tap k of every window: x_{jc + dk} for j = 0..m-1, a strided view [B, m, C].
  std::vector<Tensor> taps;
  for (int64_t k = 0; k < c; ++k) taps.push_back(xp.slice(1, dilation * k, dilation * k + (m - 1) * c + 1, c));
  Tensor windows = stack(taps, 2).reshape({B, m, c * C});  // [B, m, c C], column k C + i = x_{jc+dk, i}
  // W [C, C, c] as one matrix [C, c C] with the same column order: sum_k W_k x_k in one linear.
  Tensor w = weight.permute({0, 2, 1}).reshape({C, c * C});
  return linear(windows, w, bias);
}

std::string CompressConv::describe() const {
  return "CompressConv(" + std::to_string(dim) + ", kernel " + std::to_string(rate) + ", stride " +
         std::to_string(rate) + (dilation > 1 ? ", dilation " + std::to_string(dilation) : "") + ")";
}

// ---- the compressor --------------------------------------------------------------------------

Compressor::Compressor(const CompressionOptions& o, Generator& gen) : options(o) {
  check_fn_rate(o.fn, o.rate);
  TZ_CHECK(o.dim > 0, "Compressor: the width C must be positive, got ", o.dim);
  TZ_CHECK(o.ae_weight >= 0, kCompressAeLoss.name, ": expected a weight >= 0, got ", o.ae_weight);
  if (o.fn == "conv" || o.fn == "dilated_conv")
    conv = register_module("conv", std::make_shared<CompressConv>(o.dim, o.rate, dilation_of(o.fn), gen));
  if (o.ae_weight > 0)
    decoder = register_module("decoder",
                              std::make_shared<nn::Linear>(nn::LinearOptions{.in = o.dim, .out = o.rate * o.dim}, gen));
}

std::vector<std::vector<int64_t>> Compressor::kept_slots(const Tensor& usage, int64_t B, int64_t n) const {
  TZ_CHECK(usage.defined(), "Compressor: compress_fn most_used needs the usage [B, n] = [", B, ", ", n,
           "] of the old slots, got none");
  TZ_CHECK(usage.dim() == 2 && usage.size(0) == B && usage.size(1) == n, "Compressor: most_used expected usage [", B,
           ", ", n, "], got ", usage.shape());
  const std::vector<double> u = usage.to_vector<double>();
  const int64_t m = compressed_length(n);
  std::vector<std::vector<int64_t>> kept(B);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    // Most used first; a stable sort keeps the earlier slot on ties.
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t i, int64_t j) { return u[b * n + i] > u[b * n + j]; });
    idx.resize(m);
    std::sort(idx.begin(), idx.end());  // back in time order
    kept[b] = idx;
  }
  return kept;
}

Tensor Compressor::forward(const Tensor& old, const Tensor& usage) const {
  const int64_t C = options.dim, c = options.rate;
  TZ_CHECK(old.dim() == 3 && old.size(2) == C, "Compressor: expected old [B, n, ", C, "], got ", old.shape());
  const int64_t B = old.size(0), n = old.size(1), m = compressed_length(n);
  if (n == 0) return old;
  if (conv) return conv->forward(old);
  if (options.fn == "most_used") {
    auto kept = kept_slots(usage, B, n);
    std::vector<int64_t> index(B * m * C);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < m; ++j)
        for (int64_t i = 0; i < C; ++i) index[(b * m + j) * C + i] = kept[b][j];
    return gather(old, 1, from_vector(index, {B, m, C}));
  }
  // max / mean over the full windows, then the partial last window over what it has.
  const bool is_max = options.fn == "max";
  auto pool = [&](const Tensor& x, int64_t dim) { return is_max ? max(x, dim) : mean(x, {dim}); };
  const int64_t full = n / c, rest = n - full * c;
  std::vector<Tensor> parts;
  if (full > 0) parts.push_back(pool(old.narrow(1, 0, full * c).reshape({B, full, c, C}), 2));
  if (rest > 0) parts.push_back(pool(old.narrow(1, full * c, rest), 1).unsqueeze(1));
  return parts.size() == 1 ? parts[0] : cat(parts, 1);
}

Tensor Compressor::compress_mask(const Tensor& valid, const Tensor& usage) const {
  TZ_CHECK(valid.dim() == 2 && valid.dtype() == DType::i64, "Compressor: expected the validity mask i64 [B, n], got ",
           valid.shape(), " ", dtype_name(valid.dtype()));
  const int64_t B = valid.size(0), n = valid.size(1), m = compressed_length(n), c = options.rate;
  const std::vector<int64_t> v = valid.to_vector<int64_t>();
  std::vector<int64_t> out(B * m, 0);
  if (needs_usage()) {
    auto kept = kept_slots(usage, B, n);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < m; ++j) out[b * m + j] = v[b * n + kept[b][j]] != 0;
  } else {
    // Slot j's sources: jc + dk < n for k < c (the zero padding of the convolutions is no source).
    const int64_t d = dilation_of(options.fn);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < m; ++j)
        for (int64_t k = 0; k < c && j * c + d * k < n; ++k) out[b * m + j] |= v[b * n + j * c + d * k] != 0;
  }
  return from_vector(out, {B, m});
}

Tensor Compressor::autoencoding_loss(const Tensor& old, const Tensor& usage) const {
  TZ_CHECK(decoder, "Compressor: autoencoding_loss needs the decoder g, built only when ", kCompressAeLoss.name,
           " > 0 (got ", options.ae_weight, ")");
  const Tensor x = old.detach();  // a local loss: no gradient into the main network
  TZ_CHECK(x.dim() == 3, "Compressor: autoencoding_loss expected old [B, n, C], got ", old.shape());
  const int64_t B = x.size(0), n = x.size(1), C = options.dim, c = options.rate;
  TZ_CHECK(x.dim() == 3 && n > 0, "Compressor: autoencoding_loss expected old [B, n > 0, C], got ", old.shape());
  Tensor y = forward(x, usage);
  const int64_t m = y.size(1);
  Tensor rec = decoder->forward(y).reshape({B, m * c, C}).narrow(1, 0, n);  // g: slot j -> its c sources
  Tensor diff = x - rec;
  return mean(diff * diff);
}

std::string Compressor::describe() const {
  return "Compressor(" + options.fn + ", c=" + std::to_string(options.rate) + ", C=" + std::to_string(options.dim) +
         (decoder ? ", autoencoder" : "") + ")";
}

// ---- the attention-reconstruction loss ---------------------------------------------------------

namespace {

void check_layer(const nn::Attention& layer, const char* op) {
  const nn::AttentionLayout& L = layer.layout;
  TZ_CHECK(!layer.cross() && layer.qkv, op,
           ": needs a self-attention layer (q/k/v from one projection), got a "
           "cross-attention layer");
  TZ_CHECK(L.q_heads == L.H && L.k_heads == L.G && L.H % L.G == 0, op,
           ": needs H query heads and G key heads, got "
           "q_heads ",
           L.q_heads, ", k_heads ", L.k_heads, ", H ", L.H, ", G ", L.G);
}

void check_input(const nn::Attention& layer, const Tensor& t, int64_t B, const char* op, const char* name) {
  const int64_t C = layer.options.dim;
  TZ_CHECK(t.dim() == 3 && (B < 0 || t.size(0) == B) && t.size(2) == C && t.size(1) > 0, op, ": expected ", name,
           " [B, *, ", C, "] (B = ", B, "), got ", t.shape());
}

// attn(h, M) with the projection W [q | k | v rows, C] and bias b (undefined: none).
Tensor attend(const nn::AttentionLayout& L, const Tensor& W, const Tensor& b, const Tensor& h, const Tensor& mem) {
  const int64_t B = h.size(0), T = h.size(1), S = mem.size(1), H = L.H, G = L.G, Dk = L.Dk, D = L.D;
  auto rows = [&](const Tensor& t, int64_t start, int64_t len) { return t.defined() ? t.narrow(0, start, len) : t; };
  const int64_t qw = L.q_width(), kw = L.k_width(), vw = L.v_width();
  auto heads = [&](const Tensor& t, int64_t S_, int64_t width) {  // [B, S, G w] -> [B, H, S, w]
    Tensor x = t.view({B, S_, G, width}).permute({0, 2, 1, 3});
    if (G == H) return x;
    return x.unsqueeze(2).expand({B, G, H / G, S_, width}).reshape({B, H, S_, width});
  };
  Tensor q = linear(h, rows(W, 0, qw), rows(b, 0, qw)).view({B, T, H, Dk}).permute({0, 2, 1, 3});  // [B, H, T, Dk]
  Tensor k = heads(linear(mem, rows(W, qw, kw), rows(b, qw, kw)), S, Dk);                          // [B, H, S, Dk]
  Tensor v = heads(linear(mem, rows(W, qw + kw, vw), rows(b, qw + kw, vw)), S, D);                 // [B, H, S, D]
  const double scale = L.scale != 0 ? L.scale : 1.0 / std::sqrt(double(Dk));
  Tensor a = softmax(matmul(q, k.transpose(-1, -2)) * scale);  // [B, H, T, S]
  return matmul(a, v).permute({0, 2, 1, 3}).reshape({B, T, H * D});
}

}  // namespace

Tensor content_attention(const nn::Attention& layer, const Tensor& h, const Tensor& mem) {
  check_layer(layer, "content_attention");
  check_input(layer, h, -1, "content_attention", "h");
  check_input(layer, mem, h.size(0), "content_attention", "mem");
  return attend(layer.layout, layer.qkv->f32_weight("content_attention"), layer.qkv->bias, h, mem);
}

Tensor attention_reconstruction_loss(const nn::Attention& layer, const Tensor& h, const Tensor& old,
                                     const Tensor& compressed) {
  const char* op = "attention_reconstruction_loss";
  check_layer(layer, op);
  check_input(layer, h, -1, op, "h");
  check_input(layer, old, h.size(0), op, "old");
  check_input(layer, compressed, h.size(0), op, "compressed");
  // Stop every input of the main network: its weights, h and old.
  const Tensor W = layer.qkv->f32_weight(op).detach();
  const Tensor b = layer.qkv->bias.defined() ? layer.qkv->bias.detach() : Tensor();
  const Tensor hd = h.detach();
  Tensor diff = attend(layer.layout, W, b, hd, old.detach()) - attend(layer.layout, W, b, hd, compressed);
  return mean(diff * diff);
}

}  // namespace tz::models
