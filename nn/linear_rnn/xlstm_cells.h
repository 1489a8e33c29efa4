// The two memory cells of xLSTM. "xLSTM: Extended Long Short-Term Memory", Beck, Pöppel,
// Spanring, Auer, Prudnikova, Kopp, Klambauer, Brandstetter, Hochreiter 2024, arXiv:2405.04517
// (sec. 2.2-2.3, appendix A). The mixers around them are in xlstm.h.
//
// Shapes: B batch, H heads, T time, Dk key/query dim, Dv value dim, D the sLSTM head dim.
//
// mLSTM (matrix memory, sec. 2.3), per head, gates in log space: ĩ_t the input gate's
// pre-activation (i_t = exp(ĩ_t)), λ_t = log f_t <= 0 (log σ of the forget pre-activation):
//   C_t = f_t C_{t-1} + i_t k_t^T v_t   [Dk, Dv]      n_t = f_t n_{t-1} + i_t k_t   [Dk]
//   h̃_t = q_t C_t / max(|q_t n_t|, 1)                  (the output gate is the mixer's)
// Stabilised (appendix A.3): m_t = max(λ_t + m_{t-1}, ĩ_t), C̄_t = C_t e^{-m_t}, n̄_t = n_t e^{-m_t}:
//   C̄_t = e^{λ_t + m_{t-1} - m_t} C̄_{t-1} + e^{ĩ_t - m_t} k_t^T v_t,  likewise n̄_t,
//   h̃_t = q_t C̄_t / max(|q_t n̄_t|, e^{-m_t})
// which equals the unstabilised h̃_t for ANY sequence m (both sides scale by e^{m_t}): the
// stabiliser only keeps every exponent <= 0. Hence m carries no gradient (it is computed
// without one); m_0, the stabiliser of a given initial memory, does, through the first decay.
// Unrolled, m_t = max(b_t + m_0, max_{s<=t} (b_t - b_s + ĩ_s)) with b_t = λ_1 + ... + λ_t:
// the row maximum of the paper's log D matrix (eq. 79-83), here with the initial memory's column.
//
// The recurrence IS linear attention (core/kernels/linear_attention.h) with the log-decay
// g_t = λ_t + m_{t-1} - m_t <= 0, the key k_t e^{ĩ_t - m_t} and the value [v_t, 1] (its last
// column carries n̄): so its three forms, and their backward, are the kernel's:
//   recurrent  m by the loop above, then the kernel's loop (the decode step);
//   parallel   m as the row max of the materialised T x T log D matrix (b_t - b_s taken as
//              differences of the cumulative sums, future pairs at -inf), then the kernel's T x T
//              form: its weights e^{b'_t - b'_s} e^{ĩ_s - m_s} = e^{D̃_ts - m_t}, the paper's C' matrix;
//   chunked    m per chunk of L tokens (the L x L log D matrix plus the carried m at the chunk
//              start), then the kernel's chunked form, which carries [C̄ | n̄] between chunks
//              stabilised by the m at the boundary (the running max of the chunkwise kernels).
// mlstm_loop is the same recurrence in plain ops, one token at a time: the reference.
//
// sLSTM (scalar memory with memory mixing, sec. 2.2), per channel of head h, with
// p_t = W x_t + b + R_h h_{t-1} (R block-diagonal: one D x 4 D matrix per head):
//   z_t = tanh(p^z),  ĩ_t = p^i,  λ_t = log σ(p^f),  o_t = σ(p^o)
//   m_t = max(λ_t + m_{t-1}, ĩ_t)  (ĩ_t on an empty memory, n_{t-1} = 0: appendix A.2's code)
//   c̄_t = e^{λ_t + m_{t-1} - m_t} c̄_{t-1} + e^{ĩ_t - m_t} z_t,   n̄_t likewise with 1 for z_t
//   h_t = o_t ⊙ c̄_t / n̄_t   (= o_t ⊙ c_t / n_t for any m: the ratio cancels e^{-m_t})
// Sequential only: h_{t-1} enters the gates through R, so there is no parallel form.
#pragma once

#include "autograd/ops.h"

namespace tz::nn {

// The mLSTM memory: S = [C̄ | n̄] [B, H, Dk, Dv + 1] (n̄ the last column) and m [B, H].
struct MLstmMemory {
  Tensor S, m;
};
MLstmMemory mlstm_zero_memory(int64_t B, int64_t H, int64_t Dk, int64_t Dv, DType dtype);  // m_0 = 0

// q, k [B, H, T, Dk] (k already scaled), v [B, H, T, Dv], log_i = ĩ and log_f = λ <= 0 [B, H, T].
struct MLstmInputs {
  Tensor q, k, v, log_i, log_f;
};
struct MLstmOutput {
  Tensor h;  // h̃ [B, H, T, Dv]
  MLstmMemory memory;
};

// The stabiliser m [B, H, T] (no gradient) from m_0 [B, H], computed as `form` does.
Tensor mlstm_stabiliser(const Tensor& log_i, const Tensor& log_f, const Tensor& m0, LinearAttentionForm form,
                        int64_t chunk);
// The stabilised mLSTM on the linear-attention kernel, in `form` (chunk: the chunked form's L).
MLstmOutput mlstm(const MLstmInputs& in, const MLstmMemory& h0, LinearAttentionForm form, int64_t chunk);
// The same, one token at a time in plain ops: the reference.
MLstmOutput mlstm_loop(const MLstmInputs& in, const MLstmMemory& h0);

// The sLSTM memory, each [B, H, D]: c̄, n̄, m and the last output h.
struct SLstmMemory {
  Tensor c, n, m, h;
};
SLstmMemory slstm_zero_memory(int64_t B, int64_t H, int64_t D, DType dtype);
// pre = W x + b [B, T, H, 4, D] (z, i, f, o along dim 3), R [H, D, 4 D]: h [B, H, T, D]; the
// memory is continued in place. stabilised = false runs the plain formula (i_t = e^{ĩ_t},
// f_t = σ(p^f), m untouched): the reference the stabiliser must not change, finite only while
// e^{ĩ} is.
Tensor slstm_scan(const Tensor& pre, const Tensor& R, SLstmMemory& memory, bool stabilised = true);

}  // namespace tz::nn
