// The quantized weight formats and their plain GEMV references, and the dispatcher that
// picks a SIMD kernel; see quant.h for the formats and shape letters.
#include "core/kernels/quant.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/kernels/gemm.h"
#include "core/parallel.h"

namespace tz::kernels {

namespace {

// Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 pushes the fraction out
// of the f32 mantissa (the FPU rounds it away in the default mode), subtracting brings back
// the integer. Unlike std::nearbyint the loop around it vectorises.
inline float round_even(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (v + kMagic) - kMagic;
}

// One block of n values: d = max|x| / 127, q = round(x / d) in [-127, 127]. The division is
// a multiplication by id = 127 / max|x|, which can put x * id a rounding past 127 only by
// less than one unit in the last place: the result still rounds to 127.
inline float quantize_block(int8_t* q, const float* x, int64_t n) {
  float amax = 0;
  for (int64_t k = 0; k < n; ++k) amax = std::max(amax, std::fabs(x[k]));
  const float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
  if (id > 3.0e38f) {  // max|x| below ~4e-37: 127 / max|x| overflows, so divide in f64
    for (int64_t k = 0; k < n; ++k) q[k] = int8_t(std::nearbyint(double(x[k]) * 127.0 / double(amax)));
    return d;
  }
  for (int64_t k = 0; k < n; ++k) q[k] = int8_t(round_even(x[k] * id));
  return d;
}

}  // namespace

// ---- formats ---------------------------------------------------------------------------------

void quantize_q8_0(int8_t* q, float* scales, const float* w, int64_t N, int64_t K) {
  TZ_CHECK(K % kQ8Block == 0, "quantize_q8_0: K = ", K, " is not a multiple of the block size ", kQ8Block);
  const int64_t nb = K / kQ8Block;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t at = n * K + b * kQ8Block;
      scales[n * nb + b] = quantize_block(q + at, w + at, kQ8Block);
    }
}

void dequantize_q8_0(float* w, const int8_t* q, const float* scales, int64_t N, int64_t K) {
  const int64_t nb = K / kQ8Block;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) w[n * K + k] = scales[n * nb + k / kQ8Block] * float(q[n * K + k]);
}

void quantize_bf16(uint16_t* out, const float* w, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t bits = std::bit_cast<uint32_t>(w[i]);
    if ((bits & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep it a quiet NaN
      out[i] = uint16_t((bits >> 16) | 0x40u);
      continue;
    }
    // Round to nearest, ties to even: add 0x7fff plus the lowest kept bit, then truncate.
    out[i] = uint16_t((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
  }
}

void dequantize_bf16(float* out, const uint16_t* in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = std::bit_cast<float>(uint32_t(in[i]) << 16);
}

namespace {
void size_activations(Q8Activations& o, const QuantGemvArgs& g) {
  o.M = g.M;
  o.K = g.K;
  o.q.resize(size_t(g.M * g.K));
  o.a.resize(size_t(g.M * g.K));
  o.neg.assign(size_t(g.M * ((g.K + 63) / 64)), 0);
  o.d.resize(size_t(g.M * g.K / kQ8Block));
  o.dl.resize(size_t(g.M * g.K / 4));
}
}  // namespace

void quantize_activations(Q8Activations& o, const QuantGemvArgs& g) {
  if (simd_level() < SimdLevel::avx512) return quantize_activations_ref(o, g);
  size_activations(o, g);
  const int64_t K = g.K, nm = (K + 63) / 64;
  for (int64_t i = 0; i < g.M; ++i)
    quantize_row_avx512(o.q.data() + i * K, o.a.data() + i * K, o.neg.data() + i * nm, o.d.data() + i * K / kQ8Block,
                        o.dl.data() + i * K / 4, g.x + i * g.ldx, K);
}

void quantize_activations_ref(Q8Activations& o, const QuantGemvArgs& g) {
  const int64_t M = g.M, K = g.K, nb = K / kQ8Block, nm = (K + 63) / 64;
  size_activations(o, g);
  for (int64_t i = 0; i < M; ++i) {
    int8_t* q = o.q.data() + i * K;
    for (int64_t b = 0; b < nb; ++b) {
      const float d = quantize_block(q + b * kQ8Block, g.x + i * g.ldx + b * kQ8Block, kQ8Block);
      o.d[size_t(i * nb + b)] = d;
      std::fill_n(o.dl.data() + i * K / 4 + b * kQ8Block / 4, kQ8Block / 4, d);
    }
    for (int64_t k = 0; k < K; ++k) {
      o.a[size_t(i * K + k)] = uint8_t(q[k] < 0 ? -q[k] : q[k]);
      o.neg[size_t(i * nm + k / 64)] |= uint64_t(q[k] < 0) << (k % 64);
    }
  }
}

// ---- references --------------------------------------------------------------------------------

namespace {
inline float finish(const QuantGemvArgs& g, int64_t n, double s) { return float(s) + (g.bias ? g.bias[n] : 0.0f); }
}  // namespace

void gemv_q8_0_ref(const QuantGemvArgs& g, const Q8Activations&, const int8_t* q, const float* scales, int64_t n0,
                   int64_t n1) {
  const int64_t K = g.K, nb = K / kQ8Block;
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t n = n0; n < n1; ++n) {
      double s = 0;  // sum over k of (d q) x, the weight widened exactly as dequantize_q8_0 does
      for (int64_t k = 0; k < K; ++k)
        s += double(scales[n * nb + k / kQ8Block] * float(q[n * K + k])) * double(g.x[i * g.ldx + k]);
      g.y[i * g.ldy + n] = finish(g, n, s);
    }
}

void gemv_q8q8_ref(const QuantGemvArgs& g, const Q8Activations& xq, const int8_t* q, const float* scales, int64_t n0,
                   int64_t n1) {
  const int64_t K = g.K, nb = K / kQ8Block;
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t n = n0; n < n1; ++n) {
      double s = 0;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t dot = 0;  // exact: 32 products of at most 127^2
        for (int64_t k = b * kQ8Block; k < (b + 1) * kQ8Block; ++k)
          dot += int32_t(q[n * K + k]) * xq.q[size_t(i * K + k)];
        s += double(scales[n * nb + b]) * double(xq.d[size_t(i * nb + b)]) * double(dot);
      }
      g.y[i * g.ldy + n] = finish(g, n, s);
    }
}

void gemv_bf16_ref(const QuantGemvArgs& g, const uint16_t* w, int64_t n0, int64_t n1) {
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t n = n0; n < n1; ++n) {
      double s = 0;
      for (int64_t k = 0; k < g.K; ++k)
        s += double(std::bit_cast<float>(uint32_t(w[n * g.K + k]) << 16)) * double(g.x[i * g.ldx + k]);
      g.y[i * g.ldy + n] = finish(g, n, s);
    }
}

// ---- the kernel lists and the choice ------------------------------------------------------------

bool cpu_has_avx512_vnni() {
#if defined(__x86_64__)
  static const bool has = cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
  return has;
#else
  return false;
#endif
}

bool cpu_has_avx512_bf16() {
#if defined(__x86_64__)
  static const bool has = cpu_has_avx512() && __builtin_cpu_supports("avx512bf16");
  return has;
#else
  return false;
#endif
}

std::vector<Q8Kernel> q8_gemv_kernels() {
  const bool avx2 = cpu_has_avx2_fma(), avx512 = cpu_has_avx512();
  return {
      {"ref", &gemv_q8_0_ref, &gemv_q8_0_ref, 0, true},
      {"q8q8_ref", &gemv_q8q8_ref, &gemv_q8q8_ref, 0, true},
      {"avx2_dequant", &gemv_q8_0_avx2, &gemv_q8_0_ref, 1, avx2},
      {"avx2_q8q8", &gemv_q8q8_avx2, &gemv_q8q8_ref, 1, avx2},
      {"avx512_dequant", &gemv_q8_0_avx512, &gemv_q8_0_ref, 2, avx512},
      {"avx512_vnni", &gemv_q8q8_avx512vnni, &gemv_q8q8_ref, 2, cpu_has_avx512_vnni()},
  };
}

std::vector<Bf16Kernel> bf16_gemv_kernels() {
  return {
      {"ref", &gemv_bf16_ref, 0, true},
      {"avx2", &gemv_bf16_avx2, 1, cpu_has_avx2_fma()},
      {"avx512", &gemv_bf16_avx512, 2, cpu_has_avx512()},
      {"avx512_bf16", &gemv_bf16_avx512bf16, 2, cpu_has_avx512_bf16()},
  };
}

namespace {

template <class Kernel>
const Kernel* by_name(const std::vector<Kernel>& all, const char* env_name) {
  const char* env = std::getenv(env_name);
  if (!env || !*env) return nullptr;
  std::string names;
  for (const Kernel& k : all) {
    if (k.runs && k.name == std::string_view(env)) return &k;
    if (k.runs) names += cat_str(names.empty() ? "" : ", ", k.name);
  }
  throw Error(cat_str(env_name, "='", std::string(env).substr(0, 40), "' is not a kernel this CPU runs (", names, ")"));
}

// The kernel of a level: a name from the environment if given (and of that level or below),
// else the preferred list's first that runs at this level.
template <class Kernel>
const Kernel& choose(const std::vector<Kernel>& all, const char* env_name, std::initializer_list<const char*> order) {
  static const Kernel* forced = by_name(all, env_name);
  const int level = int(simd_level());
  if (forced && forced->level <= level) return *forced;
  for (const char* name : order)
    for (const Kernel& k : all)
      if (k.runs && k.level <= level && k.name == std::string_view(name)) return k;
  return all.front();
}

}  // namespace

const Q8Kernel& q8_gemv_kernel() {
  static const std::vector<Q8Kernel> all = q8_gemv_kernels();
  // Measured (bench/quant_gemv.cpp, docs/performance.md): VNNI's integer dots are faster
  // than widening the weights to f32; on AVX2 the dequant path and vpmaddubsw are close.
  return choose(all, "TZ_Q8_KERNEL", {"avx512_vnni", "avx512_dequant", "avx2_q8q8", "ref"});
}

const Bf16Kernel& bf16_gemv_kernel() {
  static const std::vector<Bf16Kernel> all = bf16_gemv_kernels();
  // Measured: widening to f32 beats vdpbf16ps here (x must go in as two bf16, so two dot
  // products per weight pair), 19 against 12 GB/s on one Xeon core (docs/performance.md).
  return choose(all, "TZ_BF16_KERNEL", {"avx512", "avx512_bf16", "avx2", "ref"});
}

// ---- the dispatchers ----------------------------------------------------------------------------

namespace {

// Threads only for a W of 4 parallel grains of weights, as the f32 GEMV (gemm.cpp).
template <class Fn>
void split_rows(const QuantGemvArgs& g, Fn&& fn) {
  if (g.N * g.K < 4 * parallel_grain())
    fn(0, g.N);
  else
    parallel_for(g.N, 2 * g.M * g.K, fn);
}

// M > kQuantGemvMaxM: tiles of rows of W dequantized to f32 (about 1 MiB each), each a GEMM
// y[:, n0:n0+R] = x tile^T, so no f32 copy of the whole W exists at once.
template <class Dequant>
void gemm_tiles(const QuantGemvArgs& g, Dequant&& dequant) {
  thread_local std::vector<float> tile;
  const int64_t R = std::clamp<int64_t>((int64_t(1) << 18) / g.K / 32 * 32, 32, 512);
  tile.resize(size_t(R * g.K));
  for (int64_t n0 = 0; n0 < g.N; n0 += R) {
    const int64_t r = std::min(R, g.N - n0);
    dequant(tile.data(), n0, r);
    if (g.bias)
      for (int64_t i = 0; i < g.M; ++i) std::copy_n(g.bias + n0, r, g.y + i * g.ldy + n0);
    gemm(GemmArgs<float>{g.y + n0, g.ldy, g.x, g.ldx, false, tile.data(), g.K, true, g.M, r, g.K, 1.0f,
                         g.bias ? 1.0f : 0.0f});
  }
}

// A short prompt as GEMVs of kQuantGemvMaxM rows at a time: below these M it beats the f32
// GEMM on dequantized tiles, whose dequantizing costs the same at any M (the large model's
// 24 matrices, one Xeon core: q8_0 7 against 34 ms at M = 16, 31 against 34 at 64; bf16 11
// against 26 at 16, 24 against 17 at 32).
constexpr int64_t kQ8GroupedMaxM = 48, kBf16GroupedMaxM = 16;

template <class Gemv>
void gemv_groups(const QuantGemvArgs& g, Gemv&& gemv) {
  for (int64_t i = 0; i < g.M; i += kQuantGemvMaxM) {
    QuantGemvArgs part = g;
    part.M = std::min(kQuantGemvMaxM, g.M - i), part.x = g.x + i * g.ldx, part.y = g.y + i * g.ldy;
    gemv(part);
  }
}

}  // namespace

void gemv_q8_0(const QuantGemvArgs& g, const int8_t* q, const float* scales) {
  if (g.M > kQuantGemvMaxM && g.M <= kQ8GroupedMaxM)
    return gemv_groups(g, [&](const QuantGemvArgs& p) { gemv_q8_0(p, q, scales); });
  if (g.M > kQuantGemvMaxM) {
    gemm_tiles(g, [&](float* t, int64_t n0, int64_t r) {
      dequantize_q8_0(t, q + n0 * g.K, scales + n0 * (g.K / kQ8Block), r, g.K);
    });
    return;
  }
  const Q8Kernel& k = q8_gemv_kernel();
  thread_local Q8Activations mine;
  Q8Activations& xq = mine;  // a reference: inside the lambda the name would be each worker's own
  if (k.reference == &gemv_q8q8_ref) quantize_activations(xq, g);
  split_rows(g, [&](int64_t n0, int64_t n1) { k.fn(g, xq, q, scales, n0, n1); });
}

void gemv_bf16(const QuantGemvArgs& g, const uint16_t* w) {
  if (g.M > kQuantGemvMaxM && g.M <= kBf16GroupedMaxM)
    return gemv_groups(g, [&](const QuantGemvArgs& p) { gemv_bf16(p, w); });
  if (g.M > kQuantGemvMaxM) {
    gemm_tiles(g, [&](float* t, int64_t n0, int64_t r) { dequantize_bf16(t, w + n0 * g.K, r * g.K); });
    return;
  }
  const Bf16Kernel& k = bf16_gemv_kernel();
  split_rows(g, [&](int64_t n0, int64_t n1) { k.fn(g, w, n0, n1); });
}

}  // namespace tz::kernels
