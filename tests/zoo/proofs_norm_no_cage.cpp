// Proof of normalised attention without the probability cage
// (nn/attention/features/norm_no_cage.cpp): normalized_attn_no_cage.
#include <cmath>

#include "tests/zoo/proofs.h"
#include "tests/zoo/proofs_attention.h"

using namespace tz;
using namespace tz::attn_proofs;

TZ_PROOF(normalized_attn_no_cage,
         "rows are the logits normalised over the allowed keys only. Zero mean and unit variance before the gain") {
  const int64_t T = 9;
  Tensor x = input(T);
  auto a = make_attn(R"({"attn_norm_no_cage": true})", 60);
  randomise(a->qkv->weight, 61, 1.0);
  NoGradGuard no_grad;
  // g = 1, b = 0 (init): every row with two or more allowed keys has mean 0 and variance
  // σ² / (σ² + ε) over its allowed keys, and 0 beyond them.
  Tensor p = a->probabilities(x, {});
  double worst_mean = 0, worst_var = 0, above = 0, row_sum_spread = 0;
  int64_t negative = 0;
  Tensor z = raw_logits(*a, x);
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t i = 0; i < T; ++i) {
        double mean = 0, var = 0, zm = 0, zv = 0, sum = 0;
        for (int64_t j = 0; j <= i; ++j)
          mean += p.at({b, h, i, j}) / double(i + 1), zm += z.at({b, h, i, j}) / double(i + 1);
        for (int64_t j = 0; j <= i; ++j) {
          var += std::pow(p.at({b, h, i, j}) - mean, 2) / double(i + 1);
          zv += std::pow(z.at({b, h, i, j}) - zm, 2) / double(i + 1);
          negative += p.at({b, h, i, j}) < 0;
          sum += p.at({b, h, i, j});
        }
        for (int64_t j = i + 1; j < T; ++j) above = std::max(above, std::abs(p.at({b, h, i, j})));
        if (i == 0) continue;
        worst_mean = std::max(worst_mean, std::abs(mean));
        worst_var = std::max(worst_var, std::abs(var - zv / (zv + 1e-6)));
        row_sum_spread = std::max(row_sum_spread, std::abs(sum - 1));
      }
  MESSAGE("rows: |mean| ", worst_mean, ", |variance - σ²/(σ²+ε)| ", worst_var, ", above the diagonal ", above,
          "; negative weights ", negative, ", largest |row sum - 1| ", row_sum_spread);
  TZ_PROOF_NUMBER("worst |row mean| over allowed keys", worst_mean);
  CHECK(worst_mean < 1e-12);
  CHECK(worst_var < 1e-12);
  CHECK(above == 0.0);
  CHECK(negative > 0);  // the weights leave the simplex
  CHECK(row_sum_spread > 0.5);

  // A gain and a bias per head: row i of head h is g_h (z - μ) / √(σ² + ε) + b_h, by loops.
  randomise(a->param("cage_gain"), 62, 1.0);
  randomise(a->param("cage_bias"), 63, 1.0);
  p = a->probabilities(x, {});
  double worst = 0;
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t i = 0; i < T; ++i) {
        double zm = 0, zv = 0;
        for (int64_t j = 0; j <= i; ++j) zm += z.at({b, h, i, j}) / double(i + 1);
        for (int64_t j = 0; j <= i; ++j) zv += std::pow(z.at({b, h, i, j}) - zm, 2) / double(i + 1);
        for (int64_t j = 0; j <= i; ++j) {
          const double want = a->param("cage_gain").at({h}) * (z.at({b, h, i, j}) - zm) / std::sqrt(zv + 1e-6) +
                              a->param("cage_bias").at({h});
          worst = std::max(worst, std::abs(p.at({b, h, i, j}) - want));
        }
      }
  MESSAGE("with gain and bias, vs loops: ", worst, "; decode vs forward ", decode_diff(*a, x));
  CHECK(worst < 1e-12);
  check_causal(*a, x);
  CHECK(decode_diff(*a, x) < 1e-12);
}
