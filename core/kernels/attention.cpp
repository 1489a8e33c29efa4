// Fused attention kernels (FlashAttention on a CPU); shape letters and math in attention.h.
//
// Forward, per (b, h, block of Br query rows), over key blocks of Bc keys (online softmax):
//   s = scale * Q_i K_j^T                      (Br x Bc tile, masked entries -inf)
//   m_new = max(m, rowmax(s));  alpha = exp(m - m_new)
//   p = exp(s - m_new);  l = alpha l + rowsum(p);  acc = alpha acc + p V_j;  m = m_new
// and at the end o = acc / l, lse = m + log l.
// Numerics: every exponent is (score - running max) <= 0, so exp never overflows and the
// largest term of each row is exp(0) = 1; l >= 1 once a row has seen a key. Tiles and the
// accumulator are in T (f32 for f32); each tile's row sum is formed in f64 and l is kept in
// f64. A row whose running max is still -inf (no visible key yet) skips the tile, so
// exp(-inf - -inf) = NaN never happens. A row with no visible key at all ends with l = 0:
// o = 0 and lse = -inf (attention.h); the backward gives such a row p = 0 instead of
// exp(-inf - -inf).
//
// Masks and biases, tile by tile: the mask classifies each tile before any work (hidden:
// skip it; partial: after the scores, fill a byte mask and set -inf where it is 0), and the
// bias row of query i over keys j0.. is the table read backwards from zero + q_offset + i - j0.
// Score terms: relative keys add, per chunk of 8 query rows, a gather from one block of dots
// against the consecutive rows of r the chunk's pairs are at; the pair product adds a second
// dot block. Every pass (the top-k threshold pass, the forward, the backward) builds its
// score tile with score_tile below, so a score is bit-identical wherever it is recomputed.
// All of it is compiled only into the kExtras = true instances of the tile loops; plain
// attention (no mask terms, no bias, no score terms) runs the kExtras = false instances, the
// code it ran before.
//
// Backward, per (b, h): D_i = dO_i . o_i for every row first, then for each key block j and
// each query block i that sees it: recompute p = exp(s - lse) (p <= 1 since lse >= rowmax),
// dV_j += p^T dO_i, dp = dO_i V_j^T, ds = p (dp - D_i), dQ_i += scale ds K_j,
// dK_j += scale ds^T Q_i, accumulating straight into the gradient rows. Each key/value head
// (b, g) is owned by one thread, which runs the H / G query heads of its group one after
// the other: no two threads write the same dk, dv row, and the sum over the group has a
// fixed order. The bias gradient goes to a [B, H, R] scratch in f64 (a (b, h) row per
// head), summed over b after the parallel loop. The score terms' gradients go straight to
// their (b, h) rows, which belong to the thread of (b, g) alone:
//   relative keys: Y = ds scattered to (row, distance) per chunk of 8 rows,
//                  dA += scale Y R,  dR += scale Y^T A;
//   pair product:  dC += pscale ds E,  dE += pscale ds^T C.
//
// Parallelism: forward over (b, h, query block), backward over (b, g); static chunks, so
// results are deterministic for a fixed thread count.
#include "core/kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "core/allocator.h"
#include "core/error.h"
#include "core/kernels/reduce.h"   // row_dot, row_max
#include "core/kernels/softmax.h"  // avx2::row_max
#include "core/parallel.h"

namespace tz::kernels {

namespace {
// Tile sizes. Measured (B 8, H 4, T 256, D 64, causal, f32, 1 thread; forward / forward +
// backward): 64 x 64 7.3 / 25.4 ms, 32 x 32 6.4 / 22.7 ms, 16 x 16 and 32 x 16 slower.
// Smaller tiles waste less work on the masked half of the diagonal tiles and keep a tile's
// K and V rows (2 x 32 x D floats) in L1; below 32 the per-tile bookkeeping dominates.
constexpr int64_t kBr = 32;  // query rows per tile
constexpr int64_t kBc = 32;  // keys per tile

template <class T>
bool use_avx2() {
  return std::is_same_v<T, float> && simd_enabled();
}

// S[m][n] = scale * A_m . B_n   (see avx2::attn_dots)
template <class T>
void tile_dots(T* S, int64_t lds, const T* A, int64_t lda, int64_t M, const T* Bm, int64_t ldb, int64_t N, int64_t D,
               T scale) {
  if constexpr (std::is_same_v<T, float>) {
    if (simd_level() == SimdLevel::avx512) return avx512::attn_dots(S, lds, A, lda, M, Bm, ldb, N, D, scale);
    if (use_avx2<T>()) return avx2::attn_dots(S, lds, A, lda, M, Bm, ldb, N, D, scale);
  }
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      T s = 0;
      for (int64_t d = 0; d < D; ++d) s += A[m * lda + d] * Bm[n * ldb + d];
      S[m * lds + n] = s * scale;
    }
}

// S[m][n] = scale * A_m . Bt[:, n], Bt [D, ldbt] the keys transposed (see avx2::attn_dots_t;
// called only where heads_transposed made Bt: f32 with SIMD).
inline void tile_dots_t(float* S, int64_t lds, const float* A, int64_t lda, int64_t M, const float* Bt, int64_t ldbt,
                        int64_t N, int64_t D, float scale) {
  if (simd_level() == SimdLevel::avx512) return avx512::attn_dots_t(S, lds, A, lda, M, Bt, ldbt, N, D, scale);
  avx2::attn_dots_t(S, lds, A, lda, M, Bt, ldbt, N, D, scale);
}

// A call rearranges its operands (heads_transposed, packed_heads) only with this many query
// rows: each rearranged row is then read by enough queries to pay for its copy.
constexpr int64_t kRearrangeMinRows = 16;

// Every head of x [B, G, S, D] transposed, [B, G, D, ld], for the dot products against a key
// tile without reductions (tile_dots_t): worth its one pass over x once a call has enough
// query rows per key (f32 with SIMD; other calls, and f64, dot against the rows). Empty when
// not worth it. ld is S rounded up to 16 plus 16 floats: with ld = S a power of two, the D
// rows a tile reads sit a multiple of 4 KiB apart, share two L1 sets and evict each other.
struct HeadsT {
  std::shared_ptr<const CachedBuffer<float>> t;  // uninitialised: the padding is never read
  int64_t G = 0, D = 0, ld = 0;
  bool empty() const { return !t; }
  const float* at(int64_t b, int64_t g, int64_t j0) const { return t->data() + (b * G + g) * D * ld + j0; }
};
template <class T>
HeadsT heads_transposed(AttnRows<const T> x, const AttnSizes& n) {
  if constexpr (!std::is_same_v<T, float>) {
    return {};
  } else {
    if (!use_avx2<float>() || n.T < kRearrangeMinRows || n.S == 0) return {};
    const int64_t G = n.G > 0 ? n.G : n.H, S = n.S, D = n.D, ld = (S + 15) / 16 * 16 + 16;
    auto buf = std::make_shared<CachedBuffer<float>>(static_cast<size_t>(n.B * G * D * ld));
    parallel_for(n.B * G, S * D, [&](int64_t w0, int64_t w1) {
      for (int64_t w = w0; w < w1; ++w)
        avx2::attn_transpose(buf->data() + w * D * ld, ld, x.row(w / G, w % G, 0), x.st, S, D);
    });
    HeadsT out{std::move(buf), G, D, ld};
    return out;
  }
}

// Rows D floats apart, as the tile products want them. A projection's heads ([B, N, 3, H, D]
// rows, a few KiB apart) put the rows of a tile in a few L1 sets, where they evict each
// other; packed copies of rows a tile loop re-reads avoid that. packed_head packs head (b, h)
// of x [.., N, D] into buf and returns rows read with the same indices (sb = sh = 0);
// packed_heads packs every head. Both return x itself when its rows are already packed.
template <class T>
AttnRows<const T> packed_head(AttnRows<const T> x, int64_t b, int64_t h, int64_t N, int64_t D, CachedBuffer<T>& buf) {
  if (x.st == D) return x;
  buf.reserve(static_cast<size_t>(N * D));
  for (int64_t i = 0; i < N; ++i) std::copy(x.row(b, h, i), x.row(b, h, i) + D, buf.data() + i * D);
  return {buf.data(), 0, 0, D};
}
template <class T>
AttnRows<const T> packed_heads(AttnRows<const T> x, int64_t B, int64_t H, int64_t N, int64_t D, CachedBuffer<T>& buf) {
  if (x.st == D) return x;
  buf.reserve(static_cast<size_t>(B * H * N * D));
  parallel_for(B * H, N * D, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w)
      for (int64_t i = 0; i < N; ++i)
        std::copy(x.row(w / H, w % H, i), x.row(w / H, w % H, i) + D, buf.data() + (w * N + i) * D);
  });
  return {buf.data(), H * N * D, N * D, D};
}

// C[m][:D] += alpha * sum_k W[m*wm + k*wk] Bm[k][:D]   (see avx2::attn_acc)
template <class T>
void tile_acc(T* C, int64_t ldc, const T* W, int64_t wm, int64_t wk, int64_t M, int64_t K, const T* Bm, int64_t ldb,
              int64_t D, T alpha) {
  if constexpr (std::is_same_v<T, float>) {
    if (simd_level() == SimdLevel::avx512) return avx512::attn_acc(C, ldc, W, wm, wk, M, K, Bm, ldb, D, alpha);
    if (use_avx2<T>()) return avx2::attn_acc(C, ldc, W, wm, wk, M, K, Bm, ldb, D, alpha);
  }
  std::vector<T> acc(size_t(D), T(0));
  for (int64_t m = 0; m < M; ++m) {
    std::fill(acc.begin(), acc.end(), T(0));
    for (int64_t k = 0; k < K; ++k) {
      T w = W[m * wm + k * wk];
      const T* b = Bm + k * ldb;
      for (int64_t d = 0; d < D; ++d) acc[size_t(d)] += w * b[d];
    }
    for (int64_t d = 0; d < D; ++d) C[m * ldc + d] += alpha * acc[size_t(d)];
  }
}

// y = exp(x - m) over n entries (in place allowed); returns sum y in f64. With SIMD, exactly 0
// below e^kAttnExpCut (avx2::attn_exp: no subnormal arithmetic in p, p*V or dS).
template <class T>
double row_exp(T* y, const T* x, int64_t n, T m) {
  if constexpr (std::is_same_v<T, float>) {
    if (simd_level() == SimdLevel::avx512) return avx512::attn_exp(y, x, n, m);
    if (use_avx2<T>()) return avx2::attn_exp(y, x, n, m);
  }
  double s = 0;
  for (int64_t c = 0; c < n; ++c) {
    y[c] = std::exp(x[c] - m);
    s += double(y[c]);
  }
  return s;
}

// y[r * ldy + c] = exp(y[r * ldy + c] - m[r]) over rows x n of a tile, in place: row_exp's
// values without its sums (the backward's p = exp(s - lse)), one call per tile with SIMD.
template <class T>
void tile_exp(T* y, int64_t ldy, int64_t rows, int64_t n, const T* m) {
  if constexpr (std::is_same_v<T, float>) {
    if (simd_level() == SimdLevel::avx512) return avx512::attn_exp_rows(y, ldy, rows, n, m);
    if (use_avx2<T>()) return avx2::attn_exp_rows(y, ldy, rows, n, m);
  }
  for (int64_t r = 0; r < rows; ++r) row_exp<T>(y + r * ldy, y + r * ldy, n, m[r]);
}

template <class T>
T tile_row_max(const T* x, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    if (use_avx2<T>()) return avx2::row_max(x, n);
  }
  return row_max<T>(x, n);
}

// Causal masking of one tile: rows i0.., keys j0..j0+nj. Key j is hidden from query i when
// j > q_offset + i. Returns whether any entry was hidden.
template <class T>
bool mask_tile(T* S, int64_t lds, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset) {
  if (j0 + nj - 1 <= q_offset + i0) return false;  // the whole tile is visible
  for (int64_t r = 0; r < ni; ++r) {
    int64_t first_hidden = std::max<int64_t>(0, q_offset + i0 + r + 1 - j0);
    for (int64_t c = first_hidden; c < nj; ++c) S[r * lds + c] = -std::numeric_limits<T>::infinity();
  }
  return true;
}

// A tile that straddles the diagonal is worked in chunks of kChunk rows (and kChunk keys),
// each computed only as far as its last row (first key) can see: about 3/8 of such a tile is
// above the diagonal and is skipped instead of computed and then masked.
constexpr int64_t kChunk = 8;
bool straddles_diagonal(const AttnSizes& n, int64_t i0, int64_t j0, int64_t nj) {
  return n.causal && j0 + nj - 1 > n.q_offset + i0;
}
// How many of the tile's keys j0 .. j0+nj-1 query row i0 + r_end - 1 sees.
int64_t seen_keys(const AttnSizes& n, int64_t i0, int64_t r_end, int64_t j0, int64_t nj) {
  return n.causal ? std::clamp<int64_t>(n.q_offset + i0 + r_end - j0, 0, nj) : nj;
}
// The first of the tile's query rows i0 .. i0+ni-1 that sees key j0 + c.
int64_t first_row_seeing(const AttnSizes& n, int64_t i0, int64_t ni, int64_t j0, int64_t c) {
  return n.causal ? std::clamp<int64_t>(j0 + c - n.q_offset - i0, 0, ni) : 0;
}

// Number of keys query rows [0, i_end) may see: all S, or (causal) up to q_offset + i_end.
int64_t visible_keys(const AttnSizes& n, int64_t i_end) {
  return n.causal ? std::clamp<int64_t>(n.q_offset + i_end, 0, n.S) : n.S;
}

// ---- masks, biases, score terms, groups ----

int64_t kv_heads(const AttnSizes& n) { return n.G > 0 ? n.G : n.H; }

// The mask to ask, or null when there is none (no terms: nothing hidden beyond causal).
const AttentionMask* active_mask(const AttnSizes& n) { return n.mask && !n.mask->empty() ? n.mask : nullptr; }

template <class T>
bool has_rel(const ScoreTerms<T>* t) {
  return t && t->rel_q.p;
}
template <class T>
bool has_pair(const ScoreTerms<T>* t) {
  return t && t->pair_q.p;
}
// Top-k hides anything only below S keys.
bool topk_on(const AttnSizes& n) { return n.topk > 0 && n.topk < n.S; }

// The checks of one kernel call, before any thread starts (a tz::Error cannot leave an
// OpenMP region).
template <class T>
void check_call(const AttnSizes& n, const RelativeBias<T>* bias, const ScoreTerms<T>* terms, const char* op) {
  const int64_t G = kv_heads(n);
  TZ_CHECK(G >= 1 && G <= n.H && n.H % G == 0, op, ": key/value heads G = ", G,
           " must divide the query heads H = ", n.H);
  if (n.mask) n.mask->check(n.B, n.H, n.S);
  // Distances d = q_offset + i - j present: q_offset - (S - 1) .. q_offset + T - 1.
  auto covers = [&](int64_t zero, int64_t R) {
    return zero + n.q_offset - (n.S - 1) >= 0 && zero + n.q_offset + n.T - 1 < R;
  };
  if (bias && n.T > 0 && n.S > 0)
    TZ_CHECK(bias->table != nullptr && covers(bias->zero, bias->R), op, ": relative bias table of ", bias->R,
             " entries per head (distance 0 at ", bias->zero, ") does not cover the distances ", n.q_offset - (n.S - 1),
             " .. ", n.q_offset + n.T - 1, " of T = ", n.T, ", S = ", n.S, ", q_offset = ", n.q_offset,
             " (needs R = T + S - 1 = ", n.T + n.S - 1, " with zero = S - 1 - q_offset = ", n.S - 1 - n.q_offset, ")");
  TZ_CHECK(n.topk >= 0, op, ": topk must be >= 0, got ", n.topk);
  if (topk_on(n)) TZ_CHECK(terms && terms->threshold, op, ": topk = ", n.topk, " needs a threshold buffer [B, H, T]");
  if (!terms) return;
  // A gradient shared by the batch rows would be written by several threads at once.
  auto per_batch = [&](const AttnRows<T>& g) { return !g.p || n.B == 1 || g.sb != 0; };
  if (has_rel(terms)) {
    TZ_CHECK(terms->rel_k.p && terms->Dr > 0, op, ": relative keys need rel_k and Dr > 0 (Dr = ", terms->Dr, ")");
    if (n.T > 0 && n.S > 0)
      TZ_CHECK(covers(terms->zero, terms->R), op, ": relative keys of ", terms->R, " rows (distance 0 at row ",
               terms->zero, ") do not cover the distances ", n.q_offset - (n.S - 1), " .. ", n.q_offset + n.T - 1,
               " (needs R = T + S - 1 = ", n.T + n.S - 1, " with zero = S - 1 - q_offset = ", n.S - 1 - n.q_offset,
               ")");
    TZ_CHECK(per_batch(terms->drel_q) && per_batch(terms->drel_k), op,
             ": relative-key gradients need rows per batch row (sb != 0) when B > 1");
  }
  if (has_pair(terms)) {
    TZ_CHECK(terms->pair_k.p && terms->Dp > 0, op, ": the pair product needs pair_k and Dp > 0 (Dp = ", terms->Dp, ")");
    TZ_CHECK(per_batch(terms->dpair_q) && per_batch(terms->dpair_k), op,
             ": pair-product gradients need rows per batch row (sb != 0) when B > 1");
  }
}

// s[r][c] += bias of query row i0 + r and key j0 + c: the row's table entries read backwards
// from distance d0 + r, d0 = q_offset + i0 - j0.
template <class T>
void add_bias(T* s, int64_t lds, const RelativeBias<T>& bias, int64_t h, int64_t d0, int64_t ni, int64_t nj) {
  for (int64_t r = 0; r < ni; ++r) {
    const T* br = bias.table + h * bias.sh + bias.zero + d0 + r;
    T* sr = s + r * lds;
    for (int64_t c = 0; c < nj; ++c) sr[c] += br[-c];
  }
}

// A partial tile: s = -inf where the mask hides the pair.
template <class T>
void hide_masked(T* s, int64_t lds, uint8_t* vis, const AttentionMask& mask, int64_t b, int64_t h, int64_t i0,
                 int64_t ni, int64_t j0, int64_t nj, int64_t q_offset) {
  mask.fill(b, h, i0, ni, j0, nj, q_offset, vis, kBc);
  for (int64_t r = 0; r < ni; ++r)
    for (int64_t c = 0; c < nj; ++c)
      if (!vis[r * kBc + c]) s[r * lds + c] = -std::numeric_limits<T>::infinity();
}

// Whether key j is visible to query i in the reference kernels (causal, then the mask).
void visible_row(uint8_t* row, const AttnSizes& n, int64_t b, int64_t h, int64_t i) {
  if (n.mask)
    n.mask->fill(b, h, i, 1, 0, n.S, n.q_offset, row, n.S);
  else
    std::fill(row, row + n.S, uint8_t(1));
  if (n.causal)
    for (int64_t j = std::max<int64_t>(0, n.q_offset + i + 1); j < n.S; ++j) row[j] = 0;
}

template <class T>
double bias_at(const RelativeBias<T>* bias, const AttnSizes& n, int64_t h, int64_t i, int64_t j) {
  return bias ? double(bias->table[h * bias->sh + bias->zero + n.q_offset + i - j]) : 0.0;
}

// What every tile of one call reads, resolved once.
template <class T>
struct Call {
  AttnRows<const T> q, k;
  const AttnSizes& n;
  T scale;
  const AttentionMask* mask;    // null: none
  const RelativeBias<T>* bias;  // null: none
  const ScoreTerms<T>* terms;   // null: none
  bool rel, pair;
  HeadsT kt;  // the keys transposed (heads_transposed), or empty: dot against rows
};

// A thread's scratch for the score terms.
constexpr int64_t kRelLd = kBc + kChunk - 1;  // distances met by a chunk of kChunk rows
template <class T>
struct TermScratch {
  std::vector<T> x;  // relative-key dots (forward) or scattered ds (backward): kChunk x kRelLd
  std::vector<T> p;  // pair-product dots: kBr x kBc
  explicit TermScratch(const ScoreTerms<T>* t)
      : x(has_rel(t) ? static_cast<size_t>(kChunk * kRelLd) : 0), p(has_pair(t) ? static_cast<size_t>(kBr * kBc) : 0) {}
};

// The chunks of kChunk query rows of a tile for the relative keys: rows [r0, r1) meet keys
// c < nc (on the causal diagonal only those the chunk's last row sees) at distances
// q_offset + i0 + r - j0 - c, which are the ne = nc + (r1 - r0) - 1 consecutive rows of r
// from `first`: pair (r, c) is at x = (r - r0) - c + nc - 1 of them.
struct RelChunk {
  int64_t r0, r1, nc, ne, first;
};
template <class F>
void for_each_rel_chunk(const AttnSizes& n, int64_t zero, int64_t i0, int64_t ni, int64_t j0, int64_t nj, F f) {
  for (int64_t r0 = 0; r0 < ni; r0 += kChunk) {
    const int64_t r1 = std::min(ni, r0 + kChunk), nc = seen_keys(n, i0, r1, j0, nj);
    if (nc == 0) continue;
    f(RelChunk{r0, r1, nc, nc + (r1 - r0) - 1, zero + n.q_offset + i0 + r0 - j0 - (nc - 1)});
  }
}

// s += scale * a_i . r(d) over the tile (relative keys).
template <class T>
void add_relative_keys(T* s, TermScratch<T>& w, const Call<T>& c, int64_t b, int64_t h, int64_t i0, int64_t ni,
                       int64_t j0, int64_t nj) {
  const ScoreTerms<T>& t = *c.terms;
  for_each_rel_chunk(c.n, t.zero, i0, ni, j0, nj, [&](const RelChunk& k) {
    const int64_t m = k.r1 - k.r0;
    tile_dots<T>(w.x.data(), kRelLd, t.rel_q.row(b, h, i0 + k.r0), t.rel_q.st, m, t.rel_k.row(b, h, k.first),
                 t.rel_k.st, k.ne, t.Dr, c.scale);
    for (int64_t r = 0; r < m; ++r) {
      const T* xr = w.x.data() + r * kRelLd + r + k.nc - 1;  // pair (r, cc) at xr[-cc]
      T* sr = s + (k.r0 + r) * kBc;
      for (int64_t cc = 0; cc < k.nc; ++cc) sr[cc] += xr[-cc];
    }
  });
}

// The chunks of the content product: rows [r0, r1) and the nc keys they see (one chunk off
// the diagonal).
template <class F>
void for_each_row_chunk(const AttnSizes& n, int64_t i0, int64_t ni, int64_t j0, int64_t nj, F f) {
  const int64_t step = straddles_diagonal(n, i0, j0, nj) ? kChunk : ni;
  for (int64_t r0 = 0; r0 < ni; r0 += step) {
    const int64_t r1 = std::min(ni, r0 + step), nc = seen_keys(n, i0, r1, j0, nj);
    if (nc > 0) f(r0, r1, nc);
  }
}

// s += pscale * c_i . e_j over the tile (pair product).
template <class T>
void add_pair(T* s, TermScratch<T>& w, const Call<T>& c, int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0,
              int64_t nj) {
  const ScoreTerms<T>& t = *c.terms;
  for_each_row_chunk(c.n, i0, ni, j0, nj, [&](int64_t r0, int64_t r1, int64_t nc) {
    T* pr = w.p.data() + r0 * kBc;
    tile_dots<T>(pr, kBc, t.pair_q.row(b, h, i0 + r0), t.pair_q.st, r1 - r0, t.pair_k.row(b, h, j0), t.pair_k.st, nc,
                 t.Dp, T(t.pair_scale));
    for (int64_t r = 0; r < r1 - r0; ++r)
      for (int64_t cc = 0; cc < nc; ++cc) s[(r0 + r) * kBc + cc] += pr[r * kBc + cc];
  });
}

// The score tile of query rows i0..i0+ni-1 and keys j0..j0+nj-1 of (b, h), hidden entries
// -inf (causal, mask; below the row's threshold when thr, thresholds of rows i0.., is given).
// s = scale * Q_i K_j^T (on the diagonal chunk by chunk of rows, only the keys the chunk
// sees) + bias + relative keys + pair product, then the hidden entries. The one place scores
// are made: forward, backward and the top-k pass agree on every bit.
template <class T, bool kExtras>
void score_tile(T* s, TermScratch<T>* w, uint8_t* vis, const Call<T>& c, int64_t b, int64_t h, int64_t g, int64_t i0,
                int64_t ni, int64_t j0, int64_t nj, Tile tile, const T* thr) {
  const AttnSizes& n = c.n;
  const T* qi = c.q.row(b, h, i0);
  for_each_row_chunk(n, i0, ni, j0, nj, [&](int64_t r0, int64_t r1, int64_t nc) {
    if constexpr (std::is_same_v<T, float>) {
      if (!c.kt.empty()) {
        return tile_dots_t(s + r0 * kBc, kBc, qi + r0 * c.q.st, c.q.st, r1 - r0, c.kt.at(b, g, j0), c.kt.ld, nc, n.D,
                           c.scale);
      }
    }
    tile_dots<T>(s + r0 * kBc, kBc, qi + r0 * c.q.st, c.q.st, r1 - r0, c.k.row(b, g, j0), c.k.st, nc, n.D, c.scale);
  });
  if constexpr (kExtras) {
    if (c.bias) add_bias<T>(s, kBc, *c.bias, h, n.q_offset + i0 - j0, ni, nj);
    if (c.rel) add_relative_keys<T>(s, *w, c, b, h, i0, ni, j0, nj);
    if (c.pair) add_pair<T>(s, *w, c, b, h, i0, ni, j0, nj);
  }
  if (straddles_diagonal(n, i0, j0, nj)) mask_tile<T>(s, kBc, i0, ni, j0, nj, n.q_offset);
  if constexpr (kExtras) {
    if (tile == Tile::partial) hide_masked<T>(s, kBc, vis, *c.mask, b, h, i0, ni, j0, nj, n.q_offset);
    if (thr)
      for (int64_t r = 0; r < ni; ++r) {
        T* sr = s + r * kBc;
        const T t = thr[r];
        for (int64_t cc = 0; cc < nj; ++cc) sr[cc] = sr[cc] < t ? -std::numeric_limits<T>::infinity() : sr[cc];
      }
  }
}

// The k largest of a stream of scores: a min-heap (its top is the k-th largest so far).
template <class T>
struct KLargest {
  T* heap;
  int64_t k, size = 0;
  // What a score must exceed to enter: the k-th largest so far, or -inf while fewer than k
  // came (so hidden scores, -inf, and NaN never enter).
  T floor() const { return size < k ? -std::numeric_limits<T>::infinity() : heap[0]; }
  void push(T x) {  // x > floor()
    if (size == k) std::pop_heap(heap, heap + size--, std::greater<T>());
    heap[size++] = x;
    std::push_heap(heap, heap + size, std::greater<T>());
  }
  // Fewer than k visible scores: nothing more is hidden.
  T threshold() const { return floor(); }
};

// The first pass of top-k for query rows i0..i0+ni-1 of (b, h): thr[r] = the k-th largest
// visible score of row i0 + r, over the same tiles as the forward. Most scores fall below
// the running floor after the first tiles: one compare each.
template <class T>
void row_thresholds(T* thr, std::vector<T>& s, std::vector<T>& heaps, TermScratch<T>& w, uint8_t* vis, const Call<T>& c,
                    int64_t b, int64_t h, int64_t g, int64_t i0, int64_t ni) {
  const AttnSizes& n = c.n;
  std::vector<KLargest<T>> rows;
  for (int64_t r = 0; r < ni; ++r) rows.push_back(KLargest<T>{heaps.data() + r * n.topk, n.topk});
  const int64_t j_end = visible_keys(n, i0 + ni);
  for (int64_t j0 = 0; j0 < j_end; j0 += kBc) {
    const int64_t nj = std::min(kBc, j_end - j0);
    Tile tile = c.mask ? c.mask->classify(b, h, i0, i0 + ni, j0, j0 + nj, n.q_offset) : Tile::visible;
    if (tile == Tile::hidden) continue;
    score_tile<T, true>(s.data(), &w, vis, c, b, h, g, i0, ni, j0, nj, tile, nullptr);
    for (int64_t r = 0; r < ni; ++r) {
      KLargest<T>& top = rows[size_t(r)];
      const T* sr = s.data() + r * kBc;
      T floor = top.floor();
      for (int64_t cc = 0; cc < nj; ++cc)
        if (sr[cc] > floor) {
          top.push(sr[cc]);
          floor = top.floor();
        }
    }
  }
  for (int64_t r = 0; r < ni; ++r) thr[r] = rows[size_t(r)].threshold();
}

template <class T>
Call<T> make_call(AttnRows<const T> q, AttnRows<const T> k, const AttnSizes& n, const RelativeBias<T>* bias,
                  const ScoreTerms<T>* terms, bool extras) {
  return Call<T>{q,
                 k,
                 n,
                 T(n.scale),
                 extras ? active_mask(n) : nullptr,
                 extras ? bias : nullptr,
                 extras ? terms : nullptr,
                 extras && has_rel(terms),
                 extras && has_pair(terms),
                 heads_transposed(k, n)};
}

// Whether a call needs the kExtras = true tile loops.
template <class T>
bool needs_extras(const AttnSizes& n, const RelativeBias<T>* bias, const ScoreTerms<T>* terms) {
  return active_mask(n) || bias || has_rel(terms) || has_pair(terms) || topk_on(n);
}

// Score terms of the reference kernels, in f64: the relative keys and the pair product of
// query i and key j, in the order the fast kernels add them.
template <class T>
double terms_at(const ScoreTerms<T>* t, const AttnSizes& n, int64_t b, int64_t h, int64_t i, int64_t j) {
  double s = 0;
  if (has_rel(t)) {
    const T *a = t->rel_q.row(b, h, i), *r = t->rel_k.row(b, h, t->zero + n.q_offset + i - j);
    double dot = 0;
    for (int64_t d = 0; d < t->Dr; ++d) dot += double(a[d]) * double(r[d]);
    s += n.scale * dot;
  }
  if (has_pair(t)) {
    const T *cq = t->pair_q.row(b, h, i), *ek = t->pair_k.row(b, h, j);
    double dot = 0;
    for (int64_t d = 0; d < t->Dp; ++d) dot += double(cq[d]) * double(ek[d]);
    s += t->pair_scale * dot;
  }
  return s;
}

// The reference's scores of row i of (b, h): s[j] (hidden: -inf; top-k applied). Returns the
// top-k threshold (-inf without one).
template <class T>
double ref_scores(double* s, uint8_t* vis, AttnRows<const T> q, AttnRows<const T> k, const AttnSizes& n,
                  const RelativeBias<T>* bias, const ScoreTerms<T>* terms, int64_t b, int64_t h, int64_t i) {
  const int64_t g = h / (n.H / kv_heads(n));
  const T* qi = q.row(b, h, i);
  visible_row(vis, n, b, h, i);
  for (int64_t j = 0; j < n.S; ++j) {
    double dot = 0;
    for (int64_t d = 0; d < n.D; ++d) dot += double(qi[d]) * double(k.row(b, g, j)[d]);
    s[j] = vis[j] ? n.scale * dot + bias_at(bias, n, h, i, j) + terms_at(terms, n, b, h, i, j) : -INFINITY;
  }
  if (!topk_on(n)) return -INFINITY;
  // The k-th largest of the row (hidden entries count as -inf), as nth_element finds it.
  std::vector<double> row(s, s + n.S);
  std::nth_element(row.begin(), row.begin() + (n.topk - 1), row.end(), std::greater<double>());
  const double thr = row[size_t(n.topk - 1)];
  for (int64_t j = 0; j < n.S; ++j)
    if (s[j] < thr) s[j] = -INFINITY;
  return thr;
}
}  // namespace

// ---- forward -------------------------------------------------------------------------------

namespace {
// The tiled forward. kExtras = false (no mask terms, no bias, no score terms) compiles the
// extra code out: plain attention runs the same instructions as before masks existed.
template <class T, bool kExtras>
void forward_tiles(AttnRows<T> o, T* lse, AttnRows<const T> q, AttnRows<const T> k, AttnRows<const T> v,
                   const AttnSizes& n, const RelativeBias<T>* bias, const ScoreTerms<T>* terms) {
  const int64_t B = n.B, H = n.H, Tq = n.T, D = n.D, Hg = H / kv_heads(n);
  const int64_t nqb = (Tq + kBr - 1) / kBr;
  const Call<T> call = make_call<T>(q, k, n, bias, terms, kExtras);
  CachedBuffer<T> vbuf;
  if (Tq >= kRearrangeMinRows) v = packed_heads(v, B, kv_heads(n), n.S, D, vbuf);
  const bool topk = kExtras && topk_on(n);
  const int64_t rows = std::min(kBr, Tq);  // per work item (T = 1 when decoding)
  const int64_t cost = rows * std::max<int64_t>(n.S, 1) * D * (topk ? 3 : 2);
  parallel_for(B * H * nqb, cost, [&](int64_t w0, int64_t w1) {
    // Sized for `rows`, not kBr: a decoding call (one query) clears 64 floats, not 2048.
    std::vector<T> s(static_cast<size_t>(rows * kBc)), acc(static_cast<size_t>(rows * D));
    std::vector<T> m(static_cast<size_t>(rows));
    std::vector<double> l(static_cast<size_t>(rows));
    std::vector<uint8_t> vis(call.mask ? static_cast<size_t>(rows * kBc) : 0);
    TermScratch<T> scratch(call.terms);
    std::vector<T> heaps(topk ? static_cast<size_t>(rows * n.topk) : 0);
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t bh = w / nqb, b = bh / H, h = bh % H, g = h / Hg;
      const int64_t i0 = (w % nqb) * kBr, ni = std::min(kBr, Tq - i0);
      std::fill(acc.begin(), acc.end(), T(0));
      std::fill(m.begin(), m.end(), -std::numeric_limits<T>::infinity());
      std::fill(l.begin(), l.end(), 0.0);
      // Top-k, first pass: the rows' thresholds.
      const T* thr = nullptr;
      if (topk) {
        T* t = terms->threshold + bh * Tq + i0;
        row_thresholds<T>(t, s, heaps, scratch, vis.data(), call, b, h, g, i0, ni);
        thr = t;
      }
      const int64_t j_end = visible_keys(n, i0 + ni);  // causal: later key blocks are skipped
      for (int64_t j0 = 0; j0 < j_end; j0 += kBc) {
        const int64_t nj = std::min(kBc, j_end - j0);
        Tile tile = Tile::visible;
        if constexpr (kExtras) {
          if (call.mask) tile = call.mask->classify(b, h, i0, i0 + ni, j0, j0 + nj, n.q_offset);
          if (tile == Tile::hidden) continue;  // its keys are never read
        }
        score_tile<T, kExtras>(s.data(), &scratch, vis.data(), call, b, h, g, i0, ni, j0, nj, tile, thr);
        // Online softmax: new running max, rescale what was accumulated, p = exp(s - m).
        for (int64_t r = 0; r < ni; ++r) {
          T* sr = s.data() + r * kBc;
          T m_new = std::max(m[size_t(r)], tile_row_max<T>(sr, nj));
          if (m_new == -std::numeric_limits<T>::infinity()) {  // nothing visible yet
            std::fill(sr, sr + nj, T(0));
            continue;
          }
          T alpha = std::exp(m[size_t(r)] - m_new);  // exp(-inf) = 0 on a row's first tile
          double sum = row_exp<T>(sr, sr, nj, m_new);
          l[size_t(r)] = double(alpha) * l[size_t(r)] + sum;
          if (alpha != T(1)) {
            T* ar = acc.data() + r * D;
            for (int64_t d = 0; d < D; ++d) ar[d] *= alpha;
          }
          m[size_t(r)] = m_new;
        }
        // acc += p V_j   (p = 0 past what each chunk sees)
        for_each_row_chunk(n, i0, ni, j0, nj, [&](int64_t r0, int64_t r1, int64_t nc) {
          tile_acc<T>(acc.data() + r0 * D, D, s.data() + r0 * kBc, kBc, 1, r1 - r0, nc, v.row(b, g, j0), v.st, D, T(1));
        });
      }
      // o = acc / l, lse = m + log l; a row that saw no key (l = 0): o = 0, lse = -inf.
      for (int64_t r = 0; r < ni; ++r) {
        T* orow = o.row(b, h, i0 + r);
        T& lse_r = lse[(b * H + h) * Tq + i0 + r];
        if (l[size_t(r)] == 0) {
          std::fill(orow, orow + D, T(0));
          lse_r = -std::numeric_limits<T>::infinity();
          continue;
        }
        T inv = T(1.0 / l[size_t(r)]);
        const T* ar = acc.data() + r * D;
        for (int64_t d = 0; d < D; ++d) orow[d] = ar[d] * inv;
        lse_r = T(double(m[size_t(r)]) + std::log(l[size_t(r)]));
      }
    }
  });
}

// One query row and no extras (decoding one token): every visible key in one pass (scores,
// one max, one exp pass, one product with V) instead of 32-key tiles, each with its own
// running max, rescale and bookkeeping, which cost more than the arithmetic for one row.
// The one max rounds differently from the running one in the last bits, so the tiled form
// stays the f64 reference's path; the step form and the decode plan both come here in f32.
void forward_one_query(AttnRows<float> o, float* lse, AttnRows<const float> q, AttnRows<const float> k,
                       AttnRows<const float> v, const AttnSizes& n) {
  const int64_t H = n.H, D = n.D, Hg = H / kv_heads(n), S = visible_keys(n, 1);
  parallel_for(n.B * H, 2 * S * D, [&](int64_t w0, int64_t w1) {
    thread_local std::vector<float> s;
    s.resize(static_cast<size_t>(S));
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w / H, h = w % H, g = h / Hg;
      float* orow = o.row(b, h, 0);
      tile_dots<float>(s.data(), S, q.row(b, h, 0), q.st, 1, k.row(b, g, 0), k.st, S, D, float(n.scale));
      const float m = tile_row_max<float>(s.data(), S);
      const double l = row_exp<float>(s.data(), s.data(), S, m);
      std::fill(orow, orow + D, 0.0f);
      tile_acc<float>(orow, D, s.data(), S, 1, 1, S, v.row(b, g, 0), v.st, D, float(1.0 / l));  // o = p V / l
      lse[w] = float(double(m) + std::log(l));
    }
  });
}
}  // namespace

template <class T>
void attention_forward(AttnRows<T> o, T* lse, AttnRows<const T> q, AttnRows<const T> k, AttnRows<const T> v,
                       const AttnSizes& n, const RelativeBias<T>* bias, const ScoreTerms<T>* terms) {
  check_call(n, bias, terms, "attention");
  if constexpr (std::is_same_v<T, float>) {
    if (n.T == 1 && visible_keys(n, 1) > 0 && !needs_extras(n, bias, terms))
      return forward_one_query(o, lse, q, k, v, n);
  }
  if (needs_extras(n, bias, terms))
    forward_tiles<T, true>(o, lse, q, k, v, n, bias, terms);
  else
    forward_tiles<T, false>(o, lse, q, k, v, n, nullptr, nullptr);
}

template <class T>
void attention_topk_threshold(T* thr, AttnRows<const T> q, AttnRows<const T> k, const AttnSizes& n,
                              const RelativeBias<T>* bias, const ScoreTerms<T>* terms) {
  TZ_CHECK(n.topk >= 1, "attention top-k: topk must be >= 1, got ", n.topk);
  ScoreTerms<T> t = terms ? *terms : ScoreTerms<T>{};
  t.threshold = thr;
  check_call(n, bias, &t, "attention top-k");
  if (!topk_on(n)) {  // k >= S: nothing is hidden
    std::fill(thr, thr + n.B * n.H * n.T, -std::numeric_limits<T>::infinity());
    return;
  }
  const int64_t H = n.H, Tq = n.T, Hg = H / kv_heads(n), nqb = (Tq + kBr - 1) / kBr;
  const Call<T> call = make_call<T>(q, k, n, bias, &t, true);
  parallel_for(n.B * H * nqb, std::min(kBr, Tq) * n.S * n.D, [&](int64_t w0, int64_t w1) {
    std::vector<T> s(static_cast<size_t>(kBr * kBc)), heaps(static_cast<size_t>(kBr * n.topk));
    std::vector<uint8_t> vis(call.mask ? static_cast<size_t>(kBr * kBc) : 0);
    TermScratch<T> scratch(&t);
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t bh = w / nqb, b = bh / H, h = bh % H, i0 = (w % nqb) * kBr;
      row_thresholds<T>(thr + bh * Tq + i0, s, heaps, scratch, vis.data(), call, b, h, h / Hg, i0,
                        std::min(kBr, Tq - i0));
    }
  });
}

template <class T>
void attention_forward_ref(AttnRows<T> o, T* lse, AttnRows<const T> q, AttnRows<const T> k, AttnRows<const T> v,
                           const AttnSizes& n, const RelativeBias<T>* bias, const ScoreTerms<T>* terms) {
  check_call(n, bias, terms, "attention");
  const int64_t Hg = n.H / kv_heads(n);
  std::vector<double> s(static_cast<size_t>(n.S));
  std::vector<uint8_t> vis(static_cast<size_t>(n.S));
  for (int64_t b = 0; b < n.B; ++b)
    for (int64_t h = 0; h < n.H; ++h)
      for (int64_t i = 0; i < n.T; ++i) {
        const int64_t g = h / Hg;
        const double thr = ref_scores<T>(s.data(), vis.data(), q, k, n, bias, terms, b, h, i);
        if (topk_on(n)) terms->threshold[(b * n.H + h) * n.T + i] = T(thr);
        double mx = -INFINITY;
        for (int64_t j = 0; j < n.S; ++j) mx = std::max(mx, s[size_t(j)]);
        T* oi = o.row(b, h, i);
        if (mx == -INFINITY) {  // no visible key: o = 0, lse = -inf
          std::fill(oi, oi + n.D, T(0));
          lse[(b * n.H + h) * n.T + i] = -std::numeric_limits<T>::infinity();
          continue;
        }
        double l = 0;
        for (int64_t j = 0; j < n.S; ++j) l += std::exp(s[size_t(j)] - mx);
        for (int64_t d = 0; d < n.D; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < n.S; ++j) acc += std::exp(s[size_t(j)] - mx) / l * double(v.row(b, g, j)[d]);
          oi[d] = T(acc);
        }
        lse[(b * n.H + h) * n.T + i] = T(mx + std::log(l));
      }
}

// ---- backward ------------------------------------------------------------------------------

namespace {
// The relative keys' gradients of one tile: per chunk of rows, Y = ds scattered to (row,
// distance), dA += scale Y R, dR += scale Y^T A.
template <class T>
void relative_keys_backward(const T* ds, TermScratch<T>& w, const Call<T>& c, int64_t b, int64_t h, int64_t i0,
                            int64_t ni, int64_t j0, int64_t nj) {
  const ScoreTerms<T>& t = *c.terms;
  for_each_rel_chunk(c.n, t.zero, i0, ni, j0, nj, [&](const RelChunk& k) {
    const int64_t m = k.r1 - k.r0;
    T* y = w.x.data();
    std::fill(y, y + m * kRelLd, T(0));
    for (int64_t r = 0; r < m; ++r) {
      T* yr = y + r * kRelLd + r + k.nc - 1;  // pair (r, cc) at yr[-cc]
      const T* dr = ds + (k.r0 + r) * kBc;
      for (int64_t cc = 0; cc < k.nc; ++cc) yr[-cc] = dr[cc];
    }
    if (t.drel_q.p)
      tile_acc<T>(t.drel_q.row(b, h, i0 + k.r0), t.drel_q.st, y, kRelLd, 1, m, k.ne, t.rel_k.row(b, h, k.first),
                  t.rel_k.st, t.Dr, c.scale);
    if (t.drel_k.p)
      tile_acc<T>(t.drel_k.row(b, h, k.first), t.drel_k.st, y, 1, kRelLd, k.ne, m, t.rel_q.row(b, h, i0 + k.r0),
                  t.rel_q.st, t.Dr, c.scale);
  });
}

// The pair product's gradients of one tile: dC += pscale ds E, dE += pscale ds^T C (the
// chunks of dq and dk).
template <class T>
void pair_backward(const T* ds, const Call<T>& c, int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0,
                   int64_t nj) {
  const ScoreTerms<T>& t = *c.terms;
  const AttnSizes& n = c.n;
  const T ps = T(t.pair_scale);
  if (t.dpair_q.p)
    for_each_row_chunk(n, i0, ni, j0, nj, [&](int64_t r0, int64_t r1, int64_t nc) {
      tile_acc<T>(t.dpair_q.row(b, h, i0 + r0), t.dpair_q.st, ds + r0 * kBc, kBc, 1, r1 - r0, nc,
                  t.pair_k.row(b, h, j0), t.pair_k.st, t.Dp, ps);
    });
  if (t.dpair_k.p) {
    const int64_t step = straddles_diagonal(n, i0, j0, nj) ? kChunk : nj;
    for (int64_t c0 = 0; c0 < nj; c0 += step) {
      const int64_t c1 = std::min(nj, c0 + step), rf = first_row_seeing(n, i0, ni, j0, c0);
      if (rf < ni)
        tile_acc<T>(t.dpair_k.row(b, h, j0 + c0), t.dpair_k.st, ds + rf * kBc + c0, 1, kBc, c1 - c0, ni - rf,
                    t.pair_q.row(b, h, i0 + rf), t.pair_q.st, t.Dp, ps);
    }
  }
}

// The tiled backward; kExtras as in forward_tiles.
template <class T, bool kExtras>
void backward_tiles(AttnRows<T> dq, AttnRows<T> dk, AttnRows<T> dv, AttnRows<const T> o, const T* lse,
                    AttnRows<const T> dout, AttnRows<const T> q, AttnRows<const T> k, AttnRows<const T> v,
                    const AttnSizes& n, const RelativeBias<T>* bias, const ScoreTerms<T>* terms) {
  const int64_t B = n.B, H = n.H, G = kv_heads(n), Hg = H / G, Tq = n.T, S = n.S, D = n.D;
  const T scale = T(n.scale);
  const Call<T> call = make_call<T>(q, k, n, bias, terms, kExtras);
  const HeadsT vt = heads_transposed(v, n);  // dP = dO V^T against V transposed
  const bool topk = kExtras && topk_on(n);
  // A row sees no key (lse = -inf) through a mask, a -inf bias, or causal with q_offset < 0.
  const bool maybe_empty_rows = kExtras || (n.causal && n.q_offset < 0);
  const int64_t R = bias ? bias->R : 0;
  std::vector<double> bgrad(kExtras && bias && bias->grad ? static_cast<size_t>(B * H * R) : 0);  // [B, H, R]
  parallel_for(B * G, std::max<int64_t>(Tq, 1) * S * D * 5 * Hg, [&](int64_t w0, int64_t w1) {
    std::vector<T> p(static_cast<size_t>(kBr * kBc)), ds(static_cast<size_t>(kBr * kBc)), Di(static_cast<size_t>(Tq));
    std::vector<uint8_t> vis(call.mask ? static_cast<size_t>(kBr * kBc) : 0);
    TermScratch<T> scratch(call.terms);
    Call<T> hc = call;  // with this head's q and k rows packed (packed_head)
    CachedBuffer<T> qbuf, kbuf, dobuf;
    const bool pack = Tq >= kRearrangeMinRows;
    for (int64_t bg = w0; bg < w1; ++bg) {
      const int64_t b = bg / G, g = bg % G;
      if (pack) hc.k = packed_head(k, b, g, S, D, kbuf);
      for (int64_t h = g * Hg; h < (g + 1) * Hg; ++h) {  // the query heads of group g, in order
        const int64_t bh = b * H + h;
        if (pack) hc.q = packed_head(q, b, h, Tq, D, qbuf);
        const AttnRows<const T> dout_h = pack ? packed_head(dout, b, h, Tq, D, dobuf) : dout;
        const T* lse_h = lse + bh * Tq;
        double* bgrad_h = bgrad.empty() ? nullptr : bgrad.data() + bh * R;
        // D_i = dO_i . o_i (= sum_j p_ij dp_ij): one dot per row instead of a T x S rowsum.
        for (int64_t i = 0; i < Tq; ++i) Di[size_t(i)] = T(row_dot(dout_h.row(b, h, i), o.row(b, h, i), D));
        for (int64_t j0 = 0; j0 < S; j0 += kBc) {
          const int64_t nj = std::min(kBc, S - j0);
          // Causal: query i sees key j0 iff q_offset + i >= j0; start at that query's block.
          int64_t i_first = n.causal ? std::max<int64_t>(0, j0 - n.q_offset) : 0;
          for (int64_t i0 = i_first / kBr * kBr; i0 < Tq; i0 += kBr) {
            const int64_t ni = std::min(kBr, Tq - i0);
            Tile tile = Tile::visible;
            if (call.mask) {
              tile = call.mask->classify(b, h, i0, i0 + ni, j0, j0 + nj, n.q_offset);
              if (tile == Tile::hidden) continue;
            }
            const T* doi = dout_h.row(b, h, i0);
            // p = exp(s - lse), s as in the forward (hidden entries: exp(-inf) = 0). On the
            // diagonal, row chunks only compute the keys they see (as in the forward), and key
            // chunks only sum over the query rows that see them.
            const bool diag = straddles_diagonal(n, i0, j0, nj);
            const int64_t step = diag ? kChunk : std::max(ni, nj);
            score_tile<T, kExtras>(p.data(), &scratch, vis.data(), hc, b, h, g, i0, ni, j0, nj, tile,
                                   topk ? terms->threshold + bh * Tq + i0 : nullptr);
            tile_exp<T>(p.data(), kBc, ni, nj, lse_h + i0);
            if (maybe_empty_rows)
              for (int64_t r = 0; r < ni; ++r)  // a row that sees no key: p = 0, not exp(-inf + inf)
                if (lse_h[i0 + r] == -std::numeric_limits<T>::infinity())
                  std::fill(p.data() + r * kBc, p.data() + r * kBc + nj, T(0));
            // dV_j += p^T dO_i
            for (int64_t c0 = 0; c0 < nj; c0 += step) {
              const int64_t c1 = std::min(nj, c0 + step), rf = first_row_seeing(n, i0, ni, j0, c0);
              if (rf < ni)
                tile_acc<T>(dv.row(b, g, j0 + c0), dv.st, p.data() + rf * kBc + c0, 1, kBc, c1 - c0, ni - rf,
                            dout_h.row(b, h, i0 + rf), dout_h.st, D, T(1));
            }
            // dp = dO_i V_j^T, then ds = p (dp - D_i) in place (0 where hidden: dp was not
            // computed above the diagonal, and p = 0 where the mask hides)
            for (int64_t r0 = 0; r0 < ni; r0 += step) {
              const int64_t r1 = std::min(ni, r0 + step), nc = seen_keys(n, i0, r1, j0, nj);
              if (nc == 0) continue;
              if constexpr (std::is_same_v<T, float>) {
                if (!vt.empty()) {
                  tile_dots_t(ds.data() + r0 * kBc, kBc, doi + r0 * dout_h.st, dout_h.st, r1 - r0, vt.at(b, g, j0),
                              vt.ld, nc, D, 1.0f);
                  continue;
                }
              }
              tile_dots<T>(ds.data() + r0 * kBc, kBc, doi + r0 * dout_h.st, dout_h.st, r1 - r0, v.row(b, g, j0), v.st,
                           nc, D, T(1));
            }
            for (int64_t r = 0; r < ni; ++r) {
              T* dr = ds.data() + r * kBc;
              const T* pr = p.data() + r * kBc;
              const T di = Di[size_t(i0 + r)];
              const int64_t seen = seen_keys(n, i0, r + 1, j0, nj);
              for (int64_t c = 0; c < seen; ++c) dr[c] = pr[c] * (dr[c] - di);
              for (int64_t c = seen; c < nj; ++c) dr[c] = T(0);
            }
            if constexpr (kExtras) {
              // dbias(d) += ds_ij over the tile's pairs at distance d = q_offset + i - j
              if (bgrad_h)
                for (int64_t r = 0; r < ni; ++r) {
                  double* gr = bgrad_h + bias->zero + n.q_offset + i0 + r - j0;
                  const T* dr = ds.data() + r * kBc;
                  for (int64_t c = 0; c < nj; ++c) gr[-c] += double(dr[c]);
                }
              if (call.rel) relative_keys_backward<T>(ds.data(), scratch, hc, b, h, i0, ni, j0, nj);
              if (call.pair) pair_backward<T>(ds.data(), hc, b, h, i0, ni, j0, nj);
            }
            // dQ_i += scale ds K_j;  dK_j += scale ds^T Q_i
            for (int64_t r0 = 0; r0 < ni; r0 += step) {
              const int64_t r1 = std::min(ni, r0 + step), nc = seen_keys(n, i0, r1, j0, nj);
              if (nc > 0)
                tile_acc<T>(dq.row(b, h, i0 + r0), dq.st, ds.data() + r0 * kBc, kBc, 1, r1 - r0, nc, hc.k.row(b, g, j0),
                            hc.k.st, D, scale);
            }
            for (int64_t c0 = 0; c0 < nj; c0 += step) {
              const int64_t c1 = std::min(nj, c0 + step), rf = first_row_seeing(n, i0, ni, j0, c0);
              if (rf < ni)
                tile_acc<T>(dk.row(b, g, j0 + c0), dk.st, ds.data() + rf * kBc + c0, 1, kBc, c1 - c0, ni - rf,
                            hc.q.row(b, h, i0 + rf), hc.q.st, D, scale);
            }
          }
        }
      }
    }
  });
  // The bias gradient: sum the per-(b, h) rows over b (fixed order: deterministic).
  if (!bgrad.empty())
    for (int64_t h = 0; h < H; ++h)
      for (int64_t x = 0; x < R; ++x) {
        double sum = 0;
        for (int64_t b = 0; b < B; ++b) sum += bgrad[size_t((b * H + h) * R + x)];
        bias->grad[h * bias->sh + x] += T(sum);
      }
}
}  // namespace

template <class T>
void attention_backward(AttnRows<T> dq, AttnRows<T> dk, AttnRows<T> dv, AttnRows<const T> o, const T* lse,
                        AttnRows<const T> dout, AttnRows<const T> q, AttnRows<const T> k, AttnRows<const T> v,
                        const AttnSizes& n, const RelativeBias<T>* bias, const ScoreTerms<T>* terms) {
  check_call(n, bias, terms, "attention backward");
  if (needs_extras(n, bias, terms))
    backward_tiles<T, true>(dq, dk, dv, o, lse, dout, q, k, v, n, bias, terms);
  else
    backward_tiles<T, false>(dq, dk, dv, o, lse, dout, q, k, v, n, nullptr, nullptr);
}

template <class T>
void attention_backward_ref(AttnRows<T> dq, AttnRows<T> dk, AttnRows<T> dv, AttnRows<const T> o, const T* lse,
                            AttnRows<const T> dout, AttnRows<const T> q, AttnRows<const T> k, AttnRows<const T> v,
                            const AttnSizes& n, const RelativeBias<T>* bias, const ScoreTerms<T>* terms) {
  (void)o;
  (void)lse;
  // The reference finds its own top-k thresholds: no buffer needed.
  ScoreTerms<T> t = terms ? *terms : ScoreTerms<T>{};
  std::vector<T> thr_unused(1);
  t.threshold = thr_unused.data();
  check_call(n, bias, &t, "attention backward");
  const int64_t Tq = n.T, S = n.S, D = n.D, Hg = n.H / kv_heads(n);
  std::vector<double> P(static_cast<size_t>(Tq * S)), dP(static_cast<size_t>(Tq * S));
  std::vector<uint8_t> vis(static_cast<size_t>(S));
  for (int64_t b = 0; b < n.B; ++b)
    for (int64_t h = 0; h < n.H; ++h) {
      const int64_t g = h / Hg;  // dk, dv of group g gather every head of the group
      // P = softmax(scores), materialised [T, S]; a row with no visible key is 0.
      for (int64_t i = 0; i < Tq; ++i) {
        double* pi = P.data() + i * S;
        ref_scores<T>(pi, vis.data(), q, k, n, bias, terms, b, h, i);
        double mx = -INFINITY, l = 0;
        for (int64_t j = 0; j < S; ++j) mx = std::max(mx, pi[j]);
        if (mx == -INFINITY) {
          std::fill(pi, pi + S, 0.0);
          continue;
        }
        for (int64_t j = 0; j < S; ++j) l += (pi[j] = std::exp(pi[j] - mx));
        for (int64_t j = 0; j < S; ++j) pi[j] /= l;
      }
      // dP = dO V^T; dV = P^T dO
      for (int64_t i = 0; i < Tq; ++i)
        for (int64_t j = 0; j < S; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += double(dout.row(b, h, i)[d]) * double(v.row(b, g, j)[d]);
          dP[size_t(i * S + j)] = dot;
        }
      for (int64_t j = 0; j < S; ++j)
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0;
          for (int64_t i = 0; i < Tq; ++i) acc += P[size_t(i * S + j)] * double(dout.row(b, h, i)[d]);
          dv.row(b, g, j)[d] += T(acc);
        }
      // dS = P (dP - rowsum(P dP))   (the softmax backward, written out without the D_i trick)
      for (int64_t i = 0; i < Tq; ++i) {
        double dot = 0;
        for (int64_t j = 0; j < S; ++j) dot += P[size_t(i * S + j)] * dP[size_t(i * S + j)];
        for (int64_t j = 0; j < S; ++j) dP[size_t(i * S + j)] = P[size_t(i * S + j)] * (dP[size_t(i * S + j)] - dot);
      }
      // dbias_h(q_offset + i - j) += dS_ij
      if (bias && bias->grad)
        for (int64_t i = 0; i < Tq; ++i)
          for (int64_t j = 0; j < S; ++j)
            bias->grad[h * bias->sh + bias->zero + n.q_offset + i - j] += T(dP[size_t(i * S + j)]);
      // Relative keys: dA_i += scale sum_j dS_ij r(d), dR(d) += scale sum dS_ij A_i.
      if (has_rel(terms))
        for (int64_t i = 0; i < Tq; ++i)
          for (int64_t j = 0; j < S; ++j) {
            const double ds = n.scale * dP[size_t(i * S + j)];
            const int64_t row = t.zero + n.q_offset + i - j;
            for (int64_t d = 0; d < t.Dr; ++d) {
              if (t.drel_q.p) t.drel_q.row(b, h, i)[d] += T(ds * double(t.rel_k.row(b, h, row)[d]));
              if (t.drel_k.p) t.drel_k.row(b, h, row)[d] += T(ds * double(t.rel_q.row(b, h, i)[d]));
            }
          }
      // Pair product: dC_i += pscale sum_j dS_ij E_j, dE_j += pscale sum_i dS_ij C_i.
      if (has_pair(terms)) {
        for (int64_t i = 0; i < Tq && t.dpair_q.p; ++i)
          for (int64_t d = 0; d < t.Dp; ++d) {
            double acc = 0;
            for (int64_t j = 0; j < S; ++j) acc += dP[size_t(i * S + j)] * double(t.pair_k.row(b, h, j)[d]);
            t.dpair_q.row(b, h, i)[d] += T(t.pair_scale * acc);
          }
        for (int64_t j = 0; j < S && t.dpair_k.p; ++j)
          for (int64_t d = 0; d < t.Dp; ++d) {
            double acc = 0;
            for (int64_t i = 0; i < Tq; ++i) acc += dP[size_t(i * S + j)] * double(t.pair_q.row(b, h, i)[d]);
            t.dpair_k.row(b, h, j)[d] += T(t.pair_scale * acc);
          }
      }
      // dQ = scale dS K; dK = scale dS^T Q
      for (int64_t i = 0; i < Tq; ++i)
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < S; ++j) acc += dP[size_t(i * S + j)] * double(k.row(b, g, j)[d]);
          dq.row(b, h, i)[d] += T(n.scale * acc);
        }
      for (int64_t j = 0; j < S; ++j)
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0;
          for (int64_t i = 0; i < Tq; ++i) acc += dP[size_t(i * S + j)] * double(q.row(b, h, i)[d]);
          dk.row(b, g, j)[d] += T(n.scale * acc);
        }
    }
}

#define TZ_INST(T)                                                                                                    \
  template void attention_forward<T>(AttnRows<T>, T*, AttnRows<const T>, AttnRows<const T>, AttnRows<const T>,        \
                                     const AttnSizes&, const RelativeBias<T>*, const ScoreTerms<T>*);                 \
  template void attention_forward_ref<T>(AttnRows<T>, T*, AttnRows<const T>, AttnRows<const T>, AttnRows<const T>,    \
                                         const AttnSizes&, const RelativeBias<T>*, const ScoreTerms<T>*);             \
  template void attention_topk_threshold<T>(T*, AttnRows<const T>, AttnRows<const T>, const AttnSizes&,               \
                                            const RelativeBias<T>*, const ScoreTerms<T>*);                            \
  template void attention_backward<T>(AttnRows<T>, AttnRows<T>, AttnRows<T>, AttnRows<const T>, const T*,             \
                                      AttnRows<const T>, AttnRows<const T>, AttnRows<const T>, AttnRows<const T>,     \
                                      const AttnSizes&, const RelativeBias<T>*, const ScoreTerms<T>*);                \
  template void attention_backward_ref<T>(AttnRows<T>, AttnRows<T>, AttnRows<T>, AttnRows<const T>, const T*,         \
                                          AttnRows<const T>, AttnRows<const T>, AttnRows<const T>, AttnRows<const T>, \
                                          const AttnSizes&, const RelativeBias<T>*, const ScoreTerms<T>*);
TZ_INST(float)
TZ_INST(double)
#undef TZ_INST

}  // namespace tz::kernels
