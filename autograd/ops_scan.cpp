// The scan ops: forward and backward side by side, each a call of the tensor-level functions
// in core/scan.h (kernels and math in core/kernels/scan.h), and their composite references
// built from the plain differentiable ops.
//
// Shape letters: B batch, T time, D channels, N state size per channel.
#include "autograd/ops.h"
#include "core/creation.h"

namespace tz {

// Saves a, h0 and the output h: the backward's reverse scan needs h_{t-1} for da.
Tensor scan(const Tensor& a, const Tensor& b, const Tensor& h0, const ScanOptions& options) {
  Tensor h = core::scan(a, b, h0, options);
  make_node(OpId::scan, h, {a, b, h0},
            [as = a.detach(), hs = h.detach(), h0s = h0.defined() ? h0.detach() : Tensor(), options](const Tensor& g) {
              core::ScanGrads r = core::scan_backward(g, hs, as, h0s, options);
              return std::vector<Tensor>{r.da, r.db, r.dh0};
            });
  return h;
}

// h_t = a_t h_{t-1} + b_t one step at a time; complex: (ar + i ai)(hr + i hi).
Tensor scan_composite(const Tensor& a, const Tensor& b, const Tensor& h0, bool complex) {
  const int64_t T = a.size(1);
  Shape state = complex ? Shape{a.size(0), a.size(2), 2} : Shape{a.size(0), a.size(2)};
  Tensor h = h0.defined() ? h0 : zeros(state, a.dtype());
  std::vector<Tensor> hs;
  for (int64_t t = 0; t < T; ++t) {
    Tensor at = a.select(1, t), bt = b.select(1, t);
    if (complex) {
      Tensor ar = at.select(-1, 0), ai = at.select(-1, 1), hr = h.select(-1, 0), hi = h.select(-1, 1);
      h = stack({ar * hr - ai * hi, ar * hi + ai * hr}, -1) + bt;
    } else {
      h = at * h + bt;
    }
    hs.push_back(h);
  }
  return stack(hs, 1);
}

// Saves the inputs and the states at chunk starts ([B, T / chunk, D, N]); the backward
// recomputes the states in between. The output is one buffer [B, T + N, D] (core/scan.h);
// y and the final state are views of it, so one node serves both.
SelectiveScanResult selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& Bm,
                                   const Tensor& Cm, const Tensor& Dskip, const Tensor& z, const Tensor& h0,
                                   const SelectiveScanOptions& options) {
  core::SelectiveScanForward f = core::selective_scan(u, delta, A, Bm, Cm, Dskip, z, h0, options);
  auto det = [](const Tensor& t) { return t.defined() ? t.detach() : Tensor(); };
  Tensor packed = f.packed;
  make_node(
      OpId::selective_scan, packed, {u, delta, A, Bm, Cm, Dskip, z, h0},
      [f = core::SelectiveScanForward{.packed = Tensor(), .ckpt = f.ckpt}, us = det(u), ds = det(delta), As = det(A),
       Bs = det(Bm), Cs = det(Cm), Ds = det(Dskip), zs = det(z), hs = det(h0), options](const Tensor& g) {
        core::SelectiveScanGrads r = core::selective_scan_backward(g, f, us, ds, As, Bs, Cs, Ds, zs, hs, options);
        return std::vector<Tensor>{r.du, r.ddelta, r.dA, r.dBm, r.dCm, r.dDskip, r.dz, r.dh0};
      });
  const int64_t T = u.size(1), N = A.size(1);
  return {packed.narrow(1, 0, T), packed.narrow(1, T, N).transpose(1, 2)};
}

// Mamba's selective_scan_ref, step by step: Abar = exp(delta A) [B, T, D, N],
// h = Abar_t h + (delta_t u_t) B_t, y_t = h . C_t (+ Dskip u_t), then y silu(z).
SelectiveScanResult selective_scan_composite(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& Bm,
                                             const Tensor& Cm, const Tensor& Dskip, const Tensor& z, const Tensor& h0) {
  const int64_t B = u.size(0), T = u.size(1), D = u.size(2), N = A.size(1);
  Tensor Abar = exp(delta.unsqueeze(-1) * A);               // [B, T, D, N]
  Tensor Bx = (delta * u).unsqueeze(-1) * Bm.unsqueeze(2);  // [B, T, D, N]
  Tensor h = h0.defined() ? h0 : zeros({B, D, N}, u.dtype());
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < T; ++t) {
    h = Abar.select(1, t) * h + Bx.select(1, t);
    ys.push_back(sum(h * Cm.select(1, t).unsqueeze(1), {-1}));  // [B, D]
  }
  Tensor y = stack(ys, 1);
  if (Dskip.defined()) y = y + u * Dskip;
  if (z.defined()) y = y * silu(z);
  return {y, h};
}

}  // namespace tz
