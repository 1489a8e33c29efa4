// The AVX-512 GEMV kernels that need the extensions for low-precision dot products (compiled
// with -mavx512vnni -mavx512bf16 on top of AVX-512 F/DQ/BW/VL; chosen only when the CPU has
// them: cpu_has_avx512_vnni(), cpu_has_avx512_bf16()). See quant.h.
#include <immintrin.h>

#include <bit>
#include <vector>

#include "core/kernels/quant.h"

namespace tz::kernels {
namespace {

inline float hsum(__m512 v) {  // 16 -> 8 -> 4 -> 2 -> 1, always the same pairs
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

// ---- q8_0 x q8 with vpdpbusd ------------------------------------------------------------------
// vpdpbusd(c, a, w) adds to each of 16 int32 lanes the sum of 4 products of unsigned bytes a
// and signed bytes w. A chunk of 64 weights is two blocks: lanes 0-7 block b, 8-15 block b+1.
// x enters as a = |qx|, its sign moved onto the weights (w negated where qx < 0, one masked
// subtraction with xq.neg's bits), so the lane holds the exact integer sum qx q. Each lane is
// then converted to f32 and scaled by d_b (the weight block's scale, two per chunk spread over
// the halves) times dx_b (xq.dl: already one per lane).
struct Chunk {
  __m512i w;  // the weights
  __m512 d;   // their scales per lane
};

inline Chunk load_chunk(const int8_t* w, const float* s, __mmask64 m) {
  const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m128 two =
      m == ~__mmask64(0) ? _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s))) : _mm_load_ss(s);
  return {_mm512_maskz_loadu_epi8(m, w), _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(two))};
}

inline __m512 chunk_dot(const Chunk& c, const uint8_t* a, __mmask64 neg, const float* dl, __mmask64 m, __m512 acc) {
  const __m512i w = _mm512_mask_sub_epi8(c.w, neg, _mm512_setzero_si512(), c.w);
  const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_maskz_loadu_epi8(m, a), w);
  const __m512 dx = _mm512_maskz_loadu_ps(__mmask16(m == ~__mmask64(0) ? 0xffff : 0x00ff), dl);
  return _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot), dx), c.d, acc);
}

// Weights are read this many bytes ahead of the dot products (across rows: W is one block of
// memory). The hardware prefetcher alone left a core at 75 % of its L3 read bandwidth on the
// Xeon (family 6 model 207), where 4 KiB ahead reached 85-95 % (1-8 KiB tried). On Zen 5,
// decoding the large GPT in int8 (22 MB of weights and the KV cache sharing a 32 MB L3),
// 12 KiB decoded 1861-1910 tok/s against 1684-1700 at 4 KiB (8-32 KiB: 1733-1878).
// A prefetch past the end of W is harmless: it never faults.
constexpr int64_t kAhead = 12288;

template <int M>
void q8q8_vnni_m(const QuantGemvArgs& g, const Q8Activations& xq, const int8_t* q, const float* scales, int64_t n0,
                 int64_t n1) {
  const int64_t K = g.K, nb = K / kQ8Block, nm = (K + 63) / 64;
  const __mmask64 all = ~__mmask64(0), half = 0xffffffffu;
  for (int64_t n = n0; n < n1; ++n) {
    const int8_t* w = q + n * K;
    const float* s = scales + n * nb;
    __m512 acc[M][2];
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 128 <= K; k += 128) {  // two chunks into two accumulators per row
      _mm_prefetch(reinterpret_cast<const char*>(w + k + kAhead), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(w + k + kAhead + 64), _MM_HINT_T0);
      const Chunk c0 = load_chunk(w + k, s + k / kQ8Block, all);
      const Chunk c1 = load_chunk(w + k + 64, s + k / kQ8Block + 2, all);
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) {
        const uint8_t* a = xq.a.data() + i * K + k;
        const uint64_t* neg = xq.neg.data() + i * nm + k / 64;
        const float* dl = xq.dl.data() + (i * K + k) / 4;
        acc[i][0] = chunk_dot(c0, a, neg[0], dl, all, acc[i][0]);
        acc[i][1] = chunk_dot(c1, a + 64, neg[1], dl + 16, all, acc[i][1]);
      }
    }
    for (; k < K; k += 64) {  // a last chunk of one or two blocks
      const __mmask64 m = k + 64 <= K ? all : half;
      const Chunk c = load_chunk(w + k, s + k / kQ8Block, m);
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i)
        acc[i][0] = chunk_dot(c, xq.a.data() + i * K + k, xq.neg[size_t(i * nm + k / 64)],
                              xq.dl.data() + (i * K + k) / 4, m, acc[i][0]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i)
      g.y[i * g.ldy + n] = hsum(_mm512_add_ps(acc[i][0], acc[i][1])) + (g.bias ? g.bias[n] : 0.0f);
  }
}

// ---- bf16 with vdpbf16ps ------------------------------------------------------------------------
// vdpbf16ps(c, a, b) adds to each of 16 f32 lanes the two products of a pair of bf16 values.
// Only the weights are bf16: x is split into x = hi + lo, both bf16 (lo holds the 8 bits
// that hi drops), and both are dotted with the weights, so x keeps 16 bits of mantissa and
// the result is as close to the widening kernels' as their f32 sums are to each other.
// (vdpbf16ps flushes denormals to zero, in inputs and outputs.)
inline uint16_t to_bf16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  return uint16_t((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

inline __m512bh load_bh(const uint16_t* p, __mmask32 m) { return (__m512bh)_mm512_maskz_loadu_epi16(m, p); }

template <int M>
void bf16_dp_m(const QuantGemvArgs& g, const uint16_t* wb, int64_t n0, int64_t n1) {
  const int64_t K = g.K;
  thread_local std::vector<uint16_t> split;  // per row of x: hi [K], lo [K]
  split.resize(size_t(2 * M * K));
  for (int i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k) {
      const float x = g.x[i * g.ldx + k];
      const uint16_t hi = to_bf16(x);
      split[size_t(2 * i * K + k)] = hi;
      split[size_t((2 * i + 1) * K + k)] = to_bf16(x - std::bit_cast<float>(uint32_t(hi) << 16));
    }
  const __mmask32 all = ~__mmask32(0);
  for (int64_t n = n0; n < n1; ++n) {
    const uint16_t* w = wb + n * K;
    __m512 acc[M][2];
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 32) {
      const __mmask32 m = k + 32 <= K ? all : __mmask32((1u << (K - k)) - 1);
      const __m512bh wv = load_bh(w + k, m);
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) {
        acc[i][0] = _mm512_dpbf16_ps(acc[i][0], load_bh(split.data() + 2 * i * K + k, m), wv);
        acc[i][1] = _mm512_dpbf16_ps(acc[i][1], load_bh(split.data() + (2 * i + 1) * K + k, m), wv);
      }
    }
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i)
      g.y[i * g.ldy + n] = hsum(_mm512_add_ps(acc[i][0], acc[i][1])) + (g.bias ? g.bias[n] : 0.0f);
  }
}

}  // namespace

void gemv_q8q8_avx512vnni(const QuantGemvArgs& g, const Q8Activations& xq, const int8_t* q, const float* scales,
                          int64_t n0, int64_t n1) {
  switch (g.M) {
    case 1:
      return q8q8_vnni_m<1>(g, xq, q, scales, n0, n1);
    case 2:
      return q8q8_vnni_m<2>(g, xq, q, scales, n0, n1);
    case 3:
      return q8q8_vnni_m<3>(g, xq, q, scales, n0, n1);
    case 4:
      return q8q8_vnni_m<4>(g, xq, q, scales, n0, n1);
    default:
      break;
  }
}

void gemv_bf16_avx512bf16(const QuantGemvArgs& g, const uint16_t* w, int64_t n0, int64_t n1) {
  switch (g.M) {
    case 1:
      return bf16_dp_m<1>(g, w, n0, n1);
    case 2:
      return bf16_dp_m<2>(g, w, n0, n1);
    case 3:
      return bf16_dp_m<3>(g, w, n0, n1);
    case 4:
      return bf16_dp_m<4>(g, w, n0, n1);
    default:
      break;
  }
}

}  // namespace tz::kernels
