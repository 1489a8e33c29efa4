// Tensor-level TTT-Linear dual form (not differentiable; autograd/ops_ttt.cpp pairs the
// forward with its backward): shape and dtype checks, contiguous copies, dtype dispatch, then
// the kernels of core/kernels/ttt.h (math and letters there).
//   q, k, v [B, H, T, D]; eta [B, H, T, 1]; W0 [1 or B, H, D, D]; b0 [1 or B, H, 1, D];
//   ln_w, ln_b [1, H, 1, D];  z [B, H, T, D]; W [B, H, D, D]; b [B, H, 1, D]; loss [B, H, T].
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace tz::core {

struct TttLinearInputs {
  Tensor q, k, v, eta, W0, b0, ln_w, ln_b;
  int64_t minibatch = 16;
};
struct TttLinearGrads {
  Tensor dq, dk, dv, deta, dW0, db0, dln_w, dln_b;
};

// Checks shapes, dtypes and the mini-batch size; throws tz::Error naming them.
void check_ttt_linear(const TttLinearInputs& in);
// An uninitialised buffer for what the backward needs (core/kernels/ttt.h, "saved").
Tensor ttt_linear_saved(const TttLinearInputs& in);
// Written into z, W, b, loss (contiguous, q's dtype: the autograd op's views of one buffer) and
// saved (from ttt_linear_saved; undefined: nothing kept).
void ttt_linear(const Tensor& z, const Tensor& W, const Tensor& b, const Tensor& loss, const Tensor& saved,
                const TttLinearInputs& in);
// dz [B, H, T, D]; dW, db, dloss: the gradients of the other results, or undefined (zero).
TttLinearGrads ttt_linear_backward(const Tensor& dz, const Tensor& dW, const Tensor& db, const Tensor& dloss,
                                   const Tensor& saved, const TttLinearInputs& in);

}  // namespace tz::core
