// The xLSTM memory cells: see xlstm_cells.h.
#include "nn/linear_rnn/xlstm_cells.h"

#include <algorithm>
#include <cmath>

#include "core/creation.h"

namespace tz::nn {

namespace {

void check_mlstm(const MLstmInputs& in, const MLstmMemory& h0) {
  TZ_CHECK(in.q.dim() == 4 && in.k.shape() == in.q.shape() && in.v.dim() == 4 && in.v.size(0) == in.q.size(0) &&
               in.v.size(1) == in.q.size(1) && in.v.size(2) == in.q.size(2),
           "mlstm: q, k must be [B, H, T, Dk] and v [B, H, T, Dv], got q ", in.q.shape(), ", k ", in.k.shape(), ", v ",
           in.v.shape());
  const int64_t B = in.q.size(0), H = in.q.size(1), T = in.q.size(2), Dk = in.q.size(3), Dv = in.v.size(3);
  TZ_CHECK(T >= 1, "mlstm: needs at least one token, got q ", in.q.shape());
  TZ_CHECK(in.log_i.shape() == Shape({B, H, T}) && in.log_f.shape() == Shape({B, H, T}),
           "mlstm: log_i and log_f must be [B, H, T] = ", Shape({B, H, T}), ", got ", in.log_i.shape(), " and ",
           in.log_f.shape());
  TZ_CHECK(h0.S.shape() == Shape({B, H, Dk, Dv + 1}) && h0.m.shape() == Shape({B, H}),
           "mlstm: the memory must be S [B, H, Dk, Dv + 1] = ", Shape({B, H, Dk, Dv + 1}), " and m [B, H], got S ",
           h0.S.shape(), ", m ", h0.m.shape());
}

// m of one block from m0 [B, H]: the row max of its log D matrix D_ts = b_t - b_s + ĩ_s
// (s <= t, b the block's cumulative log forget gate) and of the carried term b_t + m0.
Tensor block_stabiliser(const Tensor& log_i, const Tensor& log_f, const Tensor& m0) {
  const int64_t L = log_i.size(2);
  Tensor b = cumsum(log_f, 2);                                      // [B, H, L]
  Tensor D = b.unsqueeze(3) - b.unsqueeze(2) + log_i.unsqueeze(2);  // [B, H, L (t), L (s)]
  Tensor future = triu(ones({L, L}, log_i.dtype()), 1);             // s > t
  D = masked_fill(D, future.expand(D.shape()).contiguous(), -INFINITY);
  return maximum(max(D, 3), b + m0.unsqueeze(2));
}

// h̃ from the kernel's [q C̄ | q n̄] [B, H, T, Dv + 1] and m [B, H, T].
Tensor mlstm_readout(const Tensor& o, const Tensor& m, int64_t Dv) {
  const int64_t d = o.dim() - 1;
  return o.narrow(d, 0, Dv) / maximum(abs(o.narrow(d, Dv, 1)), exp(-m).unsqueeze(d));
}

}  // namespace

MLstmMemory mlstm_zero_memory(int64_t B, int64_t H, int64_t Dk, int64_t Dv, DType dtype) {
  return {zeros({B, H, Dk, Dv + 1}, dtype), zeros({B, H}, dtype)};
}

Tensor mlstm_stabiliser(const Tensor& log_i, const Tensor& log_f, const Tensor& m0, LinearAttentionForm form,
                        int64_t chunk) {
  NoGradGuard no_grad;
  Tensor li = log_i.detach(), lf = log_f.detach(), m = m0.detach();
  const int64_t T = li.size(2);
  std::vector<Tensor> parts;
  switch (form) {
    case LinearAttentionForm::recurrent:  // m_t = max(λ_t + m_{t-1}, ĩ_t)
      for (int64_t t = 0; t < T; ++t) parts.push_back(m = maximum(lf.select(2, t) + m, li.select(2, t)));
      return stack(parts, 2);
    case LinearAttentionForm::parallel:
      return block_stabiliser(li, lf, m);
    case LinearAttentionForm::chunked:
      TZ_CHECK(chunk >= 1, "mlstm: chunk must be >= 1, got ", chunk);
      for (int64_t t0 = 0; t0 < T; t0 += chunk) {
        const int64_t L = std::min(chunk, T - t0);
        parts.push_back(block_stabiliser(li.narrow(2, t0, L), lf.narrow(2, t0, L), m));
        m = parts.back().select(2, L - 1);  // the running max carried to the next chunk
      }
      return cat(parts, 2);
  }
  return Tensor();
}

MLstmOutput mlstm(const MLstmInputs& in, const MLstmMemory& h0, LinearAttentionForm form, int64_t chunk) {
  check_mlstm(in, h0);
  const int64_t B = in.q.size(0), H = in.q.size(1), T = in.q.size(2), Dv = in.v.size(3);
  Tensor m = mlstm_stabiliser(in.log_i, in.log_f, h0.m, form, chunk);  // [B, H, T], no gradient
  // m_{t-1}: m_0 keeps its gradient (it scales the given memory), the rest are constants.
  Tensor m_prev = T > 1 ? cat({h0.m.unsqueeze(2), m.narrow(2, 0, T - 1)}, 2) : h0.m.unsqueeze(2);
  Tensor g = in.log_f + m_prev - m;                             // <= 0: m_t >= λ_t + m_{t-1}
  Tensor k = in.k * exp(in.log_i - m).unsqueeze(3);             // e^{ĩ_t - m_t} <= 1
  Tensor v = cat({in.v, ones({B, H, T, 1}, in.v.dtype())}, 3);  // the ones column carries n̄
  LinearAttentionResult r = linear_attention(in.q, k, v, {.log_decay = g, .h0 = h0.S, .form = form, .chunk = chunk});
  return {mlstm_readout(r.out, m, Dv), {r.state, m.select(2, T - 1)}};
}

MLstmOutput mlstm_loop(const MLstmInputs& in, const MLstmMemory& h0) {
  check_mlstm(in, h0);
  const int64_t B = in.q.size(0), H = in.q.size(1), T = in.q.size(2), Dv = in.v.size(3);
  Tensor S = h0.S, m = h0.m;
  std::vector<Tensor> hs;
  for (int64_t t = 0; t < T; ++t) {
    Tensor li = in.log_i.select(2, t), lf = in.log_f.select(2, t);  // [B, H]
    Tensor m_new;
    {
      NoGradGuard no_grad;
      m_new = maximum(lf.detach() + m.detach(), li.detach());
    }
    Tensor f = exp(lf + m - m_new).unsqueeze(2).unsqueeze(3), i = exp(li - m_new).unsqueeze(2).unsqueeze(3);
    Tensor v = cat({in.v.select(2, t), ones({B, H, 1}, in.v.dtype())}, 2);  // [B, H, Dv + 1]
    S = f * S + i * (in.k.select(2, t).unsqueeze(3) * v.unsqueeze(2));      // [B, H, Dk, Dv + 1]
    Tensor o = sum(in.q.select(2, t).unsqueeze(3) * S, {2});                // q_t [C̄ | n̄]
    hs.push_back(mlstm_readout(o, m_new, Dv));
    m = m_new;
  }
  return {stack(hs, 2), {S, m}};
}

SLstmMemory slstm_zero_memory(int64_t B, int64_t H, int64_t D, DType dtype) {
  return {zeros({B, H, D}, dtype), zeros({B, H, D}, dtype), zeros({B, H, D}, dtype), zeros({B, H, D}, dtype)};
}

Tensor slstm_scan(const Tensor& pre, const Tensor& R, SLstmMemory& mem, bool stabilised) {
  TZ_CHECK(pre.dim() == 5 && pre.size(3) == 4, "slstm: pre-activations must be [B, T, H, 4, D], got ", pre.shape());
  const int64_t B = pre.size(0), T = pre.size(1), H = pre.size(2), D = pre.size(4);
  TZ_CHECK(R.shape() == Shape({H, D, 4 * D}), "slstm: R must be [H, D, 4 D] = ", Shape({H, D, 4 * D}), ", got ",
           R.shape());
  for (const Tensor* s : {&mem.c, &mem.n, &mem.m, &mem.h})
    TZ_CHECK(s->shape() == Shape({B, H, D}), "slstm: the memory tensors must be [B, H, D] = ", Shape({B, H, D}),
             ", got ", s->shape());
  std::vector<Tensor> hs;
  for (int64_t t = 0; t < T; ++t) {
    // p_t = W x_t + b + R h_{t-1}, one D x 4 D block per head: [B, H, 4, D]
    Tensor p = pre.select(1, t) + matmul(mem.h.unsqueeze(2), R).view({B, H, 4, D});
    Tensor z = tanh(p.select(2, 0)), li = p.select(2, 1), fp = p.select(2, 2), o = sigmoid(p.select(2, 3));
    Tensor f, i;
    if (stabilised) {
      Tensor lf = log_sigmoid(fp), m_new;
      {
        NoGradGuard no_grad;  // an empty memory (n = 0) starts at m = ĩ, whatever m_0 says
        m_new = where(mem.n.detach(), maximum(lf.detach() + mem.m.detach(), li.detach()), li.detach());
      }
      f = exp(lf + mem.m - m_new);
      i = exp(li - m_new);
      mem.m = m_new;
    } else {
      f = sigmoid(fp);
      i = exp(li);
    }
    mem.c = f * mem.c + i * z;
    mem.n = f * mem.n + i;
    mem.h = o * mem.c / mem.n;
    hs.push_back(mem.h);
  }
  return stack(hs, 2);
}

}  // namespace tz::nn
