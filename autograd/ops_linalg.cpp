// Differentiable matrix products: matmul and linear, forward (core/linalg.h) and backward
// side by side. Shape letters: M, N, K as in core/kernels/gemm.h; "..." = batch dims.
//
// Backward of C = A B (per batch entry), from dL = sum(dC * dC/dA ...):
//   dA = dC B^T      [..., M, N] @ [..., N, K]
//   dB = A^T dC      [..., K, M] @ [..., M, N]
// then summed over the batch dims the operand was broadcast along (tz::sum_to). The
// transposes are views: the GEMM kernel takes them as transpose flags, without copies.
#include "autograd/ops.h"
#include "core/linalg.h"

namespace tz {

Tensor matmul(const Tensor& a, const Tensor& b) {
  Tensor out = core::matmul(a, b);
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  if (!grad_enabled() || !(need_a || need_b)) return out;
  // dA reads B and dB reads A: save each only when the other needs its gradient.
  Tensor a_saved = need_b ? a.detach() : Tensor();
  Tensor b_saved = need_a ? b.detach() : Tensor();
  const Shape a_shape = a.shape(), b_shape = b.shape();
  make_node(OpId::matmul, out, {a, b}, [a_saved, b_saved, a_shape, b_shape, need_a, need_b](const Tensor& g) {
    // Undo the 1-D conventions: a [K] acted as [1, K], b [K] as [K, 1], and the output
    // lost those dims; put them back so the formulas above apply unchanged.
    const bool a_vec = a_shape.size() == 1, b_vec = b_shape.size() == 1;
    Tensor g2 = g;
    if (b_vec) g2 = g2.unsqueeze(-1);
    if (a_vec) g2 = g2.unsqueeze(-2);
    Tensor da, db;
    if (need_a) {
      Tensor b2 = b_vec ? b_saved.unsqueeze(-1) : b_saved;
      Shape a2_shape = a_vec ? Shape{1, a_shape[0]} : a_shape;
      da = sum_to(matmul(g2, b2.transpose(-1, -2)), a2_shape).reshape(a_shape);
    }
    if (need_b) {
      Tensor a2 = a_vec ? a_saved.unsqueeze(0) : a_saved;
      Shape b2_shape = b_vec ? Shape{b_shape[0], 1} : b_shape;
      if (b2_shape.size() == 2 && a2.dim() > 2) {
        // b has no batch dims: fold a's batch into its rows, one GEMM gives the batch sum
        // directly: dB = A_flat^T dC_flat, [K, batch*M] @ [batch*M, N].
        const int64_t K = a2.size(-1), N = g2.size(-1);
        db = matmul(a2.reshape({-1, K}).t(), g2.reshape({-1, N}));
      } else {
        db = sum_to(matmul(a2.transpose(-1, -2), g2), b2_shape);
      }
      db = db.reshape(b_shape);
    }
    return std::vector<Tensor>{da, db};
  });
  return out;
}

// y = x W^T + b with x [..., in], W [out, in], b [out]. Backward:
//   dx = dy W                         [..., out] @ [out, in]
//   dW = dy^T x, summed over "..."    [out, rows] @ [rows, in] with rows = prod(...)
//   db = sum of dy over "..."
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  Tensor out = core::linear(x, weight, bias);
  const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
  const bool need_b = bias.defined() && bias.requires_grad();
  if (!grad_enabled() || !(need_x || need_w || need_b)) return out;
  Tensor x_saved = need_w ? x.detach() : Tensor();
  Tensor w_saved = need_x ? weight.detach() : Tensor();
  const int64_t n_in = weight.size(1), n_out = weight.size(0);
  make_node(OpId::linear, out, {x, weight, bias},
            [x_saved, w_saved, n_in, n_out, need_x, need_w, need_b](const Tensor& g) {
              Tensor dx, dw, db;
              if (need_x) dx = matmul(g, w_saved);
              Tensor g2 = g.reshape({-1, n_out});  // [rows, out]
              if (need_w) dw = matmul(g2.t(), x_saved.reshape({-1, n_in}));
              if (need_b) db = sum(g2, {0});
              return std::vector<Tensor>{dx, dw, db};
            });
  return out;
}

}  // namespace tz
