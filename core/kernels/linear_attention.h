// Linear attention with decays, in its three forms, forward and backward: the kernel under
// linear attention (Katharopoulos et al. 2020, "Transformers are RNNs", arXiv:2006.16236),
// RetNet (arXiv:2307.08621), GLA (arXiv:2312.06635), RWKV-6 (arXiv:2404.05892), Lightning
// attention, TransNormerLLM, HGRN2 and Mamba-2's SSD: a matrix-valued state decayed per
// step and read by the query. Derivation and why log space: docs/linear_attention.md.
//
// Shape letters (used in every comment of linear_attention*.cpp):
//   B = batch, H = heads, T = time steps, Dk = key/query dim, Dv = value dim,
//   C = chunk size, L = tokens of one block (L <= C), Dg = 1 (one decay per head and step)
//   or Dk (one decay per key channel).
//   q, k [B, H, T, Dk]; v [B, H, T, Dv]; g [B, H, T, Dg] log-decays (g <= 0, a_t = exp(g_t));
//   u [H, Dk] bonus; state S [B, H, Dk, Dv]; out o [B, H, T, Dv]. All contiguous.
//
// The recurrence (S_0 = h0, or zeros), diag(a_t) scaling the rows of S:
//   plain   S_t = diag(a_t) S_{t-1} + k_t^T v_t,    o_t = q_t S_t
//   bonus   o_t = q_t (S_{t-1} + diag(u) k_t^T v_t), then S_t as above   (RWKV-6: the
//           current token enters the output only through u, the state not yet decayed by a_t)
// With b_t = g_1 + ... + g_t (inclusive cumulative log-decay) and c_t = b_t (plain) or
// b_{t-1} (bonus), unrolled:
//   o_t = sum_{s <= t} (sum_d q_td k_sd exp(c_td - b_sd)) v_s + (q_t * exp(c_t)) S_0
//   (s < t with bonus, plus (sum_d q_td u_d k_td) v_t), S_T = diag(exp(b_T)) S_0 +
//   sum_s (k_s * exp(b_T - b_s))^T v_s. Every exponent formed is a difference c_t - b_s with
//   s <= t, or b_T - b_s, or b_t itself: all <= 0, so no exp can overflow.
//
// The three forms (each a plain function; all compute the same o and S_T):
//   recurrent     the loop above, one token at a time: the reference, and the decode step.
//   parallel      the materialised form: the T x T matrix A_ts of the first sum, then A V.
//   chunked       blocks of C tokens: within a block b restarts at 0 (log space, only
//                 differences exponentiated), A is C x C, and the state carries between
//                 blocks: O(T C (Dk + Dv) + T Dk Dv) work, O(C^2) memory.
// Per key channel decays (Dg = Dk) make A_ts = sum_d q_td k_sd exp(c_td - b_sd), which is a
// matrix product only when factorised as (q_t * exp(c_t)) . (k_s * exp(-b_s)); exp(-b_s)
// grows to exp(-b_L) over a block. Guard: a block factorises only when every channel's
// decay over it is gentle, -b_L <= kFactorGuard = 40 (exp(40) = 2.4e17, and exp(-40) times a
// query of 1e-20 is still a normal f32, far from f32's 3.4e38 and 1.2e-38); a steeper block
// forms every exp(c_td - b_sd) directly (O(L^2 Dk) exps, exact). Both paths are tested.
//
// Backward (dO, dS_T given; dS_T may be null = 0), per block from the last, with dA_ts =
// dO_t . v_s on the pairs A uses:
//   dv_s += sum_t A_ts dO_t + (k_s * exp(b_L - b_s)) dS_L
//   dq_td = sum_s dA_ts k_sd exp(c_td - b_sd) + exp(c_td) (dO_t S_0^T)_d       (dq')
//   dk_sd = sum_t dA_ts q_td exp(c_td - b_sd) + exp(b_Ld - b_sd) (v_s dS_L^T)_d (dk')
//   d c_td = q_td dq'_td,   d b_sd = -k_sd dk'_sd,   d b_Ld += sum_j dS_L[d, j] S_L[d, j]
//   (summed over d when Dg = 1), then dg_r = sum of the d b_t (t >= r) and d c_t (t >= r,
//   or t > r with bonus): each exp(x - y) term gives +itself to x and -itself to y.
//   dS_0 = (q * exp(c))^T dO + diag(exp(b_L)) dS_L; bonus adds u_d k_td (dO_t . v_t) to dq,
//   u_d q_td (dO_t . v_t) to dk, (sum_d q_td u_d k_td) dO_t to dv, q_td k_td (dO_t . v_t) to du.
// The chunked backward recomputes the block start states in a forward sweep (O(T / C Dk Dv)
// memory); the recurrent backward stores all T states of one head (a reference only).
// Backward kernels write every gradient buffer (no need to zero them first); null buffers
// are skipped for dg (no g), du (no u) and dh0.
//
// f32 runs the products through kernels::gemm (its AVX2 / AVX-512 micro-kernels, or the
// scalar one when tz::simd_enabled() is off); the B x H heads run in parallel (tz::parallel_for).
#pragma once

#include <cstdint>

namespace tz::kernels {

// Past this total log-decay magnitude over one block, per-channel decays are not factorised
// (see the file comment).
constexpr double kFactorGuard = 40;

struct LinAttnSizes {
  int64_t B = 0, H = 0, T = 0, Dk = 0, Dv = 0;
  bool channel_decay = false;  // g is [B, H, T, Dk] (GLA, RWKV-6, HGRN2), else [B, H, T]
};

template <class T>
struct LinAttnInputs {
  const T* q = nullptr;
  const T* k = nullptr;
  const T* v = nullptr;
  const T* g = nullptr;   // log-decays <= 0; null: no decay (a_t = 1)
  const T* u = nullptr;   // bonus [H, Dk]; null: none
  const T* h0 = nullptr;  // initial state; null: zeros
};

template <class T>
struct LinAttnGrads {
  T* dq = nullptr;
  T* dk = nullptr;
  T* dv = nullptr;
  T* dg = nullptr;
  T* du = nullptr;
  T* dh0 = nullptr;
};

// Forward forms: out [B, H, T, Dv] and the final state [B, H, Dk, Dv] are written.
template <class T>
void linear_attention_recurrent(T* out, T* state, const LinAttnInputs<T>& in, const LinAttnSizes& n);
template <class T>
void linear_attention_parallel(T* out, T* state, const LinAttnInputs<T>& in, const LinAttnSizes& n);
// The chunked form's optional `starts` [B, H, ceil(T / C) + 1, Dk, Dv] (C = min(chunk, T), at
// least 1): the state at each block's start and the final state. The forward writes them
// when given; the backward then reads them instead of recomputing them in a forward sweep.
int64_t linear_attention_starts_size(const LinAttnSizes& n, int64_t chunk);
template <class T>
void linear_attention_chunked(T* out, T* state, const LinAttnInputs<T>& in, const LinAttnSizes& n, int64_t chunk,
                              T* starts = nullptr);

// Backward forms: dout [B, H, T, Dv], dstate [B, H, Dk, Dv] (null = 0).
template <class T>
void linear_attention_recurrent_backward(const LinAttnGrads<T>& d, const T* dout, const T* dstate,
                                         const LinAttnInputs<T>& in, const LinAttnSizes& n);
template <class T>
void linear_attention_parallel_backward(const LinAttnGrads<T>& d, const T* dout, const T* dstate,
                                        const LinAttnInputs<T>& in, const LinAttnSizes& n);
template <class T>
void linear_attention_chunked_backward(const LinAttnGrads<T>& d, const T* dout, const T* dstate,
                                       const LinAttnInputs<T>& in, const LinAttnSizes& n, int64_t chunk,
                                       const T* starts = nullptr);

}  // namespace tz::kernels
