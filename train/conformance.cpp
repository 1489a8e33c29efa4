#include "train/conformance.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/safetensors.h"
#include "data/tasks.h"
#include "models/wrappers.h"
#include "models/zoo.h"
#include "train/fit.h"

namespace tz::conformance {

namespace {
constexpr int64_t kVocab = 16, kB = 2, kT = 12;

std::shared_ptr<models::Model> build(const std::string& id, uint64_t seed) {
  nn::Config c = nn::Config::parse(base_config(), "conformance base");
  c.merge(nn::Config::parse(zoo::registry().get(id).test_config, id + " test_config"));
  Generator gen(seed);
  return zoo::make_model(c, gen);
}

double max_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return INFINITY;
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::isnan(x[i] - y[i]) ? INFINITY : std::abs(x[i] - y[i]));
  return m;
}

bool finite(const Tensor& t) {
  for (double v : t.to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

CheckResult check(const std::string& name, const std::function<CheckResult()>& fn) {
  try {
    CheckResult r = fn();
    r.check = name;
    return r;
  } catch (const std::exception& e) {
    return {name, Outcome::failed, std::string("threw: ") + e.what()};
  }
}

CheckResult pass(const std::string& detail) { return {"", Outcome::passed, detail}; }
CheckResult fail(const std::string& detail) { return {"", Outcome::failed, detail}; }
CheckResult na(const std::string& detail) { return {"", Outcome::not_applicable, detail}; }

// Check 5: `a` saved and loaded into `b` (built from another seed) gives identical outputs.
template <class Model, class Forward>
CheckResult save_load(const Model& a, const Model& b, const std::string& id, const Forward& forward) {
  a->eval();
  b->eval();
  std::string path = (std::filesystem::temp_directory_path() /
                      ("tz_conformance_" + id + "_" + std::to_string(::getpid()) + ".safetensors")).string();
  a->save(path);
  b->load(path);
  std::filesystem::remove(path);
  NoGradGuard no_grad;
  double d = max_diff(forward(*a), forward(*b));
  return d == 0 ? pass("bit-identical outputs") : fail(cat_str("outputs differ by ", d));
}

// Check 6: AdamW with a 30-step warm-up (post-norm needs it) on `next_loss` for `steps`
// steps; passes when the mean of the last 10 losses is at most `fraction` x the first 10's.
CheckResult learn(nn::Module& m, const std::function<Tensor()>& next_loss, const std::string& id,
                  const Options& options, const std::string& what) {
  const nn::VariantInfo* v = zoo::registry().find(id);
  const double lr = v && v->learn_lr > 0 ? v->learn_lr : 1e-2;
  const int64_t window = 10, steps = options.learn_steps;
  const auto records = train::fit(m.named_parameters(), next_loss,
                                  {.steps = steps, .recipe = {.lr = lr, .warmup = 30, .schedule = "constant"}});
  double first = 0, last = 0;
  for (const train::StepRecord& r : records) {
    if (r.step <= window) first += r.loss / window;
    if (r.step > steps - window) last += r.loss / window;
  }
  std::string detail = cat_str(what, " loss ", first, " -> ", last, " in ", steps, " steps at lr ", lr);
  return last <= options.learn_fraction * first ? pass(detail)
                                                : fail(detail + cat_str(" (needs <= ", options.learn_fraction, "x)"));
}
}  // namespace

std::string base_config() {
  return R"({"vocab": 16, "dim": 16, "depth": 2, "heads": 2, "context": 24})";
}

const char* outcome_name(Outcome o) {
  return o == Outcome::passed ? "pass" : o == Outcome::failed ? "FAIL" : "n/a";
}

namespace {
// Float inputs follow the model's dtype (f64 for the gradient check); ids and masks stay i64.
std::vector<Tensor> as_dtype(const std::vector<Tensor>& in, DType dt) {
  std::vector<Tensor> out;
  for (auto& t : in) out.push_back(t.dtype() == DType::i64 ? t : t.to(dt));
  return out;
}

std::shared_ptr<models::Model> build_model(const std::string& id, uint64_t seed) {
  const nn::VariantInfo& v = zoo::registry().get(id);
  Generator gen(seed);
  auto m = std::dynamic_pointer_cast<models::Model>(
      v.model(nn::Config::parse(v.test_config, id + " test_config"), gen));
  TZ_CHECK(m, id, ": its model factory must return a models::Model");
  return m;
}

// The same six checks for models whose inputs are not token ids (models/wrappers.h): each
// brings its own example batch and learning task; causality is checked on the input it
// names (the decoder's target tokens, the causal wrapper's x).
std::vector<CheckResult> run_model_checks(const std::string& id, const Options& options) {
  std::vector<CheckResult> results;
  Generator data(7);
  models::Model::Batch ex = build_model(id, 1)->sample(kB, data);
  results.push_back(check("build", [&] {
    auto m = build_model(id, 1);
    Tensor y = m->forward(ex.inputs);
    if (!finite(y)) return fail("non-finite output");
    return pass(cat_str(m->num_parameters(), " parameters, output ", y.shape()));
  }));
  if (results.back().outcome == Outcome::failed) return results;
  results.push_back(check("grad", [&] {
    auto m = build_model(id, 2);
    m->to(DType::f64);
    m->eval();
    models::Model::Batch e64{as_dtype(ex.inputs, DType::f64), ex.targets.dtype() == DType::i64 ? ex.targets : ex.targets.to(DType::f64)};
    std::vector<Tensor> params = m->parameters();
    GradcheckOptions opt;
    opt.max_elements = 16;
    for (auto& [name, p] : m->named_parameters()) opt.names.push_back(name);
    opt.atol = 1e-6;
    opt.rtol = 1e-4;
    GradcheckResult r = gradcheck([&](const std::vector<Tensor>&) { return m->loss(e64); }, params, opt);
    return r.ok ? pass(cat_str(params.size(), " tensors, max error ", r.max_abs_error)) : fail(r.report);
  }));
  results.push_back(check("causal", [&] {
    auto m = build_model(id, 3);
    const int k = m->causal_input();
    if (k < 0) return na(m->why_not_causal());
    m->to(DType::f64);
    m->eval();
    NoGradGuard no_grad;
    const int64_t t = 5;
    std::vector<Tensor> a = as_dtype(ex.inputs, DType::f64), b = a;
    Generator g2(99);
    Tensor other = as_dtype(m->sample(kB, g2).inputs, DType::f64)[size_t(k)];
    b[size_t(k)] = a[size_t(k)].clone();
    const int64_t T = a[size_t(k)].size(1);
    core::copy_(b[size_t(k)].narrow(1, t + 1, T - t - 1), other.narrow(1, t + 1, T - t - 1));
    Tensor y1 = m->forward(a), y2 = m->forward(b);
    double before = max_diff(y1.narrow(1, 0, t + 1), y2.narrow(1, 0, t + 1));
    double after = max_diff(y1.narrow(1, t + 1, T - t - 1), y2.narrow(1, t + 1, T - t - 1));
    if (before > 1e-12) return fail(cat_str("outputs up to t=", t, " moved by ", before));
    if (!(after > 1e-9)) return fail("later outputs did not react to the change (test is vacuous)");
    return pass(cat_str("input ", k, ": prefix unchanged (max diff ", before, "), suffix moved ", after));
  }));
  results.push_back(check("step", [&] { return na(build_model(id, 4)->why_no_step()); }));
  results.push_back(check("io", [&] {
    return save_load(build_model(id, 5), build_model(id, 6), id, [&](auto& m) { return m.forward(ex.inputs); });
  }));
  results.push_back(check("learns", [&] {
    if (!options.learn) return na("skipped");
    auto m = build_model(id, 8);
    Generator gen(11);
    return learn(*m, [&] { return m->loss(m->sample(16, gen)); }, id, options, "own task");
  }));
  return results;
}
}  // namespace

std::vector<CheckResult> run_checks(const std::string& id, const Options& options) {
  if (const nn::VariantInfo* v = zoo::registry().find(id); v && v->model) return run_model_checks(id, options);
  std::vector<CheckResult> results;
  Generator data(7);
  Tensor ids = randint(0, kVocab, {kB, kT}, data);
  Tensor targets = randint(0, kVocab, {kB, kT}, data);

  // 1. Builds; forward has the right shape and finite values.
  results.push_back(check("build", [&] {
    auto m = build(id, 1);
    Tensor y = m->forward(ids);
    if (y.shape() != Shape{kB, kT, kVocab}) return fail(cat_str("logits shape ", y.shape(), ", expected ", Shape{kB, kT, kVocab}));
    if (!finite(y)) return fail("non-finite logits");
    return pass(cat_str(m->num_parameters(), " parameters"));
  }));
  if (results.back().outcome == Outcome::failed) return results;

  // 2. Gradcheck in f64 of the loss w.r.t. every parameter (a sample of each).
  results.push_back(check("grad", [&] {
    auto m = build(id, 2);
    m->to(DType::f64);
    m->eval();  // no dropout: the loss must be a function of the parameters alone
    if (const nn::VariantInfo* v = zoo::registry().find(id); v && v->randomise) {
      Generator gen(21);
      v->randomise(*m, gen);
    }
    std::vector<Tensor> params = m->parameters();
    GradcheckOptions opt;
    opt.max_elements = 16;  // stratified: every row block of a fused weight gets one
    for (auto& [name, p] : m->named_parameters()) opt.names.push_back(name);
    opt.atol = 1e-6;
    opt.rtol = 1e-4;
    GradcheckResult r = gradcheck([&](const std::vector<Tensor>&) { return m->loss(ids, targets); }, params, opt);
    return r.ok ? pass(cat_str(params.size(), " tensors, max error ", r.max_abs_error)) : fail(r.report);
  }));

  // 3. Causality: changing tokens after position t leaves logits 0..t unchanged.
  results.push_back(check("causal", [&] {
    auto m = build(id, 3);
    if (!m->causal()) return na("not causal (by design)");
    m->to(DType::f64);
    m->eval();
    NoGradGuard no_grad;
    const int64_t t = 5;
    Tensor changed = ids.clone();
    for (int64_t b = 0; b < kB; ++b)
      for (int64_t j = t + 1; j < kT; ++j) changed.set({b, j}, double((int64_t(ids.at({b, j})) + 3) % kVocab));
    Tensor y1 = m->forward(ids), y2 = m->forward(changed);
    double before = max_diff(y1.narrow(1, 0, t + 1), y2.narrow(1, 0, t + 1));
    double after = max_diff(y1.narrow(1, t + 1, kT - t - 1), y2.narrow(1, t + 1, kT - t - 1));
    if (before > 1e-12) return fail(cat_str("logits up to t=", t, " moved by ", before));
    if (!(after > 1e-9)) return fail("later logits did not react to the change (test is vacuous)");
    return pass(cat_str("prefix unchanged (max diff ", before, "), suffix moved ", after));
  }));

  // 4. Step form == parallel form, one token at a time, in f64.
  results.push_back(check("step", [&] {
    auto m = build(id, 4);
    if (!m->has_step()) return na(m->why_no_step());
    m->to(DType::f64);
    m->eval();
    NoGradGuard no_grad;
    Tensor full = m->forward(ids);
    auto state = m->make_state(kB, kT);
    double worst = 0;
    for (int64_t t = 0; t < kT; ++t)
      worst = std::max(worst, max_diff(m->step(ids.narrow(1, t, 1), state), full.narrow(1, t, 1)));
    if (!(worst < 1e-9)) return fail(cat_str("step logits differ from forward by ", worst));
    return pass(cat_str("max diff ", worst, " over ", kT, " positions"));
  }));

  // 5. Save -> load into a fresh model gives identical outputs.
  results.push_back(check("io", [&] {
    return save_load(build(id, 5), build(id, 6), id, [&](auto& m) { return m.forward(ids); });
  }));

  // 6. It learns: the copy task's loss falls by the set fraction.
  results.push_back(check("learns", [&] {
    if (!options.learn) return na("skipped");
    auto m = build(id, 8);
    auto task = data::make_task("copy", {.vocab_size = kVocab, .seq_len = 16});
    Generator gen(11);
    return learn(*m, [&] {
      data::Batch batch = task->sample(16, gen);
      return m->loss(batch.inputs, batch.targets);
    }, id, options, "copy");
  }));
  return results;
}

}  // namespace tz::conformance
