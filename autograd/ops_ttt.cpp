// The TTT-Linear op: forward and backward side by side, each a call of the tensor-level
// functions in core/ttt.h (kernels and math in core/kernels/ttt.h).
//
// Shape letters: B batch, H heads, T tokens, D head size.
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"

namespace tz {

// One node for all four results: views of one flat buffer [z | W | b | loss] that the kernel
// writes directly. The closure keeps the inputs (detached) and the forward's saved buffer.
TttLinearResult ttt_linear(const core::TttLinearInputs& in) {
  core::check_ttt_linear(in);
  const int64_t B = in.q.size(0), H = in.q.size(1), T = in.q.size(2), D = in.q.size(3);
  const int64_t nz = B * H * T * D, nW = B * H * D * D, nb = B * H * D, nl = B * H * T;
  Tensor packed = empty({nz + nW + nb + nl}, in.q.dtype());
  const Shape sz{B, H, T, D}, sW{B, H, D, D}, sb{B, H, 1, D}, sl{B, H, T};
  auto part = [](const Tensor& flat, int64_t at, int64_t n, const Shape& s) { return flat.narrow(0, at, n).view(s); };
  const bool grad = any_requires_grad({&in.q, &in.k, &in.v, &in.eta, &in.W0, &in.b0, &in.ln_w, &in.ln_b});
  const Tensor saved = grad ? core::ttt_linear_saved(in) : Tensor();
  core::ttt_linear(part(packed, 0, nz, sz), part(packed, nz, nW, sW), part(packed, nz + nW, nb, sb),
                   part(packed, nz + nW + nb, nl, sl), saved, in);
  core::TttLinearInputs kept{in.q.detach(),  in.k.detach(),    in.v.detach(),    in.eta.detach(), in.W0.detach(),
                             in.b0.detach(), in.ln_w.detach(), in.ln_b.detach(), in.minibatch};
  make_node(OpId::ttt_linear, packed, {in.q, in.k, in.v, in.eta, in.W0, in.b0, in.ln_w, in.ln_b},
            [kept, saved, sz, sW, sb, sl, nz, nW, nb, nl, part](const Tensor& g) {
              Tensor gc = core::contiguous(g);
              core::TttLinearGrads r =
                  core::ttt_linear_backward(part(gc, 0, nz, sz), part(gc, nz, nW, sW), part(gc, nz + nW, nb, sb),
                                            part(gc, nz + nW + nb, nl, sl), saved, kept);
              return std::vector<Tensor>{r.dq, r.dk, r.dv, r.deta, r.dW0, r.db0, r.dln_w, r.dln_b};
            });
  // views made after the node: they carry its history
  return {part(packed, 0, nz, sz), part(packed, nz, nW, sW), part(packed, nz + nW, nb, sb),
          part(packed, nz + nW + nb, nl, sl)};
}

}  // namespace tz
