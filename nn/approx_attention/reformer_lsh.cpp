// Reformer's LSH attention: see reformer_lsh.h.
#include "nn/approx_attention/reformer_lsh.h"

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

namespace {
// A hidden score: finite, so that a row with no visible key (a padding slot, or a round whose
// pairs all came earlier) gives no NaN; its log-sum-exp stays near -1e30 and its round's
// weight exp(lse_r - lse) is exactly 0.
constexpr double kHidden = -1e30;

// k_j = a_j / |a_j| (the epsilon only keeps a zero vector finite).
Tensor unit_keys(const Tensor& a) { return a * rsqrt(sum(a * a, {3}, true) + 1e-24); }
}  // namespace

LshVisibility LshVisibility::of(const int64_t* bucket, int64_t rounds, int64_t T, int64_t m) {
  LshVisibility s{.rounds = rounds, .T = T, .m = m};
  s.bucket.assign(bucket, bucket + rounds * T);
  s.index.resize(size_t(rounds * T));
  s.alone.assign(size_t(T), 1);
  for (int64_t r = 0; r < rounds; ++r) {
    std::vector<int64_t> count;
    for (int64_t i = 0; i < T; ++i) {
      const auto b = size_t(s.bucket[size_t(r * T + i)]);
      if (b >= count.size()) count.resize(b + 1, 0);
      s.index[size_t(r * T + i)] = count[b]++;
      if (s.index[size_t(r * T + i)] > 0) s.alone[size_t(i)] = 0;  // its bucket's previous position is in reach
    }
  }
  return s;
}

bool LshVisibility::in_round(int64_t r, int64_t i, int64_t j) const {
  if (j > i) return false;
  if (j == i) return alone[size_t(i)] != 0;
  const int64_t* b = bucket.data() + r * T;
  const int64_t* n = index.data() + r * T;
  return b[j] == b[i] && n[j] / m >= n[i] / m - 1;
}

bool LshVisibility::visible(int64_t r, int64_t i, int64_t j) const {
  if (!in_round(r, i, j)) return false;
  for (int64_t e = 0; e < r; ++e)
    if (in_round(e, i, j)) return false;
  return true;
}

bool LshVisibility::in_union(int64_t i, int64_t j) const {
  for (int64_t r = 0; r < rounds; ++r)
    if (in_round(r, i, j)) return true;
  return false;
}

ReformerLsh::ReformerLsh(int64_t dim_, int64_t heads_, int64_t buckets_, int64_t chunk_, int64_t rounds_,
                         Generator& gen)
    : dim(dim_), heads(heads_), buckets(buckets_), chunk(chunk_), rounds(rounds_) {
  TZ_CHECK(dim > 0 && heads > 0 && dim % heads == 0, "reformer_lsh: dim must be a positive multiple of heads, got dim ",
           dim, ", heads ", heads);
  TZ_CHECK(buckets == 1 || (buckets >= 2 && buckets % 2 == 0), "reformer_lsh: lsh_buckets must be 1 or even, got ",
           buckets);
  TZ_CHECK(chunk >= 1, "reformer_lsh: lsh_chunk must be >= 1, got ", chunk);
  TZ_CHECK(rounds >= 1 && rounds <= 64, "reformer_lsh: lsh_rounds must be in [1, 64], got ", rounds);
  qkv = register_module("qkv", std::make_shared<Linear>(LinearOptions{.in = dim, .out = 2 * dim, .bias = false}, gen));
  out = register_module("out", std::make_shared<Linear>(LinearOptions{.in = dim, .out = dim, .bias = false}, gen));
  if (buckets > 1) rotations = register_buffer("rotations", randn({rounds, heads, dim / heads, buckets / 2}, gen));
}

std::vector<int64_t> ReformerLsh::hash(const Tensor& a) const {
  const int64_t B = a.size(0), H = a.size(1), T = a.size(2), D = a.size(3), half = buckets / 2;
  std::vector<int64_t> out(size_t(B * H * rounds * T), 0);
  if (buckets == 1) return out;
  const std::vector<double> x = a.detach().contiguous().to_vector<double>(), R = rotations.to_vector<double>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t r = 0; r < rounds; ++r) {
        const double* rot = R.data() + (r * H + h) * D * half;
        for (int64_t i = 0; i < T; ++i) {
          const double* xi = x.data() + ((b * H + h) * T + i) * D;
          double best = -INFINITY;
          int64_t arg = 0;
          for (int64_t c = 0; c < half; ++c) {
            double s = 0;
            for (int64_t d = 0; d < D; ++d) s += xi[d] * rot[d * half + c];
            if (s > best) best = s, arg = c;
            if (-s > best) best = -s, arg = half + c;
          }
          out[size_t(((b * H + h) * rounds + r) * T + i)] = arg;
        }
      }
  return out;
}

Tensor ReformerLsh::attend(const Tensor& a, const Tensor& v) const {
  const int64_t B = a.size(0), H = a.size(1), T = a.size(2), D = a.size(3), R = rounds, m = chunk;
  const std::vector<int64_t> hashed = hash(a);
  // Per (b, h, round): positions sorted by (bucket, position), each bucket padded to a
  // multiple of m (slot -> position, T = padding), and each position's slot.
  std::vector<LshVisibility> vis;
  std::vector<std::vector<int64_t>> order(size_t(B * H * R));
  int64_t L = m;
  for (int64_t bh = 0; bh < B * H; ++bh) {
    vis.push_back(LshVisibility::of(hashed.data() + bh * R * T, R, T, m));
    for (int64_t r = 0; r < R; ++r) {
      std::vector<int64_t> by(static_cast<size_t>(T));
      for (int64_t i = 0; i < T; ++i) by[size_t(i)] = i;
      const int64_t* bk = hashed.data() + (bh * R + r) * T;
      std::stable_sort(by.begin(), by.end(), [&](int64_t x, int64_t y) { return bk[x] < bk[y]; });
      std::vector<int64_t>& o = order[size_t(bh * R + r)];
      for (size_t s = 0; s < by.size(); ++s) {
        if (s > 0 && bk[by[s]] != bk[by[s - 1]])
          while (int64_t(o.size()) % m) o.push_back(T);
        o.push_back(by[s]);
      }
      while (int64_t(o.size()) % m) o.push_back(T);
      L = std::max(L, int64_t(o.size()));
    }
  }
  const int64_t nc = L / m, NC = R * nc;
  std::vector<int64_t> slot_pos(size_t(B * H * R * L * D)), back(size_t(B * H * R * T * D));
  std::vector<float> hidden(size_t(B * H * NC * m * 2 * m), 1.0f);
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t r = 0; r < R; ++r) {
      std::vector<int64_t> o = order[size_t(bh * R + r)];
      o.resize(size_t(L), T);
      for (int64_t s = 0; s < L; ++s) {
        const int64_t i = o[size_t(s)];
        std::fill_n(slot_pos.begin() + ((bh * R + r) * L + s) * D, D, i);
        if (i < T) std::fill_n(back.begin() + ((bh * R + r) * T + i) * D, D, r * L + s);
        if (i == T) continue;  // a padding slot: its row stays hidden and is never read back
        const int64_t c = s / m;
        float* row = hidden.data() + ((bh * NC + r * nc + c) * m + s % m) * 2 * m;
        for (int64_t w = 0; w < 2 * m; ++w) {  // [previous chunk, own chunk]
          const int64_t t = (c - 1) * m + w;
          if (t < 0) continue;
          const int64_t j = o[size_t(t)];
          if (j < T && vis[size_t(bh)].visible(r, i, j)) row[w] = 0.0f;
        }
      }
    }
  const Shape chunks{B, H, NC, m, D};
  Tensor zero = zeros({B, H, 1, D}, a.dtype());
  auto sorted = [&](const Tensor& z) {  // [B, H, T, D] -> [B, H, R nc, m, D] in slot order
    return gather(cat({z, zero}, 2), 2, from_vector(slot_pos, {B, H, R * L, D})).view(chunks);
  };
  auto with_previous = [&](const Tensor& z) {  // [B, H, NC, 2m, D]: previous chunk, own chunk
    Tensor prev = cat({zeros({B, H, 1, m, D}, a.dtype()), z.narrow(2, 0, NC - 1)}, 2);
    return cat({prev, z}, 3);
  };
  Tensor q = sorted(a), k = with_previous(sorted(unit_keys(a))), vv = with_previous(sorted(v));
  Tensor s = matmul(q, k.transpose(3, 4)) * (1.0 / std::sqrt(double(D)));
  s = masked_fill(s, from_vector(hidden, {B, H, NC, m, 2 * m}), kHidden);
  Tensor lse = logsumexp(s, 4, true);                          // [B, H, NC, m, 1]
  Tensor o = matmul(exp(s - lse), vv).view({B, H, R * L, D});  // each round, its own softmax
  const Tensor idx = from_vector(back, {B, H, R * T, D});
  Tensor o_r = gather(o, 2, idx).view({B, H, R, T, D});
  Tensor lse_r = gather(lse.view({B, H, R * L, 1}), 2, idx.narrow(3, 0, 1)).view({B, H, R, T});
  // The rounds' disjoint parts merged by log-sum-exp: softmax over the union.
  Tensor w = softmax(lse_r.permute({0, 1, 3, 2}));  // [B, H, T, R]
  return sum(o_r.permute({0, 1, 3, 2, 4}) * w.unsqueeze(4), {3});
}

Tensor ReformerLsh::decode(const Tensor& a, const Tensor& v, LshState& st) const {
  const int64_t B = a.size(0), H = a.size(1), T = a.size(2), D = a.size(3), R = rounds, S0 = st.length, S = S0 + T;
  TZ_CHECK(S <= st.a.size(2), "reformer_lsh: the cache holds ", st.a.size(2), " positions, ", S, " asked");
  core::copy_(st.a.narrow(2, S0, T), a.detach());
  core::copy_(st.v.narrow(2, S0, T), v.detach());
  const std::vector<int64_t> fresh = hash(a);
  int64_t* cached = st.bucket.data<int64_t>();
  const int64_t cap = st.bucket.size(3);
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t r = 0; r < R; ++r) std::copy_n(fresh.begin() + (bh * R + r) * T, T, cached + (bh * R + r) * cap + S0);
  // Queries S0.. against every cached key, hidden outside the union of the rounds' sets.
  std::vector<float> hidden(size_t(B * H * T * S), 1.0f);
  std::vector<int64_t> seen(size_t(R * S));
  for (int64_t bh = 0; bh < B * H; ++bh) {
    for (int64_t r = 0; r < R; ++r) std::copy_n(cached + (bh * R + r) * cap, S, seen.begin() + r * S);
    const LshVisibility vis = LshVisibility::of(seen.data(), R, S, chunk);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j <= S0 + t; ++j)
        if (vis.in_union(S0 + t, j)) hidden[size_t((bh * T + t) * S + j)] = 0.0f;
  }
  Tensor keys = st.a.narrow(2, 0, S), values = st.v.narrow(2, 0, S);
  Tensor s = matmul(a, unit_keys(keys).transpose(2, 3)) * (1.0 / std::sqrt(double(D)));
  s = masked_fill(s, from_vector(hidden, {B, H, T, S}), kHidden);
  st.length = S;
  return matmul(softmax(s), values);
}

Tensor ReformerLsh::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0 &&
               ctx.context == nullptr,
           "reformer_lsh: takes no key padding, forgotten keys, segment memory or context");
  TZ_CHECK(x.dim() == 3 && x.size(2) == dim, "reformer_lsh: expected x [B, T, ", dim, "], got ", x.shape());
  const int64_t B = x.size(0), T = x.size(1), H = heads, D = dim / H;
  Tensor p = qkv->forward(x).view({B, T, 2, H, D});
  Tensor a = p.select(2, 0).permute({0, 2, 1, 3}), v = p.select(2, 1).permute({0, 2, 1, 3});
  Tensor o = state ? decode(a, v, own_state<LshState>(state, ctx)) : attend(a, v);
  return out->forward(o.permute({0, 2, 1, 3}).reshape({B, T, dim}));
}

std::unique_ptr<MixerState> ReformerLsh::make_state(int64_t batch, int64_t capacity, DType dtype) const {
  auto s = std::make_unique<LshState>();
  const int64_t D = dim / heads;
  s->a = zeros({batch, heads, capacity, D}, dtype);
  s->v = zeros({batch, heads, capacity, D}, dtype);
  s->bucket = zeros({batch, heads, rounds, capacity}, DType::i64);
  return s;
}

std::string ReformerLsh::describe() const {
  return cat_str("reformer_lsh(dim=", dim, ", heads=", heads, ", buckets=", buckets, ", chunk=", chunk,
                 ", rounds=", rounds, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_reformer_lsh(nn::Registry& r) {
  r.add({.id = "reformer_lsh",
         .summary = "Reformer: shared-QK attention within LSH buckets, sorted chunks, rounds merged over their union",
         .keys = {nn::kLshBuckets, nn::kLshChunk, nn::kLshRounds},
         .test_config = R"({"mixer": "reformer_lsh", "lsh_buckets": 2, "lsh_chunk": 4, "lsh_rounds": 2})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "reformer_lsh", "lsh_buckets": 8,
                        "lsh_chunk": 64, "lsh_rounds": 2})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               TZ_CHECK(d.causal && d.context_dim == 0, "reformer_lsh: a causal self-attention mixer (decoder)");
               return std::make_shared<nn::ReformerLsh>(d.dim, d.heads, c.get(nn::kLshBuckets), c.get(nn::kLshChunk),
                                                        c.get(nn::kLshRounds), gen);
             },
         .chunk = 4});
}

}  // namespace tz::zoo
