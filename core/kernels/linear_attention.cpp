// Linear attention with decays: the recurrent, parallel (materialised) and chunked forms,
// forward and backward. Math, shapes and the factorisation guard: linear_attention.h.
#include "core/kernels/linear_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/kernels/elementwise.h"
#include "core/kernels/gemm.h"
#include "core/parallel.h"

namespace tz::kernels {

namespace {

// One block of L tokens of one head: pointers at its first row.
template <class T>
struct Block {
  const T *q, *k, *v, *g, *u;  // g null: no decay; u null: no bonus (u points at the head's row)
  int64_t L, Dk, Dv, Dg;
};

// Scratch of one thread, sized for blocks of up to C tokens.
template <class T>
struct Work {
  std::vector<T> A, dA, E, qt, kt, kh, einv, eq, ek, t1, t2, t3;
  std::vector<T> acc, dc;  // the log-decay gradient's running sums, [Dg]
  // The cumulative log-decays b, in f64 for f32 too: after a steep stretch b is large and a
  // gentle pair's difference b_t - b_s small; in f32 (ulp 6e-5 at |b| = 1000) exp of it
  // would lose 4 digits. zero is b_{-1}.
  std::vector<double> b, zero;
  std::vector<float> tmp;  // the f32 exponents of exp_rows
  bool factor = false;     // this block's per-channel A was factorised (see the guard)
  Work(int64_t C, int64_t Dk, int64_t Dg)
      : A(size_t(C * C)),
        dA(size_t(C * C)),
        E(size_t(C * C)),
        qt(size_t(C * Dk)),
        kt(size_t(C * Dk)),
        kh(size_t(C * Dk)),
        einv(size_t(C * Dk)),
        eq(size_t(C * Dg)),
        ek(size_t(C * Dg)),
        t1(size_t(C * Dk)),
        t2(size_t(C * Dk)),
        t3(size_t(C * Dk)),
        acc(size_t(Dg)),
        dc(size_t(Dg)),
        b(size_t(C * Dg)),
        zero(size_t(Dg), 0.0),
        tmp(size_t(C * std::max(C, Dk))) {}
  // c_t, the query side's log-decay row: b_t, or b_{t-1} with the bonus.
  const double* c_row(int64_t t, int64_t Dg, bool strict) const {
    if (!strict) return b.data() + t * Dg;
    return t > 0 ? b.data() + (t - 1) * Dg : zero.data();
  }
};

// y[r, j] = exp(f(r, j)) over [rows, cols] for f64 exponents f (differences of the f64 sums):
// f32 rounds each once and runs the vectorised exp of kernels::unary (AVX2 when SIMD is
// on); f64 calls std::exp. No f64 array is written: the exponents are formed in the loop.
template <class T, class F>
void exp_rows(T* y, int64_t rows, int64_t cols, std::vector<float>& tmp, F f) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      if constexpr (std::is_same_v<T, float>)
        tmp[size_t(r * cols + j)] = float(f(r, j));
      else
        y[r * cols + j] = std::exp(f(r, j));
    }
  if constexpr (std::is_same_v<T, float>) unary(UnaryOp::exp, y, tmp.data(), rows * cols);
}

// dst[t, c] = (or +=) e[t, c] * x[t, c] over [L, Dk], with e [L, Dg] (Dg = 1: one factor a row).
template <class T, bool kAdd>
void scaled(T* dst, const T* e, const T* x, int64_t L, int64_t Dk, int64_t Dg) {
  if (Dg == 1) {
    for (int64_t t = 0; t < L; ++t) {
      const T f = e[t];
      T* d = dst + t * Dk;
      const T* r = x + t * Dk;
      for (int64_t c = 0; c < Dk; ++c) d[c] = kAdd ? d[c] + f * r[c] : f * r[c];
    }
  } else {
    for (int64_t i = 0; i < L * Dk; ++i) dst[i] = kAdd ? dst[i] + e[i] * x[i] : e[i] * x[i];
  }
}

// sum_i a[i] b[i] in eight independent partial sums (the compiler keeps them in one vector).
template <class T>
T dot(const T* a, const T* b, int64_t n) {
  T p[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) p[l] += a[i + l] * b[i + l];
  for (; i < n; ++i) p[0] += a[i] * b[i];
  return ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7]));
}

// Zeroes the pairs A does not use: s > t (s >= t with the bonus).
template <class T>
void zero_unused(T* A, int64_t L, bool strict) {
  for (int64_t t = 0; t < L; ++t) std::fill(A + t * L + t + (strict ? 0 : 1), A + (t + 1) * L, T(0));
}

// Whether A uses the pair (query t, key s): s <= t, or s < t with the bonus.
inline bool used(int64_t t, int64_t s, bool strict) { return strict ? s < t : s <= t; }

// The block's cumulative log-decays b (inclusive; c, the query side's, is b or b shifted by
// a row: Work::c_row), ek = exp(b_L - b), kh = k * exp(b_L - b); with need_A, also
// eq = exp(c), qt = q * exp(c) and A [L, L] (zero on unused pairs). Every exponent here is
// <= 0 but the guarded exp(-b).
template <class T>
void prepare(Work<T>& w, const Block<T>& x, bool allow_factor, bool need_A) {
  const int64_t L = x.L, Dk = x.Dk, Dg = x.Dg;
  const bool strict = x.u != nullptr;
  double* b = w.b.data();
  for (int64_t t = 0; t < L; ++t) {  // b_t = b_{t-1} + g_t, row by row (b_{-1} = 0)
    const double* prev = t > 0 ? b + (t - 1) * Dg : w.zero.data();
    for (int64_t d = 0; d < Dg; ++d) b[t * Dg + d] = prev[d] + (x.g ? double(x.g[t * Dg + d]) : 0.0);
  }
  const double* bL = b + (L - 1) * Dg;
  exp_rows(w.ek.data(), L, Dg, w.tmp, [&](int64_t t, int64_t d) { return bL[d] - b[t * Dg + d]; });
  scaled<T, false>(w.kh.data(), w.ek.data(), x.k, L, Dk, Dg);
  if (!need_A) return;  // a state-only sweep needs kh alone
  exp_rows(w.eq.data(), L, Dg, w.tmp, [&](int64_t t, int64_t d) { return w.c_row(t, Dg, strict)[d]; });
  scaled<T, false>(w.qt.data(), w.eq.data(), x.q, L, Dk, Dg);
  T* A = w.A.data();
  w.factor = false;
  if (Dg == 1) {  // one decay per step: A = (q k^T) * E, E_ts = exp(c_t - b_s) (kept for the backward)
    gemm_rows(A, L, x.q, Dk, false, x.k, Dk, true, L, L, Dk, T(1), T(0));
    for (int64_t t = 0; t < L; ++t) {  // row t uses the keys s < n: exp of the used pairs only
      const int64_t n = strict ? t : t + 1;
      const double ct = w.c_row(t, 1, strict)[0];
      T* e = w.E.data() + t * L;
      exp_rows(e, 1, n, w.tmp, [&](int64_t, int64_t s) { return ct - b[s]; });
      std::fill(e + n, e + L, T(0));
      for (int64_t s = 0; s < L; ++s) A[t * L + s] *= e[s];
    }
    zero_unused(A, L, strict);  // 0 * inf or NaN in q k^T stays out of the unused pairs
    return;
  }
  double lo = 0;
  for (int64_t d = 0; d < Dk; ++d) lo = std::min(lo, bL[d]);
  w.factor = allow_factor && -lo <= kFactorGuard;
  if (w.factor) {  // A = (q * exp(c)) (k * exp(-b))^T; exp(-b) <= exp(kFactorGuard)
    exp_rows(w.einv.data(), L, Dk, w.tmp, [&](int64_t t, int64_t d) { return -b[t * Dk + d]; });
    for (int64_t i = 0; i < L * Dk; ++i) w.kt[size_t(i)] = x.k[i] * w.einv[size_t(i)];
    gemm_rows(A, L, w.qt.data(), Dk, false, w.kt.data(), Dk, true, L, L, Dk, T(1), T(0));
    zero_unused(A, L, strict);
    return;
  }
  // steep (or materialised): every exp(c_td - b_sd) formed directly
  for (int64_t t = 0; t < L; ++t) {
    const double* ct = w.c_row(t, Dk, strict);
    for (int64_t s = 0; s < L; ++s) {
      T a = 0;
      if (used(t, s, strict))
        for (int64_t d = 0; d < Dk; ++d) a += x.q[t * Dk + d] * x.k[s * Dk + d] * T(std::exp(ct[d] - b[s * Dk + d]));
      A[t * L + s] = a;
    }
  }
}

// Scales row d of a [Dk, Dv] matrix by exp(b_L) (one factor for all rows when Dg = 1).
template <class T>
void scale_rows_by_decay(T* M, const Work<T>& w, const Block<T>& x) {
  const double* bL = w.b.data() + (x.L - 1) * x.Dg;
  for (int64_t d = 0; d < x.Dk; ++d) {
    const T e = T(std::exp(bL[x.Dg == 1 ? 0 : d]));
    for (int64_t j = 0; j < x.Dv; ++j) M[d * x.Dv + j] *= e;
  }
}

// sum_d q_td u_d k_td: the bonus weight of token t on its own value.
template <class T>
T bonus_weight(const Block<T>& x, int64_t t) {
  T s = 0;
  for (int64_t d = 0; d < x.Dk; ++d) s += x.q[t * x.Dk + d] * x.u[d] * x.k[t * x.Dk + d];
  return s;
}

// One block forward from state S (updated in place to the block's final state); o [L, Dv]
// is written unless null (a state-only sweep).
template <class T>
void block_forward(T* o, T* S, Work<T>& w, const Block<T>& x, bool allow_factor) {
  const int64_t L = x.L, Dk = x.Dk, Dv = x.Dv;
  prepare(w, x, allow_factor, o != nullptr);
  if (o) {
    gemm_rows(o, Dv, w.A.data(), L, false, x.v, Dv, false, L, Dv, L, T(1), T(0));  // term 1: within the block, A v
    gemm_rows(o, Dv, w.qt.data(), Dk, false, S, Dv, false, L, Dv, Dk, T(1),
              T(1));  // term 2: the state, (q * exp(c)) S_0
    if (x.u)          // term 3: the bonus on the token itself
      for (int64_t t = 0; t < L; ++t) {
        const T wt = bonus_weight(x, t);
        for (int64_t j = 0; j < Dv; ++j) o[t * Dv + j] += wt * x.v[t * Dv + j];
      }
  }
  scale_rows_by_decay(S, w, x);                                                    // S = diag(exp(b_L)) S_0
  gemm_rows(S, Dv, w.kh.data(), Dk, true, x.v, Dv, false, Dk, Dv, L, T(1), T(1));  //   + (k * exp(b_L - b))^T v
}

// Gradient pointers of one block (at its first row; du of this (b, h), dg may be null).
template <class T>
struct BlockGrads {
  T *dq, *dk, *dv, *dg, *du;
};

// One block backward. dS: in, the gradient of the state after the block (S_L); out, of the
// state before it (S_0). Formulas: linear_attention.h.
template <class T>
void block_backward(const BlockGrads<T>& d, const T* dO, T* dS, const T* S0, const T* SL, Work<T>& w, const Block<T>& x,
                    bool allow_factor) {
  const int64_t L = x.L, Dk = x.Dk, Dv = x.Dv, Dg = x.Dg;
  const bool strict = x.u != nullptr;
  prepare(w, x, allow_factor, true);
  T *dA = w.dA.data(), *dq = w.t1.data(), *dk = w.t2.data(), *tmp = w.t3.data();
  gemm_rows(dA, L, dO, Dv, false, x.v, Dv, true, L, L, Dv, T(1), T(0));  // dA_ts = dO_t . v_s
  zero_unused(dA, L, strict);
  gemm_rows(d.dv, Dv, w.A.data(), L, true, dO, Dv, false, L, Dv, L, T(1), T(0));      // dv = A^T dO
  gemm_rows(d.dv, Dv, w.kh.data(), Dk, false, dS, Dv, false, L, Dv, Dk, T(1), T(1));  //  + (k * exp(b_L - b)) dS_L
  // dq', dk' within the block
  if (Dg == 1) {  // dA * exp(c_t - b_s), then two products
    for (int64_t i = 0; i < L * L; ++i) dA[i] *= w.E[size_t(i)];
    gemm_rows(dq, Dk, dA, L, false, x.k, Dk, false, L, Dk, L, T(1), T(0));
    gemm_rows(dk, Dk, dA, L, true, x.q, Dk, false, L, Dk, L, T(1), T(0));
  } else if (w.factor) {  // exp(c) * (dA (k * exp(-b))), exp(-b) * (dA^T (q * exp(c)))
    gemm_rows(dq, Dk, dA, L, false, w.kt.data(), Dk, false, L, Dk, L, T(1), T(0));
    gemm_rows(dk, Dk, dA, L, true, w.qt.data(), Dk, false, L, Dk, L, T(1), T(0));
    for (int64_t i = 0; i < L * Dk; ++i) {
      dq[i] *= w.eq[size_t(i)];
      dk[i] *= w.einv[size_t(i)];
    }
  } else {
    std::fill(dq, dq + L * Dk, T(0));
    std::fill(dk, dk + L * Dk, T(0));
    for (int64_t t = 0; t < L; ++t) {
      const double* ct = w.c_row(t, Dk, strict);
      for (int64_t s = 0; s < L; ++s) {
        const T a = dA[t * L + s];
        if (a == 0) continue;
        for (int64_t c = 0; c < Dk; ++c) {
          const T e = a * T(std::exp(ct[c] - w.b[size_t(s * Dk + c)]));
          dq[t * Dk + c] += e * x.k[s * Dk + c];
          dk[s * Dk + c] += e * x.q[t * Dk + c];
        }
      }
    }
  }
  // dq' += exp(c) * (dO S_0^T);  dk' += exp(b_L - b) * (v dS_L^T)
  gemm_rows(tmp, Dk, dO, Dv, false, S0, Dv, true, L, Dk, Dv, T(1), T(0));
  scaled<T, true>(dq, w.eq.data(), tmp, L, Dk, Dg);
  gemm_rows(tmp, Dk, x.v, Dv, false, dS, Dv, true, L, Dk, Dv, T(1), T(0));
  scaled<T, true>(dk, w.ek.data(), tmp, L, Dk, Dg);
  // log-decays: d c = q dq', d b = -k dk', d b_L += <dS_L, S_L> per row; then the sums over t
  if (d.dg) {
    T* acc = w.acc.data();  // the running sum over t' >= t, one per decay (channel)
    T* dc = w.dc.data();
    for (int64_t c = 0; c < Dk; ++c) {
      const T s = dot(dS + c * Dv, SL + c * Dv, Dv);
      if (Dg == 1)
        acc[0] = c == 0 ? s : acc[0] + s;
      else
        acc[c] = s;
    }
    for (int64_t t = L - 1; t >= 0; --t) {
      const T *qt = x.q + t * Dk, *kt = x.k + t * Dk, *dqt = dq + t * Dk, *dkt = dk + t * Dk;
      if (Dg == 1) {
        dc[0] = dot(qt, dqt, Dk);
        acc[0] -= dot(kt, dkt, Dk);
      } else {
        for (int64_t c = 0; c < Dk; ++c) {
          dc[c] = qt[c] * dqt[c];
          acc[c] -= kt[c] * dkt[c];
        }
      }
      T* dg = d.dg + t * Dg;
      if (strict) {  // c_t = b_{t-1}: reaches g_r for r < t only
        for (int64_t e = 0; e < Dg; ++e) {
          dg[e] = acc[e];
          acc[e] += dc[e];
        }
      } else {
        for (int64_t e = 0; e < Dg; ++e) {
          acc[e] += dc[e];
          dg[e] = acc[e];
        }
      }
    }
  }
  if (x.u)  // the bonus term
    for (int64_t t = 0; t < L; ++t) {
      T y = 0;
      for (int64_t j = 0; j < Dv; ++j) y += dO[t * Dv + j] * x.v[t * Dv + j];
      const T wt = bonus_weight(x, t);
      for (int64_t j = 0; j < Dv; ++j) d.dv[t * Dv + j] += wt * dO[t * Dv + j];
      for (int64_t c = 0; c < Dk; ++c) {
        dq[t * Dk + c] += x.u[c] * x.k[t * Dk + c] * y;
        dk[t * Dk + c] += x.u[c] * x.q[t * Dk + c] * y;
        d.du[c] += x.q[t * Dk + c] * x.k[t * Dk + c] * y;
      }
    }
  std::copy(dq, dq + L * Dk, d.dq);
  std::copy(dk, dk + L * Dk, d.dk);
  scale_rows_by_decay(dS, w, x);                                                   // dS_0 = diag(exp(b_L)) dS_L
  gemm_rows(dS, Dv, w.qt.data(), Dk, true, dO, Dv, false, Dk, Dv, L, T(1), T(1));  //   + (q * exp(c))^T dO
}

int64_t decay_width(const LinAttnSizes& n) { return n.channel_decay ? n.Dk : 1; }

// Head i = b * H + h of the inputs, block [t0, t0 + L).
template <class T>
Block<T> block_of(const LinAttnInputs<T>& in, const LinAttnSizes& n, int64_t i, int64_t t0, int64_t L) {
  const int64_t Dg = decay_width(n);
  return {.q = in.q + (i * n.T + t0) * n.Dk,
          .k = in.k + (i * n.T + t0) * n.Dk,
          .v = in.v + (i * n.T + t0) * n.Dv,
          .g = in.g ? in.g + (i * n.T + t0) * Dg : nullptr,
          .u = in.u ? in.u + (i % n.H) * n.Dk : nullptr,
          .L = L,
          .Dk = n.Dk,
          .Dv = n.Dv,
          .Dg = Dg};
}

template <class T>
void start_state(T* S, const LinAttnInputs<T>& in, const LinAttnSizes& n, int64_t i) {
  const int64_t N = n.Dk * n.Dv;
  if (in.h0)
    std::copy(in.h0 + i * N, in.h0 + (i + 1) * N, S);
  else
    std::fill(S, S + N, T(0));
}

void check_sizes(const LinAttnSizes& n, int64_t chunk, const char* op) {
  TZ_CHECK(n.B >= 0 && n.H >= 0 && n.T >= 0 && n.Dk > 0 && n.Dv > 0, op, ": sizes must be >= 0 (Dk, Dv > 0), got B ",
           n.B, " H ", n.H, " T ", n.T, " Dk ", n.Dk, " Dv ", n.Dv);
  TZ_CHECK(chunk >= 1, op, ": chunk must be >= 1, got ", chunk);
}

// The blocked forward over every head: chunks of C (the parallel form: C = T, unfactorised).
// starts (may be null): each block's start state and the final one, [B * H, nc + 1, Dk, Dv].
template <class T>
void blocked_forward(T* out, T* state, T* starts, const LinAttnInputs<T>& in, const LinAttnSizes& n, int64_t chunk,
                     bool allow_factor) {
  const int64_t C = std::max<int64_t>(1, std::min(chunk, n.T)), N = n.Dk * n.Dv, nc = (n.T + C - 1) / C;
  parallel_for(n.B * n.H, n.T * (C * (n.Dk + n.Dv) + n.Dk * n.Dv) * 2, [&](int64_t i0, int64_t i1) {
    Work<T> w(C, n.Dk, decay_width(n));
    for (int64_t i = i0; i < i1; ++i) {
      T* S = state + i * N;
      T* kept = starts ? starts + i * (nc + 1) * N : nullptr;
      start_state(S, in, n, i);
      for (int64_t c = 0; c < nc; ++c) {
        const int64_t t0 = c * C, L = std::min(C, n.T - t0);
        if (kept) std::copy(S, S + N, kept + c * N);
        block_forward(out + (i * n.T + t0) * n.Dv, S, w, block_of(in, n, i, t0, L), allow_factor);
      }
      if (kept) std::copy(S, S + N, kept + nc * N);
    }
  });
}

// du is shared by the B batch rows of a head: each (b, h) sums into its own row of `rows`
// [B * H, Dk], added up after the parallel loop (deterministic, no race).
template <class T>
void write_du(T* du, const std::vector<T>& rows, const LinAttnSizes& n) {
  std::fill(du, du + n.H * n.Dk, T(0));
  for (int64_t i = 0; i < n.B * n.H; ++i)
    for (int64_t c = 0; c < n.Dk; ++c) du[(i % n.H) * n.Dk + c] += rows[size_t(i * n.Dk + c)];
}

// starts (may be null): blocked_forward's kept states, read instead of recomputed.
template <class T>
void blocked_backward(const LinAttnGrads<T>& d, const T* dout, const T* dstate, const T* starts,
                      const LinAttnInputs<T>& in, const LinAttnSizes& n, int64_t chunk, bool allow_factor) {
  const int64_t C = std::max<int64_t>(1, std::min(chunk, n.T)), N = n.Dk * n.Dv, Dg = decay_width(n);
  const int64_t nc = (n.T + C - 1) / C;
  std::vector<T> du_rows(in.u ? size_t(n.B * n.H * n.Dk) : 0, T(0));
  parallel_for(n.B * n.H, n.T * (C * (n.Dk + n.Dv) + n.Dk * n.Dv) * 6, [&](int64_t i0, int64_t i1) {
    Work<T> w(C, n.Dk, Dg);
    std::vector<T> sweep(starts ? 0 : size_t((nc + 1) * N)), dS(static_cast<size_t>(N));
    for (int64_t i = i0; i < i1; ++i) {
      const T* states = starts ? starts + i * (nc + 1) * N : sweep.data();
      if (!starts) {  // sweep 1: the state at each block start
        start_state(sweep.data(), in, n, i);
        for (int64_t c = 0; c < nc; ++c) {
          const int64_t t0 = c * C, L = std::min(C, n.T - t0);
          std::copy(sweep.begin() + c * N, sweep.begin() + (c + 1) * N, sweep.begin() + (c + 1) * N);
          block_forward<T>(nullptr, sweep.data() + (c + 1) * N, w, block_of(in, n, i, t0, L), allow_factor);
        }
      }
      if (dstate)
        std::copy(dstate + i * N, dstate + (i + 1) * N, dS.begin());
      else
        std::fill(dS.begin(), dS.end(), T(0));
      for (int64_t c = nc - 1; c >= 0; --c) {  // sweep 2: blocks in reverse
        const int64_t t0 = c * C, L = std::min(C, n.T - t0);
        BlockGrads<T> g{.dq = d.dq + (i * n.T + t0) * n.Dk,
                        .dk = d.dk + (i * n.T + t0) * n.Dk,
                        .dv = d.dv + (i * n.T + t0) * n.Dv,
                        .dg = in.g && d.dg ? d.dg + (i * n.T + t0) * Dg : nullptr,
                        .du = in.u ? du_rows.data() + i * n.Dk : nullptr};
        block_backward(g, dout + (i * n.T + t0) * n.Dv, dS.data(), states + c * N, states + (c + 1) * N, w,
                       block_of(in, n, i, t0, L), allow_factor);
      }
      if (d.dh0) std::copy(dS.begin(), dS.end(), d.dh0 + i * N);
    }
  });
  if (in.u && d.du) write_du(d.du, du_rows, n);
}

// The per-step decay factor of key channel c at step t of head i.
template <class T>
T decay_at(const LinAttnInputs<T>& in, const LinAttnSizes& n, int64_t i, int64_t t, int64_t c) {
  if (!in.g) return T(1);
  return n.channel_decay ? std::exp(in.g[(i * n.T + t) * n.Dk + c]) : std::exp(in.g[i * n.T + t]);
}

}  // namespace

// ---- recurrent: the reference loop and the decode step ----------------------------------
template <class T>
void linear_attention_recurrent(T* out, T* state, const LinAttnInputs<T>& in, const LinAttnSizes& n) {
  check_sizes(n, 1, "linear_attention_recurrent");
  const int64_t Dk = n.Dk, Dv = n.Dv;
  parallel_for(n.B * n.H, n.T * Dk * Dv * 3, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      T* S = state + i * Dk * Dv;
      start_state(S, in, n, i);
      const T* u = in.u ? in.u + (i % n.H) * Dk : nullptr;
      for (int64_t t = 0; t < n.T; ++t) {
        const T *q = in.q + (i * n.T + t) * Dk, *k = in.k + (i * n.T + t) * Dk, *v = in.v + (i * n.T + t) * Dv;
        T* o = out + (i * n.T + t) * Dv;
        std::fill(o, o + Dv, T(0));
        if (u)  // o_t = q_t (S_{t-1} + diag(u) k_t^T v_t)
          for (int64_t c = 0; c < Dk; ++c)
            for (int64_t j = 0; j < Dv; ++j) o[j] += q[c] * (S[c * Dv + j] + u[c] * k[c] * v[j]);
        for (int64_t c = 0; c < Dk; ++c) {  // S_t = diag(a_t) S_{t-1} + k_t^T v_t
          const T a = decay_at(in, n, i, t, c);
          for (int64_t j = 0; j < Dv; ++j) S[c * Dv + j] = a * S[c * Dv + j] + k[c] * v[j];
        }
        if (!u)  // o_t = q_t S_t
          for (int64_t c = 0; c < Dk; ++c)
            for (int64_t j = 0; j < Dv; ++j) o[j] += q[c] * S[c * Dv + j];
      }
    }
  });
}

// Reverse loop over the stored states S_0 .. S_T of one head at a time.
template <class T>
void linear_attention_recurrent_backward(const LinAttnGrads<T>& d, const T* dout, const T* dstate,
                                         const LinAttnInputs<T>& in, const LinAttnSizes& n) {
  check_sizes(n, 1, "linear_attention_recurrent_backward");
  const int64_t Dk = n.Dk, Dv = n.Dv, N = Dk * Dv, Dg = decay_width(n);
  std::vector<T> du_rows(in.u ? size_t(n.B * n.H * Dk) : 0, T(0));
  parallel_for(n.B * n.H, n.T * N * 8, [&](int64_t i0, int64_t i1) {
    std::vector<T> states(size_t((n.T + 1) * N)), dS(static_cast<size_t>(N));
    for (int64_t i = i0; i < i1; ++i) {
      start_state(states.data(), in, n, i);
      for (int64_t t = 0; t < n.T; ++t) {  // the states, by the forward loop's own update
        const T *k = in.k + (i * n.T + t) * Dk, *v = in.v + (i * n.T + t) * Dv;
        const T* Sp = states.data() + t * N;
        T* St = states.data() + (t + 1) * N;
        for (int64_t c = 0; c < Dk; ++c) {
          const T a = decay_at(in, n, i, t, c);
          for (int64_t j = 0; j < Dv; ++j) St[c * Dv + j] = a * Sp[c * Dv + j] + k[c] * v[j];
        }
      }
      if (dstate)
        std::copy(dstate + i * N, dstate + (i + 1) * N, dS.begin());
      else
        std::fill(dS.begin(), dS.end(), T(0));
      const T* u = in.u ? in.u + (i % n.H) * Dk : nullptr;
      std::fill(d.dq + i * n.T * Dk, d.dq + (i + 1) * n.T * Dk, T(0));  // the loop below accumulates
      std::fill(d.dk + i * n.T * Dk, d.dk + (i + 1) * n.T * Dk, T(0));
      std::fill(d.dv + i * n.T * Dv, d.dv + (i + 1) * n.T * Dv, T(0));
      if (in.g && d.dg) std::fill(d.dg + i * n.T * Dg, d.dg + (i + 1) * n.T * Dg, T(0));
      for (int64_t t = n.T - 1; t >= 0; --t) {
        const int64_t r = i * n.T + t;
        const T *q = in.q + r * Dk, *k = in.k + r * Dk, *v = in.v + r * Dv, *dO = dout + r * Dv;
        const T *Sp = states.data() + t * N, *St = Sp + N;
        T *dq = d.dq + r * Dk, *dk = d.dk + r * Dk, *dv = d.dv + r * Dv;
        if (!u)  // o_t = q_t S_t
          for (int64_t c = 0; c < Dk; ++c)
            for (int64_t j = 0; j < Dv; ++j) {
              dS[size_t(c * Dv + j)] += q[c] * dO[j];
              dq[c] += St[c * Dv + j] * dO[j];
            }
        for (int64_t c = 0; c < Dk; ++c) {  // S_t = diag(a_t) S_{t-1} + k_t^T v_t
          const T a = decay_at(in, n, i, t, c);
          T ga = 0;
          for (int64_t j = 0; j < Dv; ++j) {
            const T ds = dS[size_t(c * Dv + j)];
            dk[c] += ds * v[j];
            dv[j] += ds * k[c];
            ga += ds * Sp[c * Dv + j];
            dS[size_t(c * Dv + j)] = a * ds;
          }
          if (in.g && d.dg) d.dg[r * Dg + (Dg == 1 ? 0 : c)] += a * ga;
        }
        if (u) {  // o_t = q_t (S_{t-1} + diag(u) k_t^T v_t)
          T y = 0, wt = 0;
          for (int64_t j = 0; j < Dv; ++j) y += dO[j] * v[j];
          for (int64_t c = 0; c < Dk; ++c) wt += q[c] * u[c] * k[c];
          for (int64_t j = 0; j < Dv; ++j) dv[j] += wt * dO[j];
          for (int64_t c = 0; c < Dk; ++c) {
            for (int64_t j = 0; j < Dv; ++j) {
              dq[c] += Sp[c * Dv + j] * dO[j];
              dS[size_t(c * Dv + j)] += q[c] * dO[j];
            }
            dq[c] += u[c] * k[c] * y;
            dk[c] += u[c] * q[c] * y;
            du_rows[size_t(i * Dk + c)] += q[c] * k[c] * y;
          }
        }
      }
      if (d.dh0) std::copy(dS.begin(), dS.end(), d.dh0 + i * N);
    }
  });
  if (in.u && d.du) write_du(d.du, du_rows, n);
}

// ---- parallel: the materialised T x T form (one block of all T, exps formed pairwise) ----
template <class T>
void linear_attention_parallel(T* out, T* state, const LinAttnInputs<T>& in, const LinAttnSizes& n) {
  check_sizes(n, 1, "linear_attention_parallel");
  blocked_forward<T>(out, state, nullptr, in, n, std::max<int64_t>(n.T, 1), false);
}
template <class T>
void linear_attention_parallel_backward(const LinAttnGrads<T>& d, const T* dout, const T* dstate,
                                        const LinAttnInputs<T>& in, const LinAttnSizes& n) {
  check_sizes(n, 1, "linear_attention_parallel_backward");
  blocked_backward<T>(d, dout, dstate, nullptr, in, n, std::max<int64_t>(n.T, 1), false);
}

// ---- chunked: blocks of C, per-channel blocks factorised under the guard ---------------
int64_t linear_attention_starts_size(const LinAttnSizes& n, int64_t chunk) {
  const int64_t C = std::max<int64_t>(1, std::min(chunk, n.T));
  return n.B * n.H * ((n.T + C - 1) / C + 1) * n.Dk * n.Dv;
}
template <class T>
void linear_attention_chunked(T* out, T* state, const LinAttnInputs<T>& in, const LinAttnSizes& n, int64_t chunk,
                              T* starts) {
  check_sizes(n, chunk, "linear_attention_chunked");
  blocked_forward(out, state, starts, in, n, chunk, true);
}
template <class T>
void linear_attention_chunked_backward(const LinAttnGrads<T>& d, const T* dout, const T* dstate,
                                       const LinAttnInputs<T>& in, const LinAttnSizes& n, int64_t chunk,
                                       const T* starts) {
  check_sizes(n, chunk, "linear_attention_chunked_backward");
  blocked_backward(d, dout, dstate, starts, in, n, chunk, true);
}

#define TZ_LINATTN_INSTANTIATE(T)                                                                               \
  template void linear_attention_recurrent<T>(T*, T*, const LinAttnInputs<T>&, const LinAttnSizes&);            \
  template void linear_attention_parallel<T>(T*, T*, const LinAttnInputs<T>&, const LinAttnSizes&);             \
  template void linear_attention_chunked<T>(T*, T*, const LinAttnInputs<T>&, const LinAttnSizes&, int64_t, T*); \
  template void linear_attention_recurrent_backward<T>(const LinAttnGrads<T>&, const T*, const T*,              \
                                                       const LinAttnInputs<T>&, const LinAttnSizes&);           \
  template void linear_attention_parallel_backward<T>(const LinAttnGrads<T>&, const T*, const T*,               \
                                                      const LinAttnInputs<T>&, const LinAttnSizes&);            \
  template void linear_attention_chunked_backward<T>(const LinAttnGrads<T>&, const T*, const T*,                \
                                                     const LinAttnInputs<T>&, const LinAttnSizes&, int64_t, const T*);
TZ_LINATTN_INSTANTIATE(float)
TZ_LINATTN_INSTANTIATE(double)
#undef TZ_LINATTN_INSTANTIATE

}  // namespace tz::kernels
