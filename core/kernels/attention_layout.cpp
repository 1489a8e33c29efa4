// Sparse attention patterns, their block layouts and mask terms: see attention_layout.h.
#include "core/kernels/attention_layout.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/error.h"

namespace tz::kernels {

namespace {
int64_t mod(int64_t a, int64_t m) { return ((a % m) + m) % m; }
int64_t dist(int64_t p, int64_t j) { return p > j ? p - j : j - p; }

// splitmix64 (Steele, Lea, Flood 2014): one well-mixed 64-bit word per seed, so the random
// blocks of (seed, h, qb) do not depend on the order in which anything is asked.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

// ---- patterns ------------------------------------------------------------------------------

SparsePattern window_pattern(int64_t w) {
  TZ_CHECK(w >= 1, "window_pattern: window w must be >= 1, got ", w);
  return {cat_str("window(w=", w, ")"), 0, [w](int64_t, int64_t p, int64_t j) { return dist(p, j) < w; }};
}

SparsePattern strided_pattern(int64_t l, bool split) {
  TZ_CHECK(l >= 1, "strided_pattern: stride l must be >= 1, got ", l);
  return {cat_str("strided(l=", l, split ? ", split heads)" : ")"), 0, [l, split](int64_t h, int64_t p, int64_t j) {
            const bool a1 = dist(p, j) < l, a2 = mod(p - j, l) == 0;
            return split ? (h % 2 == 0 ? a1 : a2) : (a1 || a2);
          }};
}

SparsePattern fixed_pattern(int64_t l, int64_t c, bool split) {
  TZ_CHECK(l >= 1 && c >= 1 && c <= l, "fixed_pattern: expected block l >= 1 and 1 <= c <= l summaries, got l ", l,
           ", c ", c);
  return {cat_str("fixed(l=", l, ", c=", c, split ? ", split heads)" : ")"), 0,
          [l, c, split](int64_t h, int64_t p, int64_t j) {
            const bool a1 = p / l == j / l, a2 = j % l >= l - c;
            return split ? (h % 2 == 0 ? a1 : a2) : (a1 || a2);
          }};
}

SparsePattern dilated_window_pattern(int64_t w, std::vector<int64_t> d) {
  TZ_CHECK(w >= 1 && !d.empty(), "dilated_window_pattern: expected w >= 1 and at least one dilation, got w ", w);
  std::string ds;
  for (int64_t x : d) {
    TZ_CHECK(x >= 1, "dilated_window_pattern: dilations must be >= 1, got ", x);
    if (!ds.empty()) ds += ',';
    ds += std::to_string(x);
  }
  return {cat_str("dilated_window(w=", w, ", d=", ds, ")"), 0, [w, d](int64_t h, int64_t p, int64_t j) {
            const int64_t dh = d[size_t(h % int64_t(d.size()))];
            return dist(p, j) < w * dh && mod(p - j, dh) == 0;
          }};
}

SparsePattern global_tokens_pattern(int64_t g) {
  TZ_CHECK(g >= 0, "global_tokens_pattern: expected g >= 0 global tokens, got ", g);
  return {cat_str("global(g=", g, ")"), 0, [g](int64_t, int64_t p, int64_t j) { return p < g || j < g; },
          g};  // g = 0: hides nothing, constant everywhere (granule 0)
}

SparsePattern random_blocks_pattern(int64_t b, int64_t r, uint64_t seed, int64_t H, int64_t N) {
  TZ_CHECK(b >= 1 && r >= 0 && H >= 1 && N >= 0, "random_blocks_pattern: expected block b >= 1, r >= 0, H >= 1, got b ",
           b, ", r ", r, ", H ", H);
  const int64_t nb = (N + b - 1) / b;
  // chosen[(h * nb + qb) * nb + kb]: r distinct key blocks of 0..qb (all of them if r > qb),
  // by a partial Fisher-Yates shuffle driven by mix(seed, h, qb, step).
  auto chosen = std::make_shared<std::vector<uint8_t>>(size_t(H * nb * nb), 0);
  std::vector<int64_t> pool;
  for (int64_t h = 0; h < H; ++h)
    for (int64_t qb = 0; qb < nb; ++qb) {
      pool.resize(size_t(qb + 1));
      std::iota(pool.begin(), pool.end(), int64_t(0));
      const int64_t take = std::min(r, qb + 1);
      uint64_t state = mix(seed ^ mix(uint64_t(h) * 0x100000001b3ull ^ mix(uint64_t(qb))));
      for (int64_t s = 0; s < take; ++s) {
        state = mix(state);
        const int64_t pick = s + int64_t(state % uint64_t(qb + 1 - s));
        std::swap(pool[size_t(s)], pool[size_t(pick)]);
        (*chosen)[size_t((h * nb + qb) * nb + pool[size_t(s)])] = 1;
      }
    }
  return {cat_str("random_blocks(b=", b, ", r=", r, ", seed=", seed, ")"), H,
          [b, nb, chosen](int64_t h, int64_t p, int64_t j) {
            const int64_t qb = p / b, kb = j / b;
            return qb < nb && kb < nb && (*chosen)[size_t((h * nb + qb) * nb + kb)] != 0;
          },
          b};
}

SparsePattern bigbird_pattern(int64_t b, int64_t wb, int64_t gb, int64_t r, uint64_t seed, int64_t H, int64_t N) {
  TZ_CHECK(b >= 1 && wb >= 0 && gb >= 0,
           "bigbird_pattern: expected block b >= 1, window wb >= 0 and gb >= 0 blocks, got b ", b, ", wb ", wb, ", gb ",
           gb);
  SparsePattern blocks{cat_str("block_window(b=", b, ", wb=", wb, ")"), 0,
                       [b, wb](int64_t, int64_t p, int64_t j) { return dist(p / b, j / b) <= wb; }, b};
  SparsePattern bb = union_of({blocks, global_tokens_pattern(gb * b), random_blocks_pattern(b, r, seed, H, N)});
  bb.name = cat_str("bigbird(b=", b, ", wb=", wb, ", gb=", gb, ", r=", r, ", seed=", seed, ")");
  return bb;
}

SparsePattern longformer_pattern(int64_t w, std::vector<int64_t> d, int64_t g) {
  SparsePattern lf = union_of({dilated_window_pattern(w, std::move(d)), global_tokens_pattern(g)});
  lf.name = cat_str("longformer(", lf.name, ")");
  return lf;
}

SparsePattern segment_dilated_pattern(int64_t w, int64_t r) {
  TZ_CHECK(w >= 1 && r >= 1, "segment_dilated_pattern: expected segment w >= 1 and dilation r >= 1, got w ", w, ", r ",
           r);
  return {cat_str("segment_dilated(w=", w, ", r=", r, ")"), 0, [w, r](int64_t h, int64_t p, int64_t j) {
            const int64_t off = h % r;
            return p / w == j / w && p % r == off && j % r == off;
          }};
}

SparsePattern union_of(std::vector<SparsePattern> parts) {
  TZ_CHECK(!parts.empty(), "union_of: no patterns");
  SparsePattern u{"", 0, nullptr};
  for (const SparsePattern& s : parts) {
    TZ_CHECK(u.heads == 0 || s.heads == 0 || u.heads == s.heads, "union_of: patterns for ", u.heads, " and ", s.heads,
             " heads");
    u.heads = std::max(u.heads, s.heads);
    u.granule = u.name.empty() ? s.granule : std::gcd(u.granule, s.granule);
    u.name += (u.name.empty() ? "" : " | ") + s.name;
  }
  u.visible = [parts](int64_t h, int64_t p, int64_t j) {
    for (const SparsePattern& s : parts)
      if (s.visible(h, p, j)) return true;
    return false;
  };
  return u;
}

// ---- BlockLayout ---------------------------------------------------------------------------

BlockLayout::BlockLayout(SparsePattern pattern_, int64_t H_, int64_t N_, int64_t tile_)
    : pattern(std::move(pattern_)), H(H_), N(N_), tile(tile_), nb((N_ + tile_ - 1) / tile_) {
  TZ_CHECK(pattern.granule >= 0, "BlockLayout: pattern ", pattern.name, " has granule ", pattern.granule);
  TZ_CHECK(H >= 1 && N >= 0 && tile >= 1, "BlockLayout: expected H >= 1, N >= 0, tile >= 1, got H ", H, ", N ", N,
           ", tile ", tile);
  TZ_CHECK(pattern.heads == 0 || pattern.heads == H, "BlockLayout: pattern ", pattern.name, " is for ", pattern.heads,
           " heads, not ", H);
  states_.resize(size_t(H * nb * nb));
  const int64_t side = nb + 1;
  n_visible_.assign(size_t(H * side * side), 0);
  n_hidden_.assign(size_t(H * side * side), 0);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t qb = 0; qb < nb; ++qb)
      for (int64_t kb = 0; kb < nb; ++kb) {
        // One pair per granule square the tile meets (every pair when granule = 1).
        int64_t seen = 0, all = 0;
        const int64_t g = pattern.granule == 0 ? N + tile : pattern.granule;
        for (int64_t p = qb * tile; p < std::min(N, (qb + 1) * tile); p = (p / g + 1) * g)
          for (int64_t j = kb * tile; j < std::min(N, (kb + 1) * tile); j = (j / g + 1) * g) {
            seen += pattern.visible(h, p, j);
            ++all;
          }
        states_[size_t((h * nb + qb) * nb + kb)] = seen == all ? Tile::visible
                                                   : seen == 0 ? Tile::hidden
                                                               : Tile::partial;
      }
  // Prefix sums: pre[h][q + 1][k + 1] = count over tiles [0, q] x [0, k].
  for (int64_t h = 0; h < H; ++h)
    for (int64_t qb = 0; qb < nb; ++qb)
      for (int64_t kb = 0; kb < nb; ++kb) {
        const size_t at = size_t((h * side + qb + 1) * side + kb + 1), up = at - size_t(side), left = at - 1,
                     diag = up - 1;
        const Tile t = state(h, qb, kb);
        n_visible_[at] = n_visible_[up] + n_visible_[left] - n_visible_[diag] + (t == Tile::visible);
        n_hidden_[at] = n_hidden_[up] + n_hidden_[left] - n_hidden_[diag] + (t == Tile::hidden);
      }
}

int64_t BlockLayout::count(const std::vector<int32_t>& pre, int64_t h, int64_t q0, int64_t q1, int64_t k0,
                           int64_t k1) const {
  const int64_t side = nb + 1;
  auto at = [&](int64_t q, int64_t k) { return int64_t(pre[size_t((h * side + q) * side + k)]); };
  return at(q1, k1) - at(q0, k1) - at(q1, k0) + at(q0, k0);
}

Tile BlockLayout::classify(int64_t h, int64_t p0, int64_t p1, int64_t j0, int64_t j1) const {
  if (p0 < 0 || p1 > N || j1 > N) return Tile::partial;  // outside the layout: ask fill
  const int64_t q0 = p0 / tile, q1 = (p1 - 1) / tile + 1, k0 = j0 / tile, k1 = (j1 - 1) / tile + 1;
  const int64_t tiles = (q1 - q0) * (k1 - k0);
  if (count(n_hidden_, h, q0, q1, k0, k1) == tiles) return Tile::hidden;
  if (count(n_visible_, h, q0, q1, k0, k1) == tiles) return Tile::visible;
  return Tile::partial;
}

std::vector<int64_t> BlockLayout::visited(int64_t h, int64_t qb) const {
  std::vector<int64_t> r;
  for (int64_t kb = 0; kb < nb; ++kb)
    if (state(h, qb, kb) != Tile::hidden) r.push_back(kb);
  return r;
}

// ---- LayoutMask ----------------------------------------------------------------------------

LayoutMask::LayoutMask(std::shared_ptr<const BlockLayout> layout_) : layout(std::move(layout_)) {
  TZ_CHECK(layout != nullptr, "LayoutMask: no layout");
}

Tile LayoutMask::classify(int64_t, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t q_offset) const {
  return layout->classify(h, q_offset + i0, q_offset + i1, j0, j1);
}

void LayoutMask::fill(int64_t, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset,
                      uint8_t* out, int64_t ld) const {
  const BlockLayout& L = *layout;
  for (int64_t r = 0; r < ni; ++r) {
    const int64_t p = q_offset + i0 + r;
    for (int64_t c = 0; c < nj;) {
      // A whole layout tile in one memset where its state is uniform.
      const int64_t j = j0 + c, end = std::min(nj, (j / L.tile + 1) * L.tile - j0);
      const Tile t = p >= 0 && p < L.N && j < L.N ? L.state(h, p / L.tile, j / L.tile) : Tile::partial;
      if (t != Tile::partial) {
        std::memset(out + r * ld + c, t == Tile::visible, size_t(end - c));
      } else {
        for (int64_t x = c; x < end; ++x) out[r * ld + x] = L.pattern.visible(h, p, j0 + x);
      }
      c = end;
    }
  }
}

std::string LayoutMask::describe() const { return layout->pattern.name; }

void LayoutMask::check(int64_t, int64_t H, int64_t S) const {
  TZ_CHECK(H == layout->H && S == layout->N, "LayoutMask ", layout->pattern.name, ": built for H ", layout->H, ", S ",
           layout->N, ", called with H ", H, ", S ", S);
}

LayoutCache::LayoutCache(SparsePattern pattern)
    : pattern_for_([p = std::move(pattern)](int64_t, int64_t) { return p; }) {}

std::shared_ptr<const LayoutMask> LayoutCache::get(int64_t H, int64_t S) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& m = masks_[{H, S}];
  if (!m) m = std::make_shared<LayoutMask>(std::make_shared<BlockLayout>(pattern_for_(H, S), H, S));
  return m;
}

// ---- DenseMask -----------------------------------------------------------------------------

DenseMask::DenseMask(std::vector<uint8_t> visible, int64_t Hm_, int64_t P_, int64_t S_)
    : vis(std::move(visible)), Hm(Hm_), P(P_), S(S_) {
  TZ_CHECK(Hm >= 1 && P >= 0 && S >= 0 && int64_t(vis.size()) == Hm * P * S, "DenseMask: expected ", Hm, " x ", P,
           " x ", S, " flags, got ", vis.size());
}

std::shared_ptr<DenseMask> DenseMask::of(const std::function<bool(int64_t, int64_t, int64_t)>& visible, int64_t H,
                                         int64_t P, int64_t S) {
  std::vector<uint8_t> v(size_t(H * P * S));
  for (int64_t h = 0; h < H; ++h)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t j = 0; j < S; ++j) v[size_t((h * P + p) * S + j)] = visible(h, p, j);
  return std::make_shared<DenseMask>(std::move(v), H, P, S);
}

Tile DenseMask::classify(int64_t, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t q_offset) const {
  int64_t seen = 0;
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t j = j0; j < j1; ++j) seen += at(h, q_offset + i, j);
  return seen == (i1 - i0) * (j1 - j0) ? Tile::visible : seen == 0 ? Tile::hidden : Tile::partial;
}

void DenseMask::fill(int64_t, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset, uint8_t* out,
                     int64_t ld) const {
  for (int64_t r = 0; r < ni; ++r)
    for (int64_t c = 0; c < nj; ++c) out[r * ld + c] = at(h, q_offset + i0 + r, j0 + c);
}

std::string DenseMask::describe() const { return cat_str("dense(", Hm, " x ", P, " x ", S, ")"); }

void DenseMask::check(int64_t, int64_t H, int64_t S_) const {
  TZ_CHECK((Hm == 1 || Hm == H) && S_ == S, "DenseMask: built for ", Hm, " heads and S ", S, ", called with H ", H,
           ", S ", S_);
}

}  // namespace tz::kernels
