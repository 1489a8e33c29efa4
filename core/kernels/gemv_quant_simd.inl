// The f32-widening GEMV kernels for quantized weights, written once over a vector type V and
// included by gemv_quant_avx2.cpp (8 floats) and gemv_quant_avx512.cpp (16 floats) inside
// their own namespaces. Shape letters and the formats as in quant.h.
//
// Like gemv_simd.inl's trans_b kernel: one row n of W at a time, streamed in storage order,
// its values widened to f32 in registers and FMA'd into U accumulators per row of x, which
// are summed across lanes once at the end:
//   q8_0  per block b: the lanes of d_b q (one multiply per vector), then FMAs with x
//   bf16  the 16 bits shifted into the top of an f32 (exact), then FMAs with x
// V provides: kLanes, type, zero(), load(const float*), set1(x), add, mul, fma(a, b, c) =
// a * b + c, hsum(v), widen_i8(const int8_t*) and widen_bf16(const uint16_t*) (kLanes values).

template <int M>
void q8_dequant_m(const QuantGemvArgs& g, const int8_t* q, const float* scales, int64_t n0, int64_t n1) {
  using vec = typename V::type;
  constexpr int L = V::kLanes, PerBlock = int(kQ8Block) / L;  // vectors per block: 4 or 2
  const int64_t K = g.K, nb = K / kQ8Block;
  for (int64_t n = n0; n < n1; ++n) {
    const int8_t* w = q + n * K;
    const float* s = scales + n * nb;
    vec acc[M][2];
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = V::zero();
    for (int64_t b = 0; b < nb; ++b) {
      const vec d = V::set1(s[b]);
#pragma GCC unroll 4
      for (int u = 0; u < PerBlock; ++u) {
        const int64_t k = b * kQ8Block + u * L;
        const vec wv = V::mul(V::widen_i8(w + k), d);
#pragma GCC unroll 8
        for (int i = 0; i < M; ++i) acc[i][u & 1] = V::fma(V::load(g.x + i * g.ldx + k), wv, acc[i][u & 1]);
      }
    }
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i)
      g.y[i * g.ldy + n] = V::hsum(V::add(acc[i][0], acc[i][1])) + (g.bias ? g.bias[n] : 0.0f);
  }
}

template <int M>
void bf16_widen_m(const QuantGemvArgs& g, const uint16_t* wb, int64_t n0, int64_t n1) {
  using vec = typename V::type;
  constexpr int L = V::kLanes, U = 2;
  const int64_t K = g.K;
  for (int64_t n = n0; n < n1; ++n) {
    const uint16_t* w = wb + n * K;
    vec acc[M][U];
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = V::zero();
    int64_t k = 0;
    for (; k + U * L <= K; k += U * L) {
#pragma GCC unroll 2
      for (int u = 0; u < U; ++u) {
        const vec wv = V::widen_bf16(w + k + u * L);
#pragma GCC unroll 8
        for (int i = 0; i < M; ++i) acc[i][u] = V::fma(V::load(g.x + i * g.ldx + k + u * L), wv, acc[i][u]);
      }
    }
    for (; k + L <= K; k += L) {
      const vec wv = V::widen_bf16(w + k);
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) acc[i][0] = V::fma(V::load(g.x + i * g.ldx + k), wv, acc[i][0]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      float s = V::hsum(V::add(acc[i][0], acc[i][1]));
      for (int64_t t = k; t < K; ++t)  // the K tail, under one vector
        s += std::bit_cast<float>(uint32_t(w[t]) << 16) * g.x[i * g.ldx + t];
      g.y[i * g.ldy + n] = s + (g.bias ? g.bias[n] : 0.0f);
    }
  }
}

void q8_dequant(const QuantGemvArgs& g, const int8_t* q, const float* scales, int64_t n0, int64_t n1) {
  switch (g.M) {
    case 1: return q8_dequant_m<1>(g, q, scales, n0, n1);
    case 2: return q8_dequant_m<2>(g, q, scales, n0, n1);
    case 3: return q8_dequant_m<3>(g, q, scales, n0, n1);
    case 4: return q8_dequant_m<4>(g, q, scales, n0, n1);
    default: break;
  }
}

void bf16_widen(const QuantGemvArgs& g, const uint16_t* w, int64_t n0, int64_t n1) {
  switch (g.M) {
    case 1: return bf16_widen_m<1>(g, w, n0, n1);
    case 2: return bf16_widen_m<2>(g, w, n0, n1);
    case 3: return bf16_widen_m<3>(g, w, n0, n1);
    case 4: return bf16_widen_m<4>(g, w, n0, n1);
    default: break;
  }
}
