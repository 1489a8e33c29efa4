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
  // The cumulative log-decays, in f64 for f32 too: after a steep stretch b is large and a
  // gentle pair's difference b_t - b_s small; in f32 (ulp 6e-5 at |b| = 1000) exp of it
  // would lose 4 digits.
  std::vector<double> bq, bk, arg;
  std::vector<float> tmp;  // exp_into's f32 arguments
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
        bq(size_t(C * Dg)),
        bk(size_t(C * Dg)),
        arg(size_t(C * std::max(C, Dk))),
        tmp(arg.size()) {}
};

// y[i] = exp(x[i]) for the f64 arguments x (differences of the f64 sums): f32 through the
// vectorised exp of kernels::unary (AVX2 when SIMD is on), f64 through std::exp.
template <class T>
void exp_into(T* y, const double* x, int64_t n, std::vector<float>& tmp) {
  if constexpr (std::is_same_v<T, float>) {
    for (int64_t i = 0; i < n; ++i) tmp[size_t(i)] = float(x[i]);
    unary(UnaryOp::exp, y, tmp.data(), n);
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
  }
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

// Zeroes the pairs A does not use: s > t (s >= t with the bonus).
template <class T>
void zero_unused(T* A, int64_t L, bool strict) {
  for (int64_t t = 0; t < L; ++t) std::fill(A + t * L + t + (strict ? 0 : 1), A + (t + 1) * L, T(0));
}

// Whether A uses the pair (query t, key s): s <= t, or s < t with the bonus.
inline bool used(int64_t t, int64_t s, bool strict) { return strict ? s < t : s <= t; }

// The block's cumulative log-decays b (inclusive) and c (query side), eq = exp(c),
// ek = exp(b_L - b), qt = q * exp(c), kh = k * exp(b_L - b); with need_A, also A [L, L]
// (zero on unused pairs). Every exponent here is <= 0 but the guarded exp(-b).
template <class T>
void prepare(Work<T>& w, const Block<T>& x, bool allow_factor, bool need_A) {
  const int64_t L = x.L, Dk = x.Dk, Dg = x.Dg;
  const bool strict = x.u != nullptr;
  for (int64_t t = 0; t < L; ++t) {  // b_t = b_{t-1} + g_t, row by row (b_{-1} = 0)
    const double* prev = t > 0 ? w.bk.data() + (t - 1) * Dg : nullptr;
    double* bk = w.bk.data() + t * Dg;
    double* bq = w.bq.data() + t * Dg;
    for (int64_t d = 0; d < Dg; ++d) {
      const double p = prev ? prev[d] : 0.0;
      bk[d] = p + (x.g ? double(x.g[t * Dg + d]) : 0.0);
      bq[d] = strict ? p : bk[d];
    }
  }
  const double* bL = w.bk.data() + (L - 1) * Dg;
  exp_into(w.eq.data(), w.bq.data(), L * Dg, w.tmp);
  for (int64_t t = 0; t < L; ++t)
    for (int64_t d = 0; d < Dg; ++d) w.arg[size_t(t * Dg + d)] = bL[d] - w.bk[size_t(t * Dg + d)];
  exp_into(w.ek.data(), w.arg.data(), L * Dg, w.tmp);
  scaled<T, false>(w.kh.data(), w.ek.data(), x.k, L, Dk, Dg);
  if (!need_A) return;  // a state-only sweep needs kh alone
  scaled<T, false>(w.qt.data(), w.eq.data(), x.q, L, Dk, Dg);
  T* A = w.A.data();
  w.factor = false;
  if (Dg == 1) {  // one decay per step: A = (q k^T) * E, E_ts = exp(c_t - b_s) (kept for the backward)
    gemm_rows(A, L, x.q, Dk, false, x.k, Dk, true, L, L, Dk, T(1), T(0));
    for (int64_t t = 0; t < L; ++t)
      for (int64_t s = 0; s < L; ++s)
        w.arg[size_t(t * L + s)] = used(t, s, strict) ? w.bq[size_t(t)] - w.bk[size_t(s)] : 0;
    exp_into(w.E.data(), w.arg.data(), L * L, w.tmp);
    for (int64_t i = 0; i < L * L; ++i) A[i] *= w.E[size_t(i)];
    zero_unused(A, L, strict);
    return;
  }
  double lo = 0;
  for (int64_t d = 0; d < Dk; ++d) lo = std::min(lo, bL[d]);
  w.factor = allow_factor && -lo <= kFactorGuard;
  if (w.factor) {  // A = (q * exp(c)) (k * exp(-b))^T; exp(-b) <= exp(kFactorGuard)
    for (int64_t i = 0; i < L * Dk; ++i) w.arg[size_t(i)] = -w.bk[size_t(i)];
    exp_into(w.einv.data(), w.arg.data(), L * Dk, w.tmp);
    for (int64_t i = 0; i < L * Dk; ++i) w.kt[size_t(i)] = x.k[i] * w.einv[size_t(i)];
    gemm_rows(A, L, w.qt.data(), Dk, false, w.kt.data(), Dk, true, L, L, Dk, T(1), T(0));
    zero_unused(A, L, strict);
    return;
  }
  // steep (or materialised): every exp(c_td - b_sd) formed directly
  for (int64_t t = 0; t < L; ++t)
    for (int64_t s = 0; s < L; ++s) {
      T a = 0;
      if (used(t, s, strict))
        for (int64_t d = 0; d < Dk; ++d)
          a += x.q[t * Dk + d] * x.k[s * Dk + d] * T(std::exp(w.bq[size_t(t * Dk + d)] - w.bk[size_t(s * Dk + d)]));
      A[t * L + s] = a;
    }
}

// Scales row d of a [Dk, Dv] matrix by exp(b_L) (one factor for all rows when Dg = 1).
template <class T>
void scale_rows_by_decay(T* M, const Work<T>& w, const Block<T>& x) {
  const double* bL = w.bk.data() + (x.L - 1) * x.Dg;
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
  gemm_rows(d.dv, Dv, w.A.data(), L, true, dO, Dv, false, L, Dv, L, T(1), T(1));      // dv += A^T dO
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
    for (int64_t t = 0; t < L; ++t)
      for (int64_t s = 0; s < L; ++s) {
        const T a = dA[t * L + s];
        if (a == 0) continue;
        for (int64_t c = 0; c < Dk; ++c) {
          const T e = a * T(std::exp(w.bq[size_t(t * Dk + c)] - w.bk[size_t(s * Dk + c)]));
          dq[t * Dk + c] += e * x.k[s * Dk + c];
          dk[s * Dk + c] += e * x.q[t * Dk + c];
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
    std::vector<T> acc(static_cast<size_t>(Dg), T(0)), dc(static_cast<size_t>(Dg));
    for (int64_t c = 0; c < Dk; ++c)
      for (int64_t j = 0; j < Dv; ++j) acc[size_t(Dg == 1 ? 0 : c)] += dS[c * Dv + j] * SL[c * Dv + j];
    for (int64_t t = L - 1; t >= 0; --t) {
      std::fill(dc.begin(), dc.end(), T(0));
      for (int64_t c = 0; c < Dk; ++c) {
        const size_t e = size_t(Dg == 1 ? 0 : c);
        dc[e] += x.q[t * Dk + c] * dq[t * Dk + c];
        acc[e] -= x.k[t * Dk + c] * dk[t * Dk + c];
      }
      for (int64_t e = 0; e < Dg; ++e) {
        if (!strict) acc[size_t(e)] += dc[size_t(e)];
        d.dg[t * Dg + e] += acc[size_t(e)];
        if (strict) acc[size_t(e)] += dc[size_t(e)];  // c_t = b_{t-1}: reaches g_r for r < t only
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
  for (int64_t i = 0; i < L * Dk; ++i) {
    d.dq[i] += dq[i];
    d.dk[i] += dk[i];
  }
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
template <class T>
void blocked_forward(T* out, T* state, const LinAttnInputs<T>& in, const LinAttnSizes& n, int64_t chunk,
                     bool allow_factor) {
  const int64_t C = std::max<int64_t>(1, std::min(chunk, n.T));
  parallel_for(n.B * n.H, n.T * (C * (n.Dk + n.Dv) + n.Dk * n.Dv) * 2, [&](int64_t i0, int64_t i1) {
    Work<T> w(C, n.Dk, decay_width(n));
    for (int64_t i = i0; i < i1; ++i) {
      T* S = state + i * n.Dk * n.Dv;
      start_state(S, in, n, i);
      for (int64_t t0 = 0; t0 < n.T; t0 += C) {
        const int64_t L = std::min(C, n.T - t0);
        block_forward(out + (i * n.T + t0) * n.Dv, S, w, block_of(in, n, i, t0, L), allow_factor);
      }
    }
  });
}

// du is shared by the B batch rows of a head: each (b, h) sums into its own row of `rows`
// [B * H, Dk], added up after the parallel loop (deterministic, no race).
template <class T>
void add_du_rows(T* du, const std::vector<T>& rows, const LinAttnSizes& n) {
  for (int64_t i = 0; i < n.B * n.H; ++i)
    for (int64_t c = 0; c < n.Dk; ++c) du[(i % n.H) * n.Dk + c] += rows[size_t(i * n.Dk + c)];
}

template <class T>
void blocked_backward(const LinAttnGrads<T>& d, const T* dout, const T* dstate, const LinAttnInputs<T>& in,
                      const LinAttnSizes& n, int64_t chunk, bool allow_factor) {
  const int64_t C = std::max<int64_t>(1, std::min(chunk, n.T)), N = n.Dk * n.Dv, Dg = decay_width(n);
  const int64_t nc = (n.T + C - 1) / C;
  std::vector<T> du_rows(in.u ? size_t(n.B * n.H * n.Dk) : 0, T(0));
  parallel_for(n.B * n.H, n.T * (C * (n.Dk + n.Dv) + n.Dk * n.Dv) * 6, [&](int64_t i0, int64_t i1) {
    Work<T> w(C, n.Dk, Dg);
    std::vector<T> states(size_t((nc + 1) * N)), dS(static_cast<size_t>(N));
    for (int64_t i = i0; i < i1; ++i) {
      start_state(states.data(), in, n, i);  // sweep 1: the state at each block start
      for (int64_t c = 0; c < nc; ++c) {
        const int64_t t0 = c * C, L = std::min(C, n.T - t0);
        std::copy(states.begin() + c * N, states.begin() + (c + 1) * N, states.begin() + (c + 1) * N);
        block_forward<T>(nullptr, states.data() + (c + 1) * N, w, block_of(in, n, i, t0, L), allow_factor);
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
        block_backward(g, dout + (i * n.T + t0) * n.Dv, dS.data(), states.data() + c * N, states.data() + (c + 1) * N,
                       w, block_of(in, n, i, t0, L), allow_factor);
      }
      if (d.dh0)
        for (int64_t j = 0; j < N; ++j) d.dh0[i * N + j] += dS[size_t(j)];
    }
  });
  if (in.u && d.du) add_du_rows(d.du, du_rows, n);
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
      if (d.dh0)
        for (int64_t j = 0; j < N; ++j) d.dh0[i * N + j] += dS[size_t(j)];
    }
  });
  if (in.u && d.du) add_du_rows(d.du, du_rows, n);
}

// ---- parallel: the materialised T x T form (one block of all T, exps formed pairwise) ----
template <class T>
void linear_attention_parallel(T* out, T* state, const LinAttnInputs<T>& in, const LinAttnSizes& n) {
  check_sizes(n, 1, "linear_attention_parallel");
  blocked_forward(out, state, in, n, std::max<int64_t>(n.T, 1), false);
}
template <class T>
void linear_attention_parallel_backward(const LinAttnGrads<T>& d, const T* dout, const T* dstate,
                                        const LinAttnInputs<T>& in, const LinAttnSizes& n) {
  check_sizes(n, 1, "linear_attention_parallel_backward");
  blocked_backward(d, dout, dstate, in, n, std::max<int64_t>(n.T, 1), false);
}

// ---- chunked: blocks of C, per-channel blocks factorised under the guard ---------------
template <class T>
void linear_attention_chunked(T* out, T* state, const LinAttnInputs<T>& in, const LinAttnSizes& n, int64_t chunk) {
  check_sizes(n, chunk, "linear_attention_chunked");
  blocked_forward(out, state, in, n, chunk, true);
}
template <class T>
void linear_attention_chunked_backward(const LinAttnGrads<T>& d, const T* dout, const T* dstate,
                                       const LinAttnInputs<T>& in, const LinAttnSizes& n, int64_t chunk) {
  check_sizes(n, chunk, "linear_attention_chunked_backward");
  blocked_backward(d, dout, dstate, in, n, chunk, true);
}

#define TZ_LINATTN_INSTANTIATE(T)                                                                           \
  template void linear_attention_recurrent<T>(T*, T*, const LinAttnInputs<T>&, const LinAttnSizes&);        \
  template void linear_attention_parallel<T>(T*, T*, const LinAttnInputs<T>&, const LinAttnSizes&);         \
  template void linear_attention_chunked<T>(T*, T*, const LinAttnInputs<T>&, const LinAttnSizes&, int64_t); \
  template void linear_attention_recurrent_backward<T>(const LinAttnGrads<T>&, const T*, const T*,          \
                                                       const LinAttnInputs<T>&, const LinAttnSizes&);       \
  template void linear_attention_parallel_backward<T>(const LinAttnGrads<T>&, const T*, const T*,           \
                                                      const LinAttnInputs<T>&, const LinAttnSizes&);        \
  template void linear_attention_chunked_backward<T>(const LinAttnGrads<T>&, const T*, const T*,            \
                                                     const LinAttnInputs<T>&, const LinAttnSizes&, int64_t);
TZ_LINATTN_INSTANTIATE(float)
TZ_LINATTN_INSTANTIATE(double)
#undef TZ_LINATTN_INSTANTIATE

}  // namespace tz::kernels
