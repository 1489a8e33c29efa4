// Complex tensors as pairs of real tensors (re, im) with the autograd ops underneath, for the
// state-space layers whose parameters are complex (S4's Λ, P, B, C). Broadcasting as the real ops.
#pragma once

#include "autograd/ops.h"

namespace tz::nn {

struct Cx {
  Tensor re, im;
};
inline Cx operator+(const Cx& a, const Cx& b) { return {a.re + b.re, a.im + b.im}; }
inline Cx operator-(const Cx& a, const Cx& b) { return {a.re - b.re, a.im - b.im}; }
inline Cx operator*(const Cx& a, const Cx& b) { return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re}; }
inline Cx operator*(const Cx& a, const Tensor& s) { return {a.re * s, a.im * s}; }  // by a real tensor
inline Cx operator*(const Cx& a, double s) { return {a.re * s, a.im * s}; }
inline Cx conj(const Cx& a) { return {a.re, -a.im}; }
inline Cx operator/(const Cx& a, const Cx& b) {
  Tensor den = b.re * b.re + b.im * b.im;
  return {(a.re * b.re + a.im * b.im) / den, (a.im * b.re - a.re * b.im) / den};
}
inline Cx unsqueeze(const Cx& a, int64_t d) { return {a.re.unsqueeze(d), a.im.unsqueeze(d)}; }
inline Cx sum(const Cx& a, const Shape& dims) { return {sum(a.re, dims), sum(a.im, dims)}; }
// [..., M, K] @ [..., K, N] in four real products.
inline Cx matmul(const Cx& a, const Cx& b) {
  return {matmul(a.re, b.re) - matmul(a.im, b.im), matmul(a.re, b.im) + matmul(a.im, b.re)};
}

}  // namespace tz::nn
