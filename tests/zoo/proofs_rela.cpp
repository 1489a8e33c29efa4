// Proof of rectified linear attention (nn/attention/features/rela.cpp): rela.
#include <cmath>

#include "tests/zoo/proofs.h"
#include "tests/zoo/proofs_attention.h"

using namespace tz;
using namespace tz::attn_proofs;

TZ_PROOF(rela, "weights are relu of the masked logits with exact zeros. All-negative logits give a zero head") {
  const int64_t T = 9;
  Tensor x = input(T);
  auto a = make_attn(R"({"attn_rela": true})", 40);
  randomise(a->qkv->weight, 41, 1.0);
  randomise(a->param("rela_gain"), 42, 1.0);
  randomise(a->linear("rela_gate")->weight, 43, 1.0);
  NoGradGuard no_grad;
  // The weights are exactly relu(q k^T / √D) on allowed keys and 0 above the diagonal.
  Tensor p = a->probabilities(x, {});
  Tensor z = raw_logits(*a, x);
  double worst = 0, row_sum_spread = 0;
  int64_t zeros = 0, allowed = 0;
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t i = 0; i < T; ++i) {
        double sum = 0;
        for (int64_t j = 0; j < T; ++j) {
          const double want = j <= i ? std::max(z.at({b, h, i, j}), 0.0) : 0.0;
          worst = std::max(worst, std::abs(p.at({b, h, i, j}) - want));
          if (j <= i) ++allowed, zeros += p.at({b, h, i, j}) == 0.0;
          sum += p.at({b, h, i, j});
        }
        row_sum_spread = std::max(row_sum_spread, std::abs(sum - 1));
      }
  MESSAGE("weights vs relu(logits) ", worst, "; exact zeros among allowed weights ", zeros, " of ", allowed,
          "; largest |row sum - 1| ", row_sum_spread, " (no softmax: rows are not normalised)");
  TZ_PROOF_NUMBER("fraction of allowed weights exactly 0", double(zeros) / double(allowed));
  CHECK(worst < 1e-12);
  CHECK(zeros > allowed / 5);
  CHECK(row_sum_spread > 0.1);

  // Every logit negative (one input row repeated, W_k = -W_q: q_i . k_j = -|x W_q|^2): every
  // weight is 0, so the heads are 0 before the gate and the layer outputs W_o's bias alone.
  {
    const int64_t C = kC;
    Tensor w = a->qkv->weight;  // rows: q, k, v
    core::copy_(w.narrow(0, C, C), -w.narrow(0, 0, C));
    Generator g(44);
    Tensor row = randn({1, 1, C}, g, DType::f64);
    Tensor same = row.expand({kB, T, C}).contiguous();
    Tensor out = a->forward(same, {});
    Tensor bias_only = a->out->bias.reshape({1, 1, C}).expand({kB, T, C});
    const double d = testing::max_abs_diff(out, bias_only);
    MESSAGE("all logits negative: |output - W_o bias| = ", d);
    CHECK(d == 0.0);
  }
  auto fresh = make_attn(R"({"attn_rela": true})", 45);
  randomise(fresh->qkv->weight, 46, 1.0);
  check_causal(*fresh, x);
  const double dd = decode_diff(*fresh, x);
  MESSAGE("decode vs forward ", dd);
  CHECK(dd < 1e-12);
  // ReLA-i (no gate) has no gate parameters; rela_gate without attn_rela is refused.
  CHECK_THROWS_AS(make_attn(R"({"attn_rela": true, "attn_rela_gate": false})", 47)->linear("rela_gate"), Error);
  CHECK_THROWS_WITH_AS(make_attn(R"({"attn_rela_gate": false})", 48), doctest::Contains("attn_rela"), Error);
  CHECK_THROWS_WITH_AS(make_attn(R"({"attn_rela": true, "attn_entmax": 1.5})", 49), doctest::Contains("attn_rela"),
                       Error);
}
