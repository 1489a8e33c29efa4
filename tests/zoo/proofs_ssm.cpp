// Proofs of the state-space mixers (nn/ssm/): Mamba and DenseMamba.
//   - its scan, fed by the mixer's own projections, equals the sequential recurrence written
//     with plain ops (f64, outputs, final state and gradients);
//   - step decoding (conv state + SSM state) and continuation from a returned state equal the
//     full forward;
//   - selectivity (the paper's table 1 shape): on selective copying the selective block learns
//     where the LTI ablation (delta, B, C input-independent, "ssm_lti") stays clearly below;
//   - induction heads (the paper's table 11 shape): trained at 64 positions, it recalls at 4x.
#include <doctest/doctest.h>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "models/zoo.h"
#include "nn/ssm/mamba.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"
#include "train/arena.h"

namespace tz::testing {
namespace {
const char* const kMambaLm = R"({"mixer": "mamba", "norm": "rmsnorm", "layout": "ss", "ssm_state": 4, "ssm_chunk": 3})";

// The mixer's scan against the loop of plain ops on the same inputs: the worst max-abs error
// over y, the final state and the gradients of x and of every parameter.
double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

double mamba_scan_vs_loop() {
  Generator gen(7);
  nn::Config c = nn::Config::parse(R"({"ssm_state": 5, "ssm_chunk": 4})");
  nn::Mamba m(nn::mamba_options({.dim = 8, .heads = 1, .context = 32, .depth = 1}, c), gen);
  m.to(DType::f64);
  Tensor x = randn({2, 13, 8}, gen, DType::f64).requires_grad_();
  Tensor w = randn({2, 13, 16}, gen, DType::f64), ws = randn({2, 16, 5}, gen, DType::f64);
  auto grads = [&](bool fused) {
    m.zero_grad();
    x.zero_grad();
    nn::Mamba::ScanInputs in = m.scan_inputs(x, nullptr);
    SelectiveScanResult r = fused
                                ? selective_scan(in.u, in.delta, in.A, in.Bm, in.Cm, m.D, in.z, Tensor(), {.chunk = 4})
                                : selective_scan_composite(in.u, in.delta, in.A, in.Bm, in.Cm, m.D, in.z);
    (sum(r.y * w) + sum(r.state * ws)).backward();
    std::vector<Tensor> out{r.y.detach().contiguous(), r.state.detach().contiguous(), x.grad().clone()};
    for (const auto& [name, p] : m.named_parameters()) {
      if (name.rfind("out_proj", 0) == 0) continue;  // after the scan
      INFO("parameter ", name);
      REQUIRE(p.grad().defined());
      out.push_back(p.grad().clone());
    }
    return out;
  };
  std::vector<Tensor> a = grads(true), b = grads(false);
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, max_abs_diff(a[i], b[i]));
  return worst;
}

// The models of the selectivity proof (the JSON object left open for the LTI key).
const char* const kSelConfig =
    R"({"mixer": "mamba", "norm": "rmsnorm", "layout": "ss", "dim": 32, "vocab": 16, "context": 64)";

// Held-out accuracy on selective copying (Mamba's section 4.1 task: vocabulary 16, here 48
// positions with 4 tokens to copy) after 1500 steps of the arena's recipe at lr 1e-2, for
// each config laid over the arena's base.
std::vector<double> selective_copy_accuracy(const std::vector<arena::Entry>& models) {
  arena::Options o{.models = models,
                   .task = "selective_copy_mamba",
                   .steps = 1500,
                   .batch = 32,
                   .seq_len = 48,
                   .vocab = 16,
                   .task_options = {.copy_len = 4},
                   .lr = 1e-2,
                   .threads = 1,
                   .out_dir = std::string(TZ_BINARY_DIR) + "/proofs_ssm_arena"};
  std::vector<double> acc;
  for (const arena::Result& r : arena::run(o)) {
    MESSAGE(r.name, ": accuracy ", r.val_accuracy.at(1), ", val loss ", r.val_loss.at(1), " (", r.wall_s, " s)");
    acc.push_back(r.val_accuracy.at(1));
  }
  return acc;
}
}  // namespace

TZ_PROOF(mamba, "fused selective scan == sequential recurrence, step decode (conv + SSM state) == full forward") {
  const double scan_err = mamba_scan_vs_loop();
  CHECK(scan_err <= 1e-10);
  const double step_err = lm_step_vs_forward(kMambaLm, 11);
  CHECK(step_err <= 1e-9);
  MESSAGE("scan vs loop ", scan_err, ", step vs forward ", step_err);
  TZ_PROOF_NUMBER("max |step - forward|", std::max(scan_err, step_err));
}

TEST_CASE("mamba selectivity: selective copying, selective block >= 0.95, the LTI ablation clearly below") {
  if (!learning_runs()) return;
  std::vector<double> acc = selective_copy_accuracy(
      {{"mamba LTI", std::string(kSelConfig) + R"(, "ssm_lti": true})"}, {"mamba", std::string(kSelConfig) + "}"}});
  REQUIRE(acc.size() == 2);
  const double fixed = acc[0], sel = acc[1];
  MESSAGE("selective copying accuracy: mamba ", sel, ", LTI ", fixed);
  CHECK(sel >= 0.95);
  CHECK(fixed <= sel - 0.2);
}

// The Mamba paper's contrast (its table 1: S4 18 %, Hyena 30 %, Mamba 99.8 % on selective
// copying): the LTI models, whose filter cannot depend on the input, clearly below the
// selective scan on the same task, model size and budget as above. A long run: the arena
// table is printed by the MESSAGEs. Measured: mamba 1.000, s4d 0.650, hyena 0.065 (chance
// 1/14: at lr 1e-2 its loss never leaves ln 14; the paper's 30 % was at its own recipe).
TEST_CASE("the LTI models s4d and hyena are clearly below mamba on selective copying") {
  if (!long_runs()) return;  // about a minute: TZ_LONG_PROOFS=1
  auto with_mixer = [](const char* mixer) {
    std::string c = std::string(kSelConfig) + "}";
    return c.replace(c.find("\"mamba\""), 7, cat_str('"', mixer, '"'));
  };
  std::vector<double> acc = selective_copy_accuracy(
      {{"mamba", with_mixer("mamba")}, {"s4d", with_mixer("s4d")}, {"hyena", with_mixer("hyena")}});
  REQUIRE(acc.size() == 3);
  CHECK(acc[0] >= 0.95);
  CHECK(acc[1] <= acc[0] - 0.2);  // as the LTI ablation above
  CHECK(acc[2] <= acc[0] - 0.2);
}

}  // namespace tz::testing

namespace tz::testing {

// Induction heads in the Mamba paper's form (its section 4.1, table 11: two layers of width
// 64, trained at 256, evaluated up to 2^20): a SPECIAL token at a random place and again at the
// end; the answer is the token that followed the first one. Trained at 64 positions, evaluated
// on held-out sequences of 64, 128 and 256, where the first SPECIAL can lie 4x farther back
// than any seen. A long run (about 10 minutes). Measured: 1.000 at 1x, 2x and 4x (val loss
// 0.0001 / 0.0001 / 0.0006); at 2000 steps 1.000 at 1x but 0.916 at 4x: extrapolation needs
// the selection (Δ near 0 on every other token) learned well past where 1x is solved.
TEST_CASE("mamba induction heads: trained at 64 positions and >= 0.95 accurate at 4x the length") {
  if (!long_runs()) return;  // TZ_LONG_PROOFS=1
  arena::Options o{.models = {{"mamba", R"({"mixer": "mamba", "norm": "rmsnorm", "layout": "ss", "dim": 64})"}},
                   .task = "induction_heads_mamba",
                   .steps = 4000,
                   .batch = 64,
                   .seq_len = 64,
                   .vocab = 16,
                   .lr = 3e-3,
                   .eval_lengths = {1, 2, 4},
                   .threads = 1,
                   .out_dir = std::string(TZ_BINARY_DIR) + "/proofs_ssm_induction"};
  const arena::Result r = arena::run(o).at(0);
  for (int64_t m : {1, 2, 4}) REQUIRE(r.val_accuracy.count(m));
  MESSAGE("mamba on induction heads (trained at 64): accuracy @64 ", r.val_accuracy.at(1), ", @128 ",
          r.val_accuracy.at(2), ", @256 ", r.val_accuracy.at(4), " (chance 1/15; ", r.wall_s, " s)");
  CHECK(r.val_accuracy.at(1) >= 0.95);
  CHECK(r.val_accuracy.at(4) >= 0.95);
}

TZ_PROOF(densemamba, "m = 0 reduces to Mamba, recurrent decode == parallel forward with the dense connections") {
  const std::string base = R"({"vocab": 11, "dim": 16, "depth": 3, "heads": 2, "context": 16, "mixer": "mamba",
                               "norm": "rmsnorm", "layout": "sss", "ssm_chunk": 3)";
  Generator gen(31);
  auto dense = zoo::make_lm(nn::Config::parse(base + R"(, "dense_m": 2})"), gen);
  auto plain = zoo::make_lm(nn::Config::parse(base + "}"), gen);
  dense->to(DType::f64);
  plain->to(DType::f64);
  dense->eval();
  plain->eval();
  NoGradGuard no_grad;
  // The transitions at 0 (their initial value): the same function as the Mamba stack with the
  // same weights.
  std::map<std::string, Tensor> weights;
  int64_t transitions = 0;
  for (auto& [name, p] : dense->named_parameters()) {
    if (name.find(".dense.") == std::string::npos)
      weights[name] = p;
    else if (name.find(".dense.proj") != std::string::npos) {
      ++transitions;
      CHECK(max_abs(p) == 0);
    }
  }
  CHECK(transitions == 3);  // layer 1 reads layer 0, layer 2 reads layers 1 and 0
  plain->load_state_dict(weights);
  Tensor ids = randint(0, 11, {2, 12}, gen);
  const double reduce_err = max_abs_diff(dense->forward(ids), plain->forward(ids));
  CHECK(reduce_err == 0);
  // Transitions drawn away from 0: the output moves, and decoding token by token (each step
  // passing its layers' outputs on) equals the full forward.
  for (auto& [name, p] : dense->named_parameters())
    if (name.find(".dense.proj") != std::string::npos) core::copy_(p, randn(p.shape(), gen, DType::f64) * 0.3);
  Tensor full = dense->forward(ids);
  const double moved = max_abs_diff(full, plain->forward(ids));
  CHECK(moved > 1e-3);
  auto state = dense->make_state(2, 12);
  double step_err = 0;
  for (int64_t t = 0; t < 12; ++t)
    step_err = std::max(step_err, max_abs_diff(dense->step(ids.narrow(1, t, 1), state), full.narrow(1, t, 1)));
  CHECK(step_err <= 1e-9);
  MESSAGE("m = 0 vs mamba ", reduce_err, "; transitions on: output moved ", moved, ", step vs forward ", step_err);
  TZ_PROOF_NUMBER("max |step - forward|", step_err);
}

}  // namespace tz::testing
