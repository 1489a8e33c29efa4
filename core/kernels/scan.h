// First-order linear recurrences (scans), forward and backward: the elementwise scan and
// Mamba's selective scan.
//
// Shape letters: B = batch, T = time steps, D = channels, N = state size per channel
// (selective scan), L = chunk length. Every array is contiguous, row-major.
//
// scan: h_t = a_t * h_{t-1} + b_t for t = 0..T-1, h_{-1} = h0 (zeros when null).
//   a, b, h [B, T, D]; h0 [B, D]. With `complex`, every element is a pair (re, im) stored
//   next to each other (the arrays hold 2 D reals per row) and * is the complex product
//   (HGRN's rotation, arXiv:2311.04823). The final state is h at t = T - 1.
// Its backward is the same recurrence run in reverse: with g_t = dL/dh_t (from the output
// and, at T - 1, from the final state),
//   dh_t = g_t + conj(a_{t+1}) dh_{t+1}    (dh_T = 0; conj only for complex)
//   db_t = dh_t,   da_t = dh_t conj(h_{t-1}),   dh0 = conj(a_0) dh_0.
//
// selective_scan ("Mamba: Linear-Time Sequence Modeling with Selective State Spaces", Gu and
// Dao, arXiv:2312.00752, sec. 3 and algorithm 2), per batch b, channel d, state index n:
//   Abar_t = exp(delta_t A[d, n])          (zero-order hold of the diagonal A)
//   h_t[n] = Abar_t h_{t-1}[n] + delta_t B_t[n] u_t   (Euler step for B, as the paper's code)
//   y_t = sum_n C_t[n] h_t[n] + Dskip[d] u_t,   out_t = y_t * silu(z_t)  (when z is given)
//   u, delta, z, out [B, T, D]; A [D, N]; Bm, Cm [B, T, N] (shared by the channels);
//   Dskip [D] (may be null); h0, hT [B, D, N].
// The [B, T, D, N] expansion (Abar, the states) is never stored: the forward keeps one
// state per (b, d), writes the output, and saves the state at the start of every chunk of
// L steps (ckpt [B, ceil(T / L), D, N]); the backward re-runs each chunk from its saved
// state (the paper's recomputation, sec. 3.3.2) and then walks it in reverse:
//   dy_t = g_t silu(z_t),  dz_t = g_t y_t silu'(z_t),  dDskip[d] += dy_t u_t
//   dh_t += dy_t C_t;  dC_t += dy_t h_t
//   dAbar = dh_t h_{t-1}:  ddelta_t += sum_n dAbar Abar A + dh_t B_t u_t,  dA += dAbar Abar delta_t
//   dB_t += dh_t delta_t u_t;  du_t += Dskip dy_t + sum_n dh_t delta_t B_t
//   dh_{t-1} = Abar_t dh_t,  dh0 = dh_{-1}
#pragma once

#include <cstdint>

namespace tz::kernels {

// ---- scan ------------------------------------------------------------------------------------
// The plain loop, one channel at a time: the reference.
template <class Real>
void scan_forward_ref(Real* h, const Real* a, const Real* b, const Real* h0, int64_t B, int64_t T, int64_t D,
                      bool complex);
// chunk = 0: the loop over T, parallel over (batch, block of channels) and vectorised over
// the channels. chunk = L > 0: the chunked form across T (parallel over chunks too):
//   1. each chunk scans from a zero state (local h) and keeps the product of its a's;
//   2. a short sequential scan over the chunk boundaries gives each chunk's true start state;
//   3. the fix-up adds (a_{t0} ... a_t) start to every local h_t of the chunk.
template <class Real>
void scan_forward(Real* h, const Real* a, const Real* b, const Real* h0, int64_t B, int64_t T, int64_t D, bool complex,
                  int64_t chunk);

// g: dL/dh [B, T, D]; h: the forward's output. Writes (not accumulates) da, db [B, T, D]
// and dh0 [B, D] (may be null).
template <class Real>
void scan_backward_ref(Real* da, Real* db, Real* dh0, const Real* g, const Real* h, const Real* a, const Real* h0,
                       int64_t B, int64_t T, int64_t D, bool complex);
template <class Real>
void scan_backward(Real* da, Real* db, Real* dh0, const Real* g, const Real* h, const Real* a, const Real* h0,
                   int64_t B, int64_t T, int64_t D, bool complex, int64_t chunk);

// ---- selective scan --------------------------------------------------------------------------
struct SelectiveScanArgs {
  int64_t B = 0, T = 0, D = 0, N = 0;
  int64_t chunk = 64;  // L: steps between saved states (the backward recomputes L steps at once)
};

// out: row (b, t) at out + b * out_bstride + t * D (out_bstride >= T D lets the caller pack
// the final state after the rows). ckpt: [B, ceil(T / L), D, N] or null (the reference has
// none). z, Dskip, h0 may be null.
template <class Real>
void selective_scan_forward_ref(Real* out, int64_t out_bstride, Real* hT, const Real* u, const Real* delta,
                                const Real* A, const Real* Bm, const Real* Cm, const Real* Dskip, const Real* z,
                                const Real* h0, const SelectiveScanArgs& n);
template <class Real>
void selective_scan_forward(Real* out, int64_t out_bstride, Real* hT, Real* ckpt, const Real* u, const Real* delta,
                            const Real* A, const Real* Bm, const Real* Cm, const Real* Dskip, const Real* z,
                            const Real* h0, const SelectiveScanArgs& n);

// Gradients (each may be null when not needed, except that the kernel always computes the
// reverse scan): du, ddelta, dz [B, T, D]; dA [D, N]; dBm, dCm [B, T, N]; dDskip [D];
// dh0 [B, D, N]. All are written (not accumulated). g: dL/dout, rows like `out` (g_bstride);
// ghT: dL/dhT [B, D, N] or null.
struct SelectiveScanGrads {
  void* du = nullptr;
  void* ddelta = nullptr;
  void* dA = nullptr;
  void* dBm = nullptr;
  void* dCm = nullptr;
  void* dDskip = nullptr;
  void* dz = nullptr;
  void* dh0 = nullptr;
};
template <class Real>
void selective_scan_backward_ref(const SelectiveScanGrads& grads, const Real* g, int64_t g_bstride, const Real* ghT,
                                 const Real* u, const Real* delta, const Real* A, const Real* Bm, const Real* Cm,
                                 const Real* Dskip, const Real* z, const Real* h0, const SelectiveScanArgs& n);
template <class Real>
void selective_scan_backward(const SelectiveScanGrads& grads, const Real* g, int64_t g_bstride, const Real* ghT,
                             const Real* ckpt, const Real* u, const Real* delta, const Real* A, const Real* Bm,
                             const Real* Cm, const Real* Dskip, const Real* z, const SelectiveScanArgs& n);

// ---- the selective scan on one block of up to 16 channels, f32 SIMD -----------------------
// selective_scan_simd.inl, compiled for AVX2 (selective_scan_avx2.cpp) and AVX-512
// (selective_scan_avx512.cpp); the kernels above call them per task when SIMD is on. A task
// is batch b, channels [d0, d1) (d1 - d0 <= 16), all T steps: the loops of the scalar forms,
// with the block's channels in the vector lanes.
struct SelectiveScanInputs {
  const float *u, *delta, *A, *Bm, *Cm, *Dskip, *z;  // Dskip, z may be null
};
struct SelectiveBlock {
  int64_t b, d0, d1;
};
// Where a backward task's parameter gradients go: dA rows [d1 - d0, N] and dDskip [d1 - d0]
// of this (b, block), written; dBm, dCm [T, N] partial sums of the task's channel group,
// added to.
struct SelectiveBlockGrads {
  float *dA, *dDskip, *dBm, *dCm;
};
#define TZ_SELECTIVE_BLOCK_KERNELS                                                                                     \
  void selective_forward_block(float* out, int64_t out_bstride, float* hT, float* ckpt, const float* h0,               \
                               const SelectiveScanInputs& in, const SelectiveScanArgs& n, SelectiveBlock blk);         \
  void selective_backward_block(const SelectiveScanGrads& gr, const SelectiveBlockGrads& acc, const float* g,          \
                                int64_t g_bstride, const float* ghT, const float* ckpt, const SelectiveScanInputs& in, \
                                const SelectiveScanArgs& n, SelectiveBlock blk);
namespace avx2 {
TZ_SELECTIVE_BLOCK_KERNELS
}  // namespace avx2
namespace avx512 {
TZ_SELECTIVE_BLOCK_KERNELS
}  // namespace avx512
#undef TZ_SELECTIVE_BLOCK_KERNELS

}  // namespace tz::kernels
