// Proof of the Synthesizer's dense and random attention (nn/attention/synthesizer.h): synthesizer.
#include <cmath>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "nn/attention/synthesizer.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
constexpr int64_t kC = 8, kH = 2, kL = 16, kT = 10;

std::shared_ptr<nn::Synthesizer> synth(bool random) {
  Generator gen(9);
  auto s = std::make_shared<nn::Synthesizer>(kC, kH, kL, random, false, gen);
  s->to(DType::f64);
  return s;
}

// Loops: row i of head h is softmax over j <= i of the logits B^h_i[j]; Y = W^O concat(Σ_j P V).
Tensor reference(nn::Synthesizer& s, const Tensor& x, bool random) {
  const int64_t B = x.size(0), T = x.size(1), D = kC / kH;
  Tensor v = s.value->forward(x);
  Tensor dense = random ? Tensor() : s.dense2->forward(relu(s.dense1->forward(x)));  // [B, T, H L]
  Tensor y = zeros({B, T, kC}, DType::f64);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < kH; ++h)
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> logit(size_t(i + 1));
        double top = -INFINITY, sum = 0;
        for (int64_t j = 0; j <= i; ++j) {
          logit[size_t(j)] = random ? s.table.at({h, i, j}) : dense.at({b, i, h * kL + j});
          top = std::max(top, logit[size_t(j)]);
        }
        for (double& l : logit) sum += (l = std::exp(l - top));
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0;
          for (int64_t j = 0; j <= i; ++j) acc += logit[size_t(j)] / sum * v.at({b, j, h * D + d});
          y.set({b, i, h * D + d}, acc);
        }
      }
  return s.out->forward(y);
}
}  // namespace

TZ_PROOF(synthesizer, "dense and random weights equal their loops and are causal. Random weights ignore the input") {
  NoGradGuard ng;
  Generator gx(10);
  Tensor x = randn({2, kT, kC}, gx, DType::f64);
  for (bool random : {false, true}) {
    auto s = synth(random);
    const double loops = testing::max_abs_diff(s->forward(x, {}), reference(*s, x, random));
    Tensor x2 = x.clone();
    core::copy_(x2.narrow(1, 4, kT - 4), randn({2, kT - 4, kC}, gx, DType::f64));
    const double prefix = testing::max_abs_diff(s->forward(x2, {}).narrow(1, 0, 4), s->forward(x, {}).narrow(1, 0, 4));
    auto st = s->make_state(2, kL, DType::f64);
    std::vector<Tensor> steps;
    for (int64_t t = 0; t < kT; ++t) steps.push_back(s->forward(x.narrow(1, t, 1), {.start = t}, st.get()));
    const double step = testing::max_abs_diff(cat(steps, 1), s->forward(x, {}));
    // The weights of two different inputs: the random form's are the same, the dense form's not.
    const double weights_moved = testing::max_abs_diff(s->weights(x, 0, 0, kT), s->weights(x2 * 3.0, 0, 0, kT));
    const std::string form = random ? "random" : "dense";
    MESSAGE(form, ": vs loops ", loops, "; prefix moved by a changed suffix ", prefix, "; token by token ", step,
            "; weights moved by another input ", weights_moved);
    CHECK(loops < 1e-12);
    CHECK(prefix == 0.0);
    CHECK(step < 1e-12);
    if (random) {
      TZ_PROOF_NUMBER("random form: weights moved by another input", weights_moved);
      CHECK(weights_moved == 0.0);
    } else {
      CHECK(weights_moved > 1e-3);
    }
  }
  Generator gen(1);
  nn::Synthesizer fixed(kC, kH, kL, true, true, gen);
  CHECK(fixed.named_parameters().size() == 4);  // value and out weights and biases: R is a buffer
}
