// Tensor-level scans: see scan.h.
#include "core/scan.h"

#include "core/copy.h"
#include "core/creation.h"
#include "core/kernels/scan.h"
#include "core/parallel.h"

namespace tz::core {

namespace {
const char* dt_name(const Tensor& t) { return dtype_name(t.dtype()); }

void check_same_dtype(const Tensor& ref, const Tensor& t, const char* op, const char* name) {
  if (!t.defined()) return;
  TZ_CHECK(t.dtype() == ref.dtype(), op, ": ", name, " is ", dt_name(t), ", expected ", dt_name(ref),
           " like the first input");
}

void check_scan(const Tensor& a, const Tensor& b, const Tensor& h0, const ScanOptions& o) {
  TZ_CHECK(a.defined() && b.defined(), "scan: a and b must be defined");
  const int64_t want = o.complex ? 4 : 3;
  TZ_CHECK(a.dim() == want && a.shape() == b.shape() && (!o.complex || a.size(3) == 2),
           "scan: expected a and b of one shape ", o.complex ? "[B, T, D, 2] (complex)" : "[B, T, D]", ", got a ",
           a.shape(), ", b ", b.shape());
  TZ_CHECK(a.size(1) >= 1, "scan: T must be >= 1, got a ", a.shape());
  check_same_dtype(a, b, "scan", "b");
  if (h0.defined()) {
    Shape s = o.complex ? Shape{a.size(0), a.size(2), 2} : Shape{a.size(0), a.size(2)};
    TZ_CHECK(h0.shape() == s, "scan: h0 must be ", s, " for a ", a.shape(), ", got ", h0.shape());
    check_same_dtype(a, h0, "scan", "h0");
  }
  TZ_CHECK(o.chunk >= 0, "scan: chunk must be >= 0 (0 = chosen), got ", o.chunk);
}

int64_t choose_chunk(const Tensor& a, const ScanOptions& o) {
  if (o.chunk > 0) return o.chunk;
  const int64_t B = a.size(0), T = a.size(1), blocks = B * ((a.size(2) + 63) / 64);
  return blocks >= 2 * get_num_threads() || T <= 512 ? T : 256;
}

template <class F>
const F* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<F>() : nullptr;
}
}  // namespace

Tensor scan(const Tensor& a, const Tensor& b, const Tensor& h0, const ScanOptions& o) {
  check_scan(a, b, h0, o);
  const int64_t B = a.size(0), T = a.size(1), D = a.size(2);
  Tensor ac = contiguous(a), bc = contiguous(b), hc = h0.defined() ? contiguous(h0) : Tensor();
  Tensor h = empty(a.shape(), a.dtype());
  TZ_DISPATCH_FLOAT(a.dtype(), "scan", [&]<class F>() {
    if (o.reference)
      kernels::scan_forward_ref<F>(h.data<F>(), ac.data<F>(), bc.data<F>(), ptr_or_null<F>(hc), B, T, D, o.complex);
    else
      kernels::scan_forward<F>(h.data<F>(), ac.data<F>(), bc.data<F>(), ptr_or_null<F>(hc), B, T, D, o.complex,
                               choose_chunk(a, o));
  });
  return h;
}

ScanGrads scan_backward(const Tensor& g, const Tensor& h, const Tensor& a, const Tensor& h0, const ScanOptions& o) {
  check_scan(a, h, h0, o);
  TZ_CHECK(g.shape() == a.shape(), "scan_backward: grad of shape ", g.shape(), ", expected ", a.shape());
  const int64_t B = a.size(0), T = a.size(1), D = a.size(2);
  Tensor gc = contiguous_as(g, a.dtype()), ac = contiguous(a), hc = contiguous(h);
  Tensor h0c = h0.defined() ? contiguous(h0) : Tensor();
  ScanGrads r{.da = empty(a.shape(), a.dtype()), .db = empty(a.shape(), a.dtype())};
  if (h0.defined()) r.dh0 = empty(h0.shape(), a.dtype());
  TZ_DISPATCH_FLOAT(a.dtype(), "scan_backward", [&]<class F>() {
    F* dh0 = r.dh0.defined() ? r.dh0.data<F>() : nullptr;
    if (o.reference)
      kernels::scan_backward_ref<F>(r.da.data<F>(), r.db.data<F>(), dh0, gc.data<F>(), hc.data<F>(), ac.data<F>(),
                                    ptr_or_null<F>(h0c), B, T, D, o.complex);
    else
      kernels::scan_backward<F>(r.da.data<F>(), r.db.data<F>(), dh0, gc.data<F>(), hc.data<F>(), ac.data<F>(),
                                ptr_or_null<F>(h0c), B, T, D, o.complex, choose_chunk(a, o));
  });
  return r;
}

// ---- selective scan --------------------------------------------------------------------------

namespace {
kernels::SelectiveScanArgs check_selective(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& Bm,
                                           const Tensor& Cm, const Tensor& Dskip, const Tensor& z, const Tensor& h0,
                                           const SelectiveScanOptions& o) {
  const char* op = "selective_scan";
  TZ_CHECK(u.defined() && delta.defined() && A.defined() && Bm.defined() && Cm.defined(), op,
           ": u, delta, A, B and C must be defined");
  TZ_CHECK(u.dim() == 3 && u.size(1) >= 1, op, ": u must be [B, T, D] with T >= 1, got ", u.shape());
  const int64_t B = u.size(0), T = u.size(1), D = u.size(2);
  TZ_CHECK(delta.shape() == u.shape(), op, ": delta must be [B, T, D] = ", u.shape(), ", got ", delta.shape());
  TZ_CHECK(A.dim() == 2 && A.size(0) == D && A.size(1) >= 1, op, ": A must be [D, N] with D = ", D, ", got ",
           A.shape());
  const int64_t N = A.size(1);
  for (auto [t, name] : {std::pair{&Bm, "B"}, std::pair{&Cm, "C"}})
    TZ_CHECK(t->shape() == (Shape{B, T, N}), op, ": ", name, " must be [B, T, N] = [", B, ", ", T, ", ", N, "], got ",
             t->shape());
  if (Dskip.defined()) TZ_CHECK(Dskip.shape() == Shape{D}, op, ": D must be [", D, "], got ", Dskip.shape());
  if (z.defined()) TZ_CHECK(z.shape() == u.shape(), op, ": z must be [B, T, D] = ", u.shape(), ", got ", z.shape());
  if (h0.defined())
    TZ_CHECK(h0.shape() == (Shape{B, D, N}), op, ": h0 must be [B, D, N] = [", B, ", ", D, ", ", N, "], got ",
             h0.shape());
  for (auto [t, name] : {std::pair{&delta, "delta"}, std::pair{&A, "A"}, std::pair{&Bm, "B"}, std::pair{&Cm, "C"},
                         std::pair{&Dskip, "D"}, std::pair{&z, "z"}, std::pair{&h0, "h0"}})
    check_same_dtype(u, *t, op, name);
  TZ_CHECK(o.chunk >= 1, op, ": chunk must be >= 1, got ", o.chunk);
  return {.B = B, .T = T, .D = D, .N = N, .chunk = o.chunk};
}

Tensor contig_or_none(const Tensor& t) { return t.defined() ? contiguous(t) : Tensor(); }
}  // namespace

SelectiveScanForward selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& Bm,
                                    const Tensor& Cm, const Tensor& Dskip, const Tensor& z, const Tensor& h0,
                                    const SelectiveScanOptions& o) {
  const kernels::SelectiveScanArgs n = check_selective(u, delta, A, Bm, Cm, Dskip, z, h0, o);
  const int64_t B = n.B, T = n.T, D = n.D, N = n.N;
  Tensor uc = contiguous(u), dc = contiguous(delta), Ac = contiguous(A), Bc = contiguous(Bm), Cc = contiguous(Cm);
  Tensor Dc = contig_or_none(Dskip), zc = contig_or_none(z), hc = contig_or_none(h0);
  SelectiveScanForward f{.packed = empty({B, T + N, D}, u.dtype())};
  Tensor hT = empty({B, D, N}, u.dtype());
  if (!o.reference) f.ckpt = empty({B, (T + o.chunk - 1) / o.chunk, D, N}, u.dtype());
  TZ_DISPATCH_FLOAT(u.dtype(), "selective_scan", [&]<class F>() {
    if (o.reference)
      kernels::selective_scan_forward_ref<F>(f.packed.data<F>(), (T + N) * D, hT.data<F>(), uc.data<F>(), dc.data<F>(),
                                             Ac.data<F>(), Bc.data<F>(), Cc.data<F>(), ptr_or_null<F>(Dc),
                                             ptr_or_null<F>(zc), ptr_or_null<F>(hc), n);
    else
      kernels::selective_scan_forward<F>(f.packed.data<F>(), (T + N) * D, hT.data<F>(), f.ckpt.data<F>(), uc.data<F>(),
                                         dc.data<F>(), Ac.data<F>(), Bc.data<F>(), Cc.data<F>(), ptr_or_null<F>(Dc),
                                         ptr_or_null<F>(zc), ptr_or_null<F>(hc), n);
  });
  // the final state into rows T.. of the packed buffer, transposed: [B, D, N] -> [B, N, D]
  copy_(as_strided(f.packed, {B, D, N}, {(T + N) * D, 1, D}, T * D), hT);
  return f;
}

SelectiveScanGrads selective_scan_backward(const Tensor& g, const SelectiveScanForward& f, const Tensor& u,
                                           const Tensor& delta, const Tensor& A, const Tensor& Bm, const Tensor& Cm,
                                           const Tensor& Dskip, const Tensor& z, const Tensor& h0,
                                           const SelectiveScanOptions& o) {
  const kernels::SelectiveScanArgs n = check_selective(u, delta, A, Bm, Cm, Dskip, z, h0, o);
  const int64_t B = n.B, T = n.T, D = n.D, N = n.N;
  TZ_CHECK(g.shape() == (Shape{B, T + N, D}), "selective_scan_backward: grad of shape ", g.shape(), ", expected [", B,
           ", ", T + N, ", ", D, "]");
  TZ_CHECK(o.reference || f.ckpt.defined(), "selective_scan_backward: the forward saved no states");
  Tensor gc = contiguous_as(g, u.dtype());
  Tensor ghT = contiguous(as_strided(gc, {B, D, N}, {(T + N) * D, 1, D}, T * D));
  Tensor uc = contiguous(u), dc = contiguous(delta), Ac = contiguous(A), Bc = contiguous(Bm), Cc = contiguous(Cm);
  Tensor Dc = contig_or_none(Dskip), zc = contig_or_none(z), hc = contig_or_none(h0);
  const DType dt = u.dtype();
  SelectiveScanGrads r{.du = empty(u.shape(), dt),
                       .ddelta = empty(u.shape(), dt),
                       .dA = empty(A.shape(), dt),
                       .dBm = empty(Bm.shape(), dt),
                       .dCm = empty(Cm.shape(), dt)};
  if (Dskip.defined()) r.dDskip = empty(Dskip.shape(), dt);
  if (z.defined()) r.dz = empty(z.shape(), dt);
  if (h0.defined()) r.dh0 = empty(h0.shape(), dt);
  auto raw = [](const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; };
  kernels::SelectiveScanGrads k{.du = raw(r.du),
                                .ddelta = raw(r.ddelta),
                                .dA = raw(r.dA),
                                .dBm = raw(r.dBm),
                                .dCm = raw(r.dCm),
                                .dDskip = raw(r.dDskip),
                                .dz = raw(r.dz),
                                .dh0 = raw(r.dh0)};
  TZ_DISPATCH_FLOAT(dt, "selective_scan_backward", [&]<class F>() {
    if (o.reference)
      kernels::selective_scan_backward_ref<F>(k, gc.data<F>(), (T + N) * D, ghT.data<F>(), uc.data<F>(), dc.data<F>(),
                                              Ac.data<F>(), Bc.data<F>(), Cc.data<F>(), ptr_or_null<F>(Dc),
                                              ptr_or_null<F>(zc), ptr_or_null<F>(hc), n);
    else
      kernels::selective_scan_backward<F>(k, gc.data<F>(), (T + N) * D, ghT.data<F>(), f.ckpt.data<F>(), uc.data<F>(),
                                          dc.data<F>(), Ac.data<F>(), Bc.data<F>(), Cc.data<F>(), ptr_or_null<F>(Dc),
                                          ptr_or_null<F>(zc), n);
  });
  return r;
}

}  // namespace tz::core
