// The selective scan's inner steps over the N state entries of one channel, f32 AVX2+FMA
// (8 entries per vector, a masked tail), with the vectorised exp of vecmath.h (max rel.
// error 7.6e-8). The scalar versions are the loops over k in selective_scan.cpp, which the
// tests compare these with (tz::set_simd_enabled(false)). Formulas in scan.h.
#include "core/kernels/scan.h"
#include "core/kernels/vecmath.h"

namespace tz::kernels::avx2 {

using simd::F8;

namespace {
float hsum(F8 x) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(x.v), _mm256_extractf128_ps(x.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
F8 load(const float* p, int64_t k, int64_t N) {
  return k + 8 <= N ? F8::load(p + k) : F8::load_partial(p + k, int(N - k));
}
void store(F8 x, float* p, int64_t k, int64_t N) {
  if (k + 8 <= N)
    x.store(p + k);
  else
    x.store_partial(p + k, int(N - k));
}
}  // namespace

float selective_step(float* h, const float* Ad, const float* Bt, const float* Ct, float dt, float dtx, int64_t N) {
  const F8 vdt(dt), vdtx(dtx);
  F8 y(0.0f);
  for (int64_t k = 0; k < N; k += 8) {
    F8 hk = simd::fma(simd::exp(vdt * load(Ad, k, N)), load(h, k, N), vdtx * load(Bt, k, N));
    store(hk, h, k, N);
    y = simd::fma(load(Ct, k, N), hk, y);  // the masked tail loads zeros: no contribution
  }
  return hsum(y);
}

void selective_recompute(float* next, const float* prev, const float* Ad, const float* Bt, float dt, float dtx,
                         int64_t N) {
  const F8 vdt(dt), vdtx(dtx);
  for (int64_t k = 0; k < N; k += 8)
    store(simd::fma(simd::exp(vdt * load(Ad, k, N)), load(prev, k, N), vdtx * load(Bt, k, N)), next, k, N);
}

SelectiveBack selective_step_back(float* dh, float* dA_acc, float* dBt, float* dCt, const float* hn, const float* hp,
                                  const float* Ad, const float* Bt, const float* Ct, float dt, float x, float dy,
                                  int64_t N) {
  const F8 vdt(dt), vx(x), vdy(dy), vdtx(dt * x);
  F8 dd(0.0f), du(0.0f);
  for (int64_t k = 0; k < N; k += 8) {
    const F8 a = load(Ad, k, N), b = load(Bt, k, N);
    store(simd::fma(vdy, load(hn, k, N), load(dCt, k, N)), dCt, k, N);
    const F8 dhk = simd::fma(vdy, load(Ct, k, N), load(dh, k, N));
    const F8 Abar = simd::exp(vdt * a);
    const F8 dAbar = dhk * load(hp, k, N) * Abar;
    dd = simd::fma(dAbar, a, simd::fma(dhk * b, vx, dd));
    store(simd::fma(dAbar, vdt, load(dA_acc, k, N)), dA_acc, k, N);
    store(simd::fma(dhk, vdtx, load(dBt, k, N)), dBt, k, N);
    du = simd::fma(dhk * vdt, b, du);
    store(dhk * Abar, dh, k, N);
  }
  return {hsum(dd), hsum(du)};
}

}  // namespace tz::kernels::avx2
