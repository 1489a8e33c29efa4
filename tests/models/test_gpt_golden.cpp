// The whole GPT against PyTorch, in f64 (as llm.c's test_gpt2 checks its model against the
// PyTorch reference): tests/models/fixtures/gpt_golden.safetensors, written by
// make_gpt_golden.py (how to regenerate it is at the top of that script), holds a tiny GPT's
// weights under tensorzoo's names, a batch of ids and targets, and what PyTorch computed
// from them: the logits, the loss, the gradient of the loss for every parameter, and the
// losses and final weights of three AdamW steps (the trainer's decay groups, no clip, no
// schedule). We build the same model from the recorded config, load the weights by name
// and compare everything in f64 by relative RMS error.
//
// Tolerance: kTol = 1e-12. Both sides compute in f64 but in different orders (GEMM blocking,
// reduction order, erfc vs erf, the fused attention kernel), so they differ by rounding:
// measured at most 1.2e-15 on logits, loss and gradients and 8e-16 on the AdamW losses and
// final weights, on both kernel paths.
// A real change of the math (a wrong scale, eps, activation, mask or update rule) moves the
// numbers by far more than 1e-12; a 1e-9 change of one weight already fails.
//
// One exception, from the math and not from the code: the key part of each attention's
// qkv.bias (elements C..2C: the layout is [q | k | v]) has an exactly zero gradient, since
// adding b_k to every key adds the same q_i . b_k to every score of row i, which softmax
// ignores. Both sides compute it as rounding noise (~1e-17), and AdamW's first steps divide
// by sqrt(v^) + eps ~ |g| + eps, which turns the noise into steps of ~lr |g| / eps ~ 1e-11
// that differ between the two sides (relative error 1e-10 on the whole bias). So the key
// bias is checked to stay where it started (both sides, within steps lr kNoiseGrad / eps)
// instead of against PyTorch's noise, and its gradient to be zero up to rounding; the query
// and value parts are compared at kTol as usual.
#include <algorithm>
#include <set>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/kernels/gemm.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "core/tensor.h"
#include "models/gpt.h"
#include "optim/adam.h"
#include "optim/optim.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {

const char* kPath = TZ_SOURCE_DIR "/tests/models/fixtures/gpt_golden.safetensors";
constexpr double kTol = 1e-12;
// Bound on the rounding noise of the key bias's gradient (measured 2e-17). Each AdamW step
// moves a parameter by at most lr max|g| / eps, so 3 steps of lr 1e-2, eps 1e-8 move the key
// bias by at most 9e-10 (measured: 9e-11); a real gradient would move it by ~lr per step.
constexpr double kNoiseGrad = 3e-16;

bool is_qkv_bias(const std::string& name) {
  const std::string suffix = "mixer.qkv.bias";
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}
// Part i (0 = q, 1 = k, 2 = v) of a qkv bias [3 C].
Tensor qkv_part(const Tensor& bias, int64_t i) {
  const int64_t C = bias.size(0) / 3;
  return bias.narrow(0, i * C, C).contiguous();
}

struct Golden {
  TensorFile file;
  nn::Config config, adamw;
  std::vector<std::string> decayed;  // names in AdamW's weight-decay group

  const Tensor& at(const std::string& name) const {
    auto it = file.tensors.find(name);
    TZ_CHECK(it != file.tensors.end(), "gpt golden: no tensor '", name, "' in ", kPath);
    return it->second;
  }
  // Tensors "<prefix><name>", keyed by name.
  std::map<std::string, Tensor> with_prefix(const std::string& prefix) const {
    std::map<std::string, Tensor> out;
    for (const auto& [n, t] : file.tensors)
      if (n.rfind(prefix, 0) == 0) out[n.substr(prefix.size())] = t;
    return out;
  }
};

const Golden& golden() {
  static const Golden g = [] {
    Golden r;
    r.file = load_safetensors(kPath);
    const auto& meta = r.file.metadata;
    for (const char* key : {"config", "adamw", "decayed", "torch", "norm_eps"})
      TZ_CHECK(meta.count(key), "gpt golden: metadata has no '", key, "'");
    r.config = nn::Config::parse(meta.at("config"), "gpt golden config");
    r.adamw = nn::Config::parse(meta.at("adamw"), "gpt golden adamw");
    r.decayed = nn::Config::parse("{\"decayed\": " + meta.at("decayed") + "}").get_strings("decayed", {});
    return r;
  }();
  return g;
}

// The recorded GPT in f64 with the recorded weights (strict: every name must match).
std::unique_ptr<models::GPT> load_model(const Golden& g) {
  const nn::Config& c = g.config;
  models::GPTConfig config{.vocab = c.get_int("vocab", 0),
                           .dim = c.get_int("dim", 0),
                           .depth = c.get_int("depth", 0),
                           .heads = c.get_int("heads", 0),
                           .context = c.get_int("context", 0),
                           .mlp_mult = c.get_int("mlp_mult", 0)};
  Generator gen(0);  // the draw is overwritten by the recorded weights
  auto m = std::make_unique<models::GPT>(config, gen);
  m->to(DType::f64);
  m->load_state_dict(g.with_prefix("param/"));
  return m;
}

// "" when the recorded names are exactly the model's, else the names missing and extra.
std::string name_mismatch(const std::map<std::string, Tensor>& recorded, const std::set<std::string>& model) {
  std::string out;
  for (const std::string& n : model)
    if (!recorded.count(n)) out += " missing '" + n + "'";
  for (const auto& [n, t] : recorded)
    if (!model.count(n)) out += " unexpected '" + n + "'";
  return out;
}

// Runs `body` once on the default kernels (OpenBLAS, SIMD) and once on our own scalar ones:
// PyTorch's numbers must hold on both paths.
template <class F>
void on_both_kernel_paths(F&& body) {
  struct Restore {
    ~Restore() {
      kernels::set_blas_enabled(true);
      set_simd_enabled(true);
    }
  } restore;
  for (bool fast : {true, false}) {
    CAPTURE(fast);
    kernels::set_blas_enabled(fast);
    set_simd_enabled(fast);
    body();
  }
}

}  // namespace

TEST_CASE("gpt golden: the fixture holds one weight, gradient and final weight per parameter") {
  const Golden& g = golden();
  auto model = load_model(g);
  std::set<std::string> params;
  for (const auto& [n, p] : model->named_parameters()) params.insert(n);
  CHECK(params.size() == 28);  // tok_emb, pos.table, 2 x 12 per block, norm_f weight and bias
  // A parameter whose gradient (or final weight) is missing or named otherwise fails here.
  for (const char* prefix : {"param/", "grad/", "adamw/"}) {
    const std::string wrong = name_mismatch(g.with_prefix(prefix), params);
    CHECK_MESSAGE(wrong.empty(), std::string(prefix), wrong);
  }
  CHECK(g.at("ids").dtype() == DType::i64);
  CHECK(g.at("logits").shape() == Shape{2, 16, g.config.get_int("vocab", 0)});
  CHECK(g.file.metadata.at("norm_eps") == "1e-05");  // LayerNorm's default eps (nn/norm/norms.cpp)
  MESSAGE("gpt golden written by PyTorch ", g.file.metadata.at("torch"));
}

TEST_CASE("gpt golden: logits, loss and every parameter's gradient match PyTorch in f64") {
  const Golden& g = golden();
  on_both_kernel_paths([&] {
    auto model = load_model(g);
    model->train();  // dropout is 0: train and eval give the same numbers
    Tensor logits = model->forward(g.at("ids"));
    double e_logits = rel_rms(logits.detach(), g.at("logits"));
    CHECK_MESSAGE(e_logits <= kTol, "logits: rel rms ", e_logits);

    Tensor loss = model->loss(g.at("ids"), g.at("targets"));
    double e_loss = rel_rms(loss.detach().reshape({1}), g.at("loss").reshape({1}));
    CHECK_MESSAGE(e_loss <= kTol, "loss: rel rms ", e_loss, " (", loss.item(), " vs ", g.at("loss").item(), ")");
    loss.backward();

    const auto want = g.with_prefix("grad/");
    double worst = 0;
    std::string worst_name;
    for (const auto& [name, p] : model->named_parameters()) {
      CAPTURE(name);
      auto it = want.find(name);
      REQUIRE_MESSAGE(it != want.end(), "no PyTorch gradient recorded for ", name);
      REQUIRE_MESSAGE(p.grad().defined(), "backward gave ", name, " no gradient");
      double e = rel_rms(p.grad(), it->second);
      CHECK_MESSAGE(e <= kTol, "gradient of ", name, ": rel rms ", e);
      if (e >= worst) worst = e, worst_name = name;
      if (is_qkv_bias(name)) {  // the key bias: zero up to rounding, here and in PyTorch
        const Tensor zero = zeros({p.size(0) / 3}, DType::f64);
        CHECK_MESSAGE(max_abs_diff(qkv_part(p.grad(), 1), zero) <= kNoiseGrad, "key-bias gradient of ", name);
        CHECK_MESSAGE(max_abs_diff(qkv_part(it->second, 1), zero) <= kNoiseGrad, "recorded key-bias gradient of ",
                      name);
      }
    }
    MESSAGE("logits ", e_logits, ", loss ", e_loss, ", worst gradient ", worst, " (", worst_name, ")");
  });
}

TEST_CASE("gpt golden: three AdamW steps match torch.optim.AdamW, losses and final weights") {
  const Golden& g = golden();
  on_both_kernel_paths([&] {
    auto model = load_model(g);
    const nn::Config& a = g.adamw;
    auto groups = optim::decay_groups(model->named_parameters(), a.get_double("weight_decay", -1));
    // The fixture decays what the trainer's decay_groups decays; if that rule changes on
    // purpose, regenerate the fixture with the script's decayed() changed to match.
    CHECK(groups[0].names == g.decayed);
    optim::AdamW opt(std::move(groups),
                     optim::AdamWOptions{.lr = a.get_double("lr", -1),
                                         .betas = {a.get_double("beta1", -1), a.get_double("beta2", -1)},
                                         .eps = a.get_double("eps", -1)});
    const int64_t steps = a.get_int("steps", 0);
    REQUIRE(steps == 3);
    const double key_bias_drift = double(steps) * a.get_double("lr", -1) * kNoiseGrad / a.get_double("eps", -1);
    std::vector<double> losses;
    for (int64_t s = 0; s <= steps; ++s) {
      opt.zero_grad();
      Tensor loss = model->loss(g.at("ids"), g.at("targets"));
      losses.push_back(loss.item());
      if (s == steps) break;
      loss.backward();
      opt.step();
    }
    Tensor got = from_vector(losses, {int64_t(losses.size())});
    double e_losses = rel_rms(got, g.at("adamw_losses"));
    CHECK_MESSAGE(e_losses <= kTol, "AdamW losses: rel rms ", e_losses);

    const auto want = g.with_prefix("adamw/");
    double worst = 0, drift = 0;
    std::string worst_name;
    for (const auto& [name, p] : model->named_parameters()) {
      CAPTURE(name);
      auto it = want.find(name);
      REQUIRE_MESSAGE(it != want.end(), "no weight after AdamW recorded for ", name);
      if (is_qkv_bias(name)) {  // see the top of the file
        const Tensor start = g.at("param/" + name);
        for (int64_t i : {0, 2}) {
          double e = rel_rms(qkv_part(p.detach(), i), qkv_part(it->second, i));
          CHECK_MESSAGE(e <= kTol, "weight after 3 AdamW steps ", name, " part ", i, ": rel rms ", e);
          if (e >= worst) worst = e, worst_name = name;
        }
        double ours = max_abs_diff(qkv_part(p.detach(), 1), qkv_part(start, 1));
        double theirs = max_abs_diff(qkv_part(it->second, 1), qkv_part(start, 1));
        CHECK_MESSAGE(ours <= key_bias_drift, "key bias of ", name, " moved by ", ours);
        CHECK_MESSAGE(theirs <= key_bias_drift, "recorded key bias of ", name, " moved by ", theirs);
        drift = std::max({drift, ours, theirs});
        continue;
      }
      double e = rel_rms(p.detach(), it->second);
      CHECK_MESSAGE(e <= kTol, "weight after 3 AdamW steps ", name, ": rel rms ", e);
      if (e >= worst) worst = e, worst_name = name;
    }
    MESSAGE("AdamW losses ", e_losses, ", worst final weight ", worst, " (", worst_name, "), key-bias drift ", drift);
  });
}

}  // namespace tz::testing
