// Kanerva's Sparse Distributed Memory read, and how softmax attention approximates it.
// "Attention Approximates Sparse Distributed Memory", Bricken, Pehlevan 2021, arXiv:2111.05498;
// SDM: Kanerva 1988.
//
// Addresses are binary vectors in {0, 1}^n. A pattern p_mu is written with value v_mu to every
// hard location within Hamming distance d of p_mu; a query xi reads every location within d
// of xi. With a location at every point of {0, 1}^n (the paper's continuous limit), the read
// weighs each pattern by the number of locations both balls hold, which depends only on the
// distance h = |xi - p_mu|_H:
//   I(h) = |B(xi, d) n B(p_mu, d)| = sum_{k, l : k + l <= d, k + h - l <= d} C(n - h, k) C(h, l)
// (k of the n - h agreeing bits flipped, l of the h differing bits set as p_mu has them), and
//   read(xi) = sum_mu I(h_mu) v_mu / sum_mu I(h_mu).
// I(h) falls roughly exponentially in h, and h = n (1 - cos) / 2 for the +-1 forms of the
// vectors, so the weights are close to softmax(beta cos(xi, p_mu)): attention with unit-norm
// queries and keys and a learned scale beta (qk_norm), the paper's sec. 3. sdm_fit_beta gives
// the beta of the least-squares fit of log I(h) over h <= d, the distances a read draws its
// weight from. The fit is not exact: log I is concave in h, and I(h) = I(h + 1) for odd h.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace tz::nn {

// log I(h) for 0 <= h <= n, 0 <= d <= n; -inf where the balls do not meet (h > 2d).
double sdm_log_intersection(int64_t n, int64_t d, int64_t h);

// The read weights of patterns [M, n] (entries 0 or 1) for a query [n]: I(h_mu) / sum I,
// f64 [M]. Throws when no pattern lies within 2d of the query (nothing is read).
Tensor sdm_weights(const Tensor& patterns, const Tensor& query, int64_t d);
// The read itself: sdm_weights . values [M, Dv] -> [Dv].
Tensor sdm_read(const Tensor& patterns, const Tensor& values, const Tensor& query, int64_t d);

// beta such that log I(h) ~ beta cos + c, cos = 1 - 2h/n, by least squares over h in [0, d].
double sdm_fit_beta(int64_t n, int64_t d);

}  // namespace tz::nn
