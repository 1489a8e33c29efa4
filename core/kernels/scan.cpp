// Scan kernels (letters and formulas in scan.h).
//
// The references follow the formulas one channel at a time. The fast forms loop over time
// outside and over a block of channels inside (contiguous, so the compiler vectorises the
// real case), one parallel task per (batch, channel block) - and, in the chunked form, per
// chunk of time as well. Products of decays are formed as running products from the chunk
// start, never as a quotient of two cumulative products (P_t / P_s is 0 / 0 once the
// product underflows): an underflowing product just becomes 0, which is its correct limit.
// The selective scan's Abar = exp(delta A) is exponentiated once per step, from the log.
#include "core/kernels/scan.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"

namespace tz::kernels {

namespace {
constexpr int64_t kBlockD = 64;  // channels per task of the elementwise scan

// One element of the scan: a real number, or a complex number stored as two reals.
template <class Real, bool Cx>
struct Elem;
template <class Real>
struct Elem<Real, false> {
  Real v = 0;
  static Elem load(const Real* p, int64_t i) { return {p[i]}; }
  void store(Real* p, int64_t i) const { p[i] = v; }
  static Elem one() { return {Real(1)}; }
  friend Elem operator*(Elem x, Elem y) { return {x.v * y.v}; }
  friend Elem operator+(Elem x, Elem y) { return {x.v + y.v}; }
  Elem conj() const { return *this; }
};
template <class Real>
struct Elem<Real, true> {
  Real re = 0, im = 0;
  static Elem load(const Real* p, int64_t i) { return {p[2 * i], p[2 * i + 1]}; }
  void store(Real* p, int64_t i) const { p[2 * i] = re, p[2 * i + 1] = im; }
  static Elem one() { return {Real(1), Real(0)}; }
  friend Elem operator*(Elem x, Elem y) { return {x.re * y.re - x.im * y.im, x.re * y.im + x.im * y.re}; }
  friend Elem operator+(Elem x, Elem y) { return {x.re + y.re, x.im + y.im}; }
  Elem conj() const { return {re, -im}; }
};

// Runs body.template operator()<Cx>() with the element kind chosen at run time.
template <class F>
void with_kind(bool complex, F&& body) {
  if (complex)
    body.template operator()<true>();
  else
    body.template operator()<false>();
}

// h[t, d] = a[t, d] h[t - 1, d] + b[t, d] for t in [t0, t1), channels [d0, d1) of one batch
// row (pointers at the batch's first row), from state s (updated in place).
template <class Real, bool Cx>
void scan_rows(Real* h, const Real* a, const Real* b, int64_t t0, int64_t t1, int64_t d0, int64_t d1, int64_t D,
               Elem<Real, Cx>* s) {
  using E = Elem<Real, Cx>;
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t r = t * D;
    for (int64_t d = d0; d < d1; ++d) {
      E x = E::load(a, r + d) * s[d - d0] + E::load(b, r + d);
      s[d - d0] = x;
      x.store(h, r + d);
    }
  }
}
}  // namespace

// ---- scan forward --------------------------------------------------------------------------

template <class Real>
void scan_forward_ref(Real* h, const Real* a, const Real* b, const Real* h0, int64_t B, int64_t T, int64_t D,
                      bool complex) {
  with_kind(complex, [&]<bool Cx>() {
    using E = Elem<Real, Cx>;
    for (int64_t i = 0; i < B; ++i)
      for (int64_t d = 0; d < D; ++d) {
        E s = h0 ? E::load(h0, i * D + d) : E{};
        for (int64_t t = 0; t < T; ++t) {
          const int64_t k = (i * T + t) * D + d;
          s = E::load(a, k) * s + E::load(b, k);
          s.store(h, k);
        }
      }
  });
}

template <class Real>
void scan_forward(Real* h, const Real* a, const Real* b, const Real* h0, int64_t B, int64_t T, int64_t D, bool complex,
                  int64_t chunk) {
  if (B * T * D == 0) return;
  const int64_t w = complex ? 2 : 1;  // reals per element
  const int64_t nb = (D + kBlockD - 1) / kBlockD;
  with_kind(complex, [&]<bool Cx>() {
    using E = Elem<Real, Cx>;
    if (chunk <= 0 || chunk >= T) {  // the loop over T
      parallel_for(B * nb, T * kBlockD * 2 * w, [&](int64_t j0, int64_t j1) {
        E s[kBlockD];
        for (int64_t j = j0; j < j1; ++j) {
          const int64_t i = j / nb, d0 = (j % nb) * kBlockD, d1 = std::min(D, d0 + kBlockD);
          for (int64_t d = d0; d < d1; ++d) s[d - d0] = h0 ? E::load(h0, i * D + d) : E{};
          const int64_t off = i * T * D * w;
          scan_rows<Real, Cx>(h + off, a + off, b + off, 0, T, d0, d1, D, s);
        }
      });
      return;
    }
    const int64_t L = chunk, nc = (T + L - 1) / L;
    // 1. local scans from zero; prod[i, c, d] = a_{t0} ... a_{t1-1} of chunk c.
    std::vector<Real> prod(size_t(B * nc * D * w)), start(prod.size());
    parallel_for(B * nc * nb, L * kBlockD * 3 * w, [&](int64_t j0, int64_t j1) {
      E s[kBlockD], p[kBlockD];
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t i = j / (nc * nb), c = (j / nb) % nc, d0 = (j % nb) * kBlockD, d1 = std::min(D, d0 + kBlockD);
        const int64_t t0 = c * L, t1 = std::min(T, t0 + L), off = i * T * D * w;
        std::fill(s, s + kBlockD, E{});
        std::fill(p, p + kBlockD, E::one());
        scan_rows<Real, Cx>(h + off, a + off, b + off, t0, t1, d0, d1, D, s);
        for (int64_t t = t0; t < t1; ++t)
          for (int64_t d = d0; d < d1; ++d) p[d - d0] = E::load(a + off, t * D + d) * p[d - d0];
        for (int64_t d = d0; d < d1; ++d) p[d - d0].store(prod.data(), (i * nc + c) * D + d);
      }
    });
    // 2. the scan over chunk boundaries: start of chunk c = prod_{c-1} start_{c-1} + local end.
    parallel_for(B * nb, nc * kBlockD * 2 * w, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t i = j / nb, d0 = (j % nb) * kBlockD, d1 = std::min(D, d0 + kBlockD);
        for (int64_t d = d0; d < d1; ++d) {
          E s = h0 ? E::load(h0, i * D + d) : E{};
          for (int64_t c = 0; c < nc; ++c) {
            const int64_t k = (i * nc + c) * D + d, t1 = std::min(T, (c + 1) * L);
            s.store(start.data(), k);
            s = E::load(prod.data(), k) * s + E::load(h, ((i * T) + t1 - 1) * D + d);
          }
        }
      }
    });
    // 3. fix-up: h_t += (a_{t0} ... a_t) start_c.
    parallel_for(B * nc * nb, L * kBlockD * 3 * w, [&](int64_t j0, int64_t j1) {
      E s[kBlockD];
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t i = j / (nc * nb), c = (j / nb) % nc, d0 = (j % nb) * kBlockD, d1 = std::min(D, d0 + kBlockD);
        if (c == 0 && !h0) continue;  // starts from zero: nothing to add
        const int64_t t0 = c * L, t1 = std::min(T, t0 + L), off = i * T * D * w;
        for (int64_t d = d0; d < d1; ++d) s[d - d0] = E::load(start.data(), (i * nc + c) * D + d);
        for (int64_t t = t0; t < t1; ++t)
          for (int64_t d = d0; d < d1; ++d) {
            const int64_t k = t * D + d;
            s[d - d0] = E::load(a + off, k) * s[d - d0];  // the start state carried to t
            (E::load(h + off, k) + s[d - d0]).store(h + off, k);
          }
      }
    });
  });
}

// ---- scan backward -------------------------------------------------------------------------

template <class Real>
void scan_backward_ref(Real* da, Real* db, Real* dh0, const Real* g, const Real* h, const Real* a, const Real* h0,
                       int64_t B, int64_t T, int64_t D, bool complex) {
  with_kind(complex, [&]<bool Cx>() {
    using E = Elem<Real, Cx>;
    for (int64_t i = 0; i < B; ++i)
      for (int64_t d = 0; d < D; ++d) {
        E dh{};  // conj(a_{t+1}) dh_{t+1}, carried down
        for (int64_t t = T - 1; t >= 0; --t) {
          const int64_t k = (i * T + t) * D + d;
          dh = E::load(g, k) + dh;
          const E prev = t > 0 ? E::load(h, k - D) : h0 ? E::load(h0, i * D + d) : E{};
          dh.store(db, k);
          (dh * prev.conj()).store(da, k);
          dh = E::load(a, k).conj() * dh;
        }
        if (dh0) dh.store(dh0, i * D + d);
      }
  });
}

template <class Real>
void scan_backward(Real* da, Real* db, Real* dh0, const Real* g, const Real* h, const Real* a, const Real* h0,
                   int64_t B, int64_t T, int64_t D, bool complex, int64_t chunk) {
  if (B * T * D == 0) return;
  const int64_t w = complex ? 2 : 1;
  const int64_t nb = (D + kBlockD - 1) / kBlockD;
  const bool chunked = chunk > 0 && chunk < T;
  const int64_t L = chunked ? chunk : T, nc = (T + L - 1) / L;
  with_kind(complex, [&]<bool Cx>() {
    using E = Elem<Real, Cx>;
    // Reverse local scans of each chunk into db: dh_t = g_t + conj(a_{t+1}) dh_{t+1}, from
    // zero after the chunk's last step. prod[c] = conj(a_{t0+1} ... a_{t1}), the factor
    // that carries dh at t1 (the next chunk's first step) back to t0.
    std::vector<Real> prod(chunked ? size_t(B * nc * D * w) : 0), start(prod.size());
    auto local = [&](int64_t i, int64_t c, int64_t d0, int64_t d1) {
      const int64_t t0 = c * L, t1 = std::min(T, t0 + L), off = i * T * D * w;
      E s[kBlockD], p[kBlockD];
      std::fill(s, s + kBlockD, E{});
      std::fill(p, p + kBlockD, E::one());
      for (int64_t t = t1 - 1; t >= t0; --t)
        for (int64_t d = d0; d < d1; ++d) {
          const int64_t k = t * D + d;
          E x = E::load(g + off, k) + s[d - d0];
          x.store(db + off, k);
          const E ac = E::load(a + off, k).conj();
          s[d - d0] = ac * x;
          if (t > t0) p[d - d0] = ac * p[d - d0];
        }
      if (chunked && t1 < T)
        for (int64_t d = d0; d < d1; ++d)
          (E::load(a + off, t1 * D + d).conj() * p[d - d0]).store(prod.data(), (i * nc + c) * D + d);
    };
    parallel_for(B * nc * nb, L * kBlockD * 3 * w, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t i = j / (nc * nb), c = (j / nb) % nc, d0 = (j % nb) * kBlockD;
        local(i, c, d0, std::min(D, d0 + kBlockD));
      }
    });
    if (chunked) {
      // The scan over chunk boundaries, from the last chunk: start[c] = dh at the first
      // step of chunk c + 1 (zero for the last chunk).
      parallel_for(B * nb, nc * kBlockD * 2 * w, [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j) {
          const int64_t i = j / nb, d0 = (j % nb) * kBlockD, d1 = std::min(D, d0 + kBlockD);
          for (int64_t d = d0; d < d1; ++d) {
            E s{};
            for (int64_t c = nc - 1; c >= 0; --c) {
              const int64_t k = (i * nc + c) * D + d;
              s.store(start.data(), k);
              if (c > 0) s = E::load(db, (i * T + c * L) * D + d) + E::load(prod.data(), k) * s;
            }
          }
        }
      });
      // Fix-up: dh_t += conj(a_{t+1} ... a_{t1}) start[c], walking down from t1 - 1.
      parallel_for(B * nc * nb, L * kBlockD * 3 * w, [&](int64_t j0, int64_t j1) {
        E s[kBlockD];
        for (int64_t j = j0; j < j1; ++j) {
          const int64_t i = j / (nc * nb), c = (j / nb) % nc, d0 = (j % nb) * kBlockD, d1 = std::min(D, d0 + kBlockD);
          const int64_t t0 = c * L, t1 = std::min(T, t0 + L), off = i * T * D * w;
          if (t1 == T) continue;
          for (int64_t d = d0; d < d1; ++d) s[d - d0] = E::load(start.data(), (i * nc + c) * D + d);
          for (int64_t t = t1 - 1; t >= t0; --t)
            for (int64_t d = d0; d < d1; ++d) {
              const int64_t k = t * D + d;
              s[d - d0] = E::load(a + off, k + D).conj() * s[d - d0];
              (E::load(db + off, k) + s[d - d0]).store(db + off, k);
            }
        }
      });
    }
    // da_t = dh_t conj(h_{t-1}); dh0 = conj(a_0) dh_0.
    parallel_for(B * T, D * 2 * w, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t i = r / T, t = r % T, k = r * D;
        for (int64_t d = 0; d < D; ++d) {
          const E prev = t > 0 ? E::load(h, k - D + d) : h0 ? E::load(h0, i * D + d) : E{};
          (E::load(db, k + d) * prev.conj()).store(da, k + d);
        }
      }
    });
    if (dh0)
      for (int64_t i = 0; i < B; ++i)
        for (int64_t d = 0; d < D; ++d)
          (E::load(a, i * T * D + d).conj() * E::load(db, i * T * D + d)).store(dh0, i * D + d);
  });
}

#define TZ_SCAN_INSTANTIATE(Real)                                                                                      \
  template void scan_forward_ref<Real>(Real*, const Real*, const Real*, const Real*, int64_t, int64_t, int64_t, bool); \
  template void scan_forward<Real>(Real*, const Real*, const Real*, const Real*, int64_t, int64_t, int64_t, bool,      \
                                   int64_t);                                                                           \
  template void scan_backward_ref<Real>(Real*, Real*, Real*, const Real*, const Real*, const Real*, const Real*,       \
                                        int64_t, int64_t, int64_t, bool);                                              \
  template void scan_backward<Real>(Real*, Real*, Real*, const Real*, const Real*, const Real*, const Real*, int64_t,  \
                                    int64_t, int64_t, bool, int64_t);
TZ_SCAN_INSTANTIATE(float)
TZ_SCAN_INSTANTIATE(double)
#undef TZ_SCAN_INSTANTIATE

}  // namespace tz::kernels
