// The diagonal SSM pieces (math in diagonal.h).
#include "nn/ssm/diagonal.h"

#include <algorithm>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/kernels/ssm_kernels.h"

namespace tz::nn {

Tensor vandermonde_kernel(const Tensor& dA_re, const Tensor& dA_im, const Tensor& W_re, const Tensor& W_im, int64_t L) {
  std::vector<double> ell(static_cast<size_t>(L));
  for (int64_t l = 0; l < L; ++l) ell[size_t(l)] = double(l);
  Tensor pos = from_vector(ell, {L}).to(dA_re.dtype());
  // e^{ℓ Δλ} = e^{ℓ Re Δλ} (cos(ℓ Im Δλ) + i sin(ℓ Im Δλ)): exact powers, no repeated products
  Tensor mag = exp(dA_re.unsqueeze(-1) * pos), ang = dA_im.unsqueeze(-1) * pos;  // [C, P, L]
  Tensor re = mag * (W_re.unsqueeze(-1) * cos(ang) - W_im.unsqueeze(-1) * sin(ang));
  return sum(re, {-2});  // [C, L]
}

Tensor diagonal_recur(const Tensor& u, const DiagonalStep& s, Tensor* h) {
  const int64_t B = u.size(0), T = u.size(1), C = u.size(2), P = s.b_re.size(-1);
  auto full = [&](const Tensor& t) { return t.expand({C, P}); };
  Tensor a = stack({full(s.a_re), full(s.a_im)}, -1).reshape({1, 1, C * P, 2}).expand({B, T, C * P, 2});
  Tensor uu = u.unsqueeze(-1);  // [B, T, C, 1]
  Tensor b = stack({uu * s.b_re, uu * s.b_im}, -1).reshape({B, T, C * P, 2});
  Tensor hs = scan(a, b, h && h->defined() ? *h : Tensor(), {.complex = true});  // [B, T, C P, 2]
  if (h) *h = hs.select(1, T - 1).contiguous();
  Tensor h5 = hs.reshape({B, T, C, P, 2});
  if (!s.c_re.defined()) return sum(h5.select(-1, 0), {-1});
  return sum(h5.select(-1, 0) * s.c_re - h5.select(-1, 1) * s.c_im, {-1});  // [B, T, C]
}

std::vector<std::complex<double>> legs_normal_modes(int64_t N) {
  kernels::Nplr r = kernels::nplr(kernels::hippo_legs(N), kernels::legs_low_rank(N));
  std::vector<std::complex<double>> modes;
  for (const auto& l : r.lambda)
    if (l.imag() > 0) modes.push_back(l);
  std::sort(modes.begin(), modes.end(), [](const auto& a, const auto& b) { return a.imag() < b.imag(); });
  return modes;
}

}  // namespace tz::nn
