// Tensor-level scans (not differentiable; autograd/ops_scan.cpp pairs each forward with its
// backward): shape and dtype checks, layouts, dtype dispatch, then the kernels of
// core/kernels/scan.h (math and shape letters there).
//   scan:           a, b [B, T, D] (complex: [B, T, D, 2], pairs (re, im)); h0 [B, D] ([B, D, 2])
//                   or undefined (zeros) -> h [B, T, D] (the final state is h[:, T - 1]).
//   selective_scan: u, delta, z [B, T, D]; A [D, N]; Bm, Cm [B, T, N]; Dskip [D]; h0 [B, D, N];
//                   z, Dskip and h0 may be undefined. Returns one buffer [B, T + N, D]: rows
//                   0..T-1 the output, rows T..T+N-1 the final state transposed ([N, D]),
//                   so that the op is one autograd node with one output.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace tz {

struct ScanOptions {
  // 0: chosen (the loop over T when batch x channel blocks keep the threads busy, else
  // chunks of 256); L >= T: the loop over T; 0 < L < T: the chunked form with chunks of L.
  int64_t chunk = 0;
  bool complex = false;    // elements are complex pairs (last dim 2)
  bool reference = false;  // the plain loops (tests)
};

struct SelectiveScanOptions {
  int64_t chunk = 64;      // steps between the states saved for the backward's recomputation
  bool reference = false;  // the plain loops (tests); its backward stores all T x N states per channel
};

namespace core {

Tensor scan(const Tensor& a, const Tensor& b, const Tensor& h0, const ScanOptions& o);
struct ScanGrads {
  Tensor da, db, dh0;  // dh0 undefined when h0 is
};
// g: dL/dh, h: scan's output for the same inputs.
ScanGrads scan_backward(const Tensor& g, const Tensor& h, const Tensor& a, const Tensor& h0, const ScanOptions& o);

struct SelectiveScanForward {
  Tensor packed;  // [B, T + N, D]
  Tensor ckpt;    // [B, ceil(T / chunk), D, N] states at chunk starts (undefined for the reference)
};
SelectiveScanForward selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& Bm,
                                    const Tensor& Cm, const Tensor& Dskip, const Tensor& z, const Tensor& h0,
                                    const SelectiveScanOptions& o);
struct SelectiveScanGrads {
  Tensor du, ddelta, dA, dBm, dCm, dDskip, dz, dh0;  // undefined for undefined inputs
};
// g: dL/dpacked [B, T + N, D]; f: the forward's result for the same inputs and options.
SelectiveScanGrads selective_scan_backward(const Tensor& g, const SelectiveScanForward& f, const Tensor& u,
                                           const Tensor& delta, const Tensor& A, const Tensor& Bm, const Tensor& Cm,
                                           const Tensor& Dskip, const Tensor& z, const Tensor& h0,
                                           const SelectiveScanOptions& o);

}  // namespace core
}  // namespace tz
