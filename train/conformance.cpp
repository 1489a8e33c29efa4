#include "train/conformance.h"

#include <unistd.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/safetensors.h"
#include "core/text.h"
#include "data/tasks.h"
#include "models/lm.h"
#include "models/wrappers.h"
#include "models/zoo.h"
#include "nn/attention/attention.h"
#include "train/fit.h"

namespace tz::conformance {

namespace {
// B sequences in every check; V the base config's vocabulary; T the base check length.
constexpr int64_t kVocab = 16, kB = 2, kT = 12;
constexpr int64_t kBaseContext = 24;  // base_config()'s context
constexpr double kStepTolerance = 1e-9;
constexpr double kLearnLr = 1e-2;  // the learns check's default peak learning rate
constexpr int64_t kLearnWarmup = 30;  // its warmup steps

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

std::string sci(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1e", x);
  return buf;
}

std::string fixed(double x, int digits = 2) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

CheckResult check(const std::string& name, const std::function<CheckResult()>& fn) {
  auto t0 = std::chrono::steady_clock::now();
  CheckResult r;
  try {
    r = fn();
  } catch (const std::exception& e) {
    r = {name, Outcome::failed, std::string("threw: ") + e.what(), "threw"};
  }
  r.check = name;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

CheckResult pass(const std::string& detail, const std::string& cell = "") {
  return {"", Outcome::passed, detail, cell};
}
CheckResult fail(const std::string& detail, const std::string& cell = "") {
  return {"", Outcome::failed, detail, cell};
}
CheckResult na(const std::string& detail) { return {"", Outcome::not_applicable, detail, ""}; }

std::string temp_path(const std::string& id, const char* what) {
  return (std::filesystem::temp_directory_path() /
          cat_str("tz_conformance_", id, "_", what, "_", ::getpid(), ".safetensors"))
      .string();
}

// Check 5: `a` saved and loaded into `b` (built from another seed) gives identical outputs.
template <class Model, class Forward>
CheckResult save_load(const Model& a, const Model& b, const std::string& id, const Forward& forward) {
  a->eval();
  b->eval();
  std::string path = temp_path(id, "weights");
  a->save(path);
  b->load(path);
  std::filesystem::remove(path);
  NoGradGuard no_grad;
  double d = max_diff(forward(*a), forward(*b));
  return d == 0 ? pass("bit-identical outputs", "weights")
                : fail(cat_str("outputs differ by ", d), cat_str("weights ", sci(d)));
}

// Check 6: AdamW with a 30-step warm-up (post-norm needs it) on `next_loss` for `steps`
// steps; passes when the mean of the last 10 losses is at most `fraction` x the first 10's.
CheckResult learn(nn::Module& m, const std::function<Tensor()>& next_loss, double lr, const Options& options,
                  const std::string& what) {
  if (lr <= 0) lr = kLearnLr;
  const int64_t window = 10, steps = options.learn_steps;
  const int64_t warmup = options.try_warmup > 0 ? options.try_warmup : kLearnWarmup;
  const auto records = train::fit(m.named_parameters(), next_loss,
                                  {.steps = steps, .recipe = {.lr = lr, .warmup = warmup, .schedule = "constant"}});
  double first = 0, last = 0;
  for (const train::StepRecord& r : records) {
    if (r.step <= window) first += r.loss / window;
    if (r.step > steps - window) last += r.loss / window;
  }
  std::string detail = cat_str(what, " loss ", first, " -> ", last, " in ", steps, " steps at lr ", lr);
  return last <= options.learn_fraction * first ? pass(detail)
                                                : fail(detail + cat_str(" (needs <= ", options.learn_fraction, "x)"));
}

// What learn() reports about the run (its losses), without its own verdict: the learns
// check judges by held-out accuracy.
std::string training(const CheckResult& trained) { return trained.detail.substr(0, trained.detail.find(" (needs")); }

// ---- check 2: the gradient ---------------------------------------------------------------

// D, the rows of one head in a fused projection: the first attention layer's head size (of
// q/k and v: their common divisor); in an LM without one, its dim / heads; else 0.
int64_t attention_head_dim(const nn::Module& m) {
  if (auto* a = dynamic_cast<const nn::Attention*>(&m)) return std::gcd(a->layout.Dk, a->layout.D);
  for (const auto& [name, child] : m.named_children())
    if (int64_t d = attention_head_dim(*child)) return d;
  return 0;
}

int64_t head_rows(const nn::Module& m) {
  if (int64_t d = attention_head_dim(m)) return d;
  auto* lm = dynamic_cast<const models::LM*>(&m);
  return lm ? lm->dims().dim / lm->dims().heads : 0;
}

struct GradReport {
  bool ok = true;  // analytic == numerical on every checked element
  double max_error = 0;
  int64_t elements = 0;              // elements checked
  std::vector<std::string> vacuous;  // tensors whose gradients are all zero on both sides
  std::string report;
};

// Gradcheck of loss() w.r.t. every parameter of `m` (f64, eval mode): at least 16 elements
// of each tensor, stratified over its rows, tensors under 64 elements whole, and one more
// element in every block of D rows of a tensor whose rows come in heads (a fused q/k/v
// weight [3 H D, C] gets one in every head of q, of k and of v).
// `which` (when given) picks the parameters by name.
GradReport gradcheck_parameters(nn::Module& m, const std::function<Tensor()>& loss,
                                const std::function<bool(const std::string&)>& which = {}) {
  const int64_t D = head_rows(m);
  GradcheckOptions opt;
  opt.max_elements = 16;
  opt.atol = 1e-6;
  opt.rtol = 1e-4;
  opt.allow_vacuous = true;  // reported apart: see grad_check
  std::vector<Tensor> params;
  for (auto& [name, t] : m.named_parameters()) {
    if (which && !which(name)) continue;
    params.push_back(t);
    opt.names.push_back(name);
    opt.block_rows.push_back(D > 0 && t.dim() >= 1 && t.size(0) > D && t.size(0) % D == 0 ? D : 0);
  }
  GradcheckResult r = gradcheck([&](const std::vector<Tensor>&) { return loss(); }, params, opt);
  GradReport g;
  g.ok = r.ok;
  g.max_error = r.max_abs_error;
  for (const GradcheckTensor& t : r.tensors) g.elements += t.checked;
  g.vacuous = r.vacuous;
  g.report = r.report;
  return g;
}

CheckResult grad_result(const GradReport& g, size_t tensors, const std::string& note) {
  std::string cell = cat_str(sci(g.max_error), ", ", g.elements, " el");
  std::string detail = cat_str(tensors, " tensors, ", g.elements, " elements, max error ", g.max_error, note);
  CheckResult r;
  if (!g.ok)
    r = fail(cat_str(detail, "; ", g.report), cell);
  else if (!g.vacuous.empty())
    r = fail(cat_str(detail, "; vacuous (all-zero gradients on both sides, and no randomise hook): ", join(g.vacuous)),
             cell + " vacuous");
  else
    r = pass(detail, cell);
  r.numbers = {{"max error", g.max_error}, {"elements", double(g.elements)}, {"vacuous", double(g.vacuous.size())}};
  return r;
}

// Runs the gradcheck; when some tensor is vacuous and the variant has a randomise hook, runs
// it again from the randomised parameters, where none may be vacuous.
CheckResult grad_check(nn::Module& m, const std::function<Tensor()>& loss,
                       const std::function<void(nn::Module&, Generator&)>& randomise) {
  const size_t tensors = m.named_parameters().size();
  GradReport first = gradcheck_parameters(m, loss);
  if (first.vacuous.empty() || !randomise) return grad_result(first, tensors, "");
  Generator gen(17);
  {
    NoGradGuard no_grad;
    randomise(m, gen);
  }
  GradReport again = gradcheck_parameters(m, loss);
  again.ok = again.ok && first.ok;
  again.elements += first.elements;
  again.max_error = std::max(again.max_error, first.max_error);
  if (!first.ok) again.report = first.report;
  return grad_result(again, tensors,
                     cat_str(" (two passes: ", first.vacuous.size(), " tensors vacuous at init, e.g. ",
                             first.vacuous[0], ", then randomised)"));
}

// ---- what the checks share ------------------------------------------------------------

// Float tensors follow `dt` (f64 for the exact checks); ids and masks stay i64.
std::vector<Tensor> as_dtype(const std::vector<Tensor>& in, DType dt) {
  std::vector<Tensor> out;
  for (const Tensor& t : in) out.push_back(t.dtype() == DType::i64 ? t : t.to(dt));
  return out;
}

// kB examples for model `m`: a token model's random ids [B, T] with random next tokens; a
// model with a task of its own (the wrappers), a sample of it. Float parts in `dt`.
models::Model::Batch example(const Subject& s, const models::Model& m, int64_t T, uint64_t seed,
                             DType dt = DType::f32) {
  Generator gen(seed);
  models::Model::Batch b;
  if (s.own_task)
    b = m.sample(kB, gen);
  else
    b = {{randint(0, m.vocab(), {kB, T}, gen)}, randint(0, m.vocab(), {kB, T}, gen)};
  b.inputs = as_dtype(b.inputs, dt);
  if (b.targets.dtype() != DType::i64) b.targets = b.targets.to(dt);
  return b;
}

// Applies the subject's randomise hook, if any: behind a zero gate (ReZero's α = 0) the
// mixers do not reach the output, and the causal, step and io checks would prove nothing.
void randomised(const Subject& s, nn::Module& m) {
  if (!s.randomise) return;
  NoGradGuard no_grad;
  Generator gen(17);
  s.randomise(m, gen);
}

// f64, eval mode (no dropout: outputs are functions of the inputs alone).
std::shared_ptr<models::Model> f64_model(const Subject& s, uint64_t seed, int64_t context) {
  auto m = s.make(seed, context);
  m->to(DType::f64);
  m->eval();
  return m;
}

}  // namespace

// ---- the subject of a registered id ------------------------------------------------------

std::string base_config() { return R"({"vocab": 16, "dim": 16, "depth": 2, "heads": 2, "context": 24})"; }

const char* outcome_name(Outcome o) { return o == Outcome::passed ? "pass" : o == Outcome::failed ? "FAIL" : "n/a"; }

int64_t check_length(int64_t chunk) { return std::max<int64_t>(kT, 2 * chunk + 3); }

std::string Learning::override_text() const {
  std::vector<std::string> parts;
  if (steps > 0) parts.push_back(cat_str("steps ", steps));
  if (lr > 0) parts.push_back(cat_str("lr ", lr));
  if (!task.empty()) parts.push_back("task " + task);
  if (parts.empty()) return "";
  return join(parts) + ": " + (reason.empty() ? "NO REASON GIVEN" : reason);
}

Subject subject(const std::string& id) {
  const nn::VariantInfo& v = zoo::registry().get(id);
  Subject s;
  s.id = id;
  s.own_task = bool(v.model);
  s.make = [id](uint64_t seed, int64_t context) -> std::shared_ptr<models::Model> {
    const nn::VariantInfo& info = zoo::registry().get(id);
    // A wrapper's test_config is its whole config; the others' are laid over the base.
    nn::Config c = nn::Config::parse(info.model ? "{}" : base_config(), "conformance base");
    c.merge(nn::Config::parse(info.test_config, id + " test_config"));
    if (!info.model && context > kBaseContext) c.set("context", std::to_string(context));
    Generator gen(seed);
    if (!info.model) return zoo::make_model(c, gen);
    auto m = std::dynamic_pointer_cast<models::Model>(info.model(c, gen));
    TZ_CHECK(m, id, ": its model factory must return a models::Model");
    return m;
  };
  s.chunk = v.chunk;
  s.randomise = v.randomise;
  s.learning = {.steps = v.learn_steps, .lr = v.learn_lr, .task = v.learn_task, .reason = v.learn_reason};
  if (v.selective) s.learning.also.push_back("selective_copy_mamba");
  if (v.recall) s.learning.also.push_back("mqar_zoology");
  return s;
}

// ---- the checks --------------------------------------------------------------------------

CheckResult check_build(const Subject& s) {
  return check("build", [&] {
    auto m = s.make(1, 0);
    models::Model::Batch ex = example(s, *m, kT, 7);
    Tensor y = m->forward(ex.inputs);
    if (!s.own_task && y.shape() != Shape{kB, kT, m->vocab()})
      return fail(cat_str("logits shape ", y.shape(), ", expected ", Shape{kB, kT, m->vocab()}));
    if (!finite(y)) return fail("non-finite output");
    return pass(cat_str(m->num_parameters(), " parameters, output ", y.shape()),
                cat_str(m->num_parameters(), " params"));
  });
}

// A model with segment memory: the gradient of the first segment's loss from an empty
// memory plus the second segment's loss given the memory the first left (restored before
// every evaluation, so the memory is a constant as its stop-gradient says), w.r.t. every
// parameter but the memory's own; and the gradient of the memory's own losses (compression)
// w.r.t. its parameters, which nothing else trains.
CheckResult memory_grad_check(models::Model& m, const models::Model::Batch& ex) {
  const int64_t B = ex.targets.size(0), T = ex.targets.size(1), half = T / 2;
  const models::Model::Batch first{{ex.inputs[0].narrow(1, 0, half)}, ex.targets.narrow(1, 0, half)};
  const models::Model::Batch second{{ex.inputs[0].narrow(1, half, T - half)}, ex.targets.narrow(1, half, T - half)};
  std::map<std::string, Tensor> after_first;
  {
    NoGradGuard no_grad;
    models::Model::State st = m.make_memory(B);
    m.forward(ex.inputs[0].narrow(1, 0, half), &st);
    after_first = models::save_model_state(st);
  }
  auto from_memory = [&] {
    models::Model::State st = m.make_memory(B);
    models::restore_model_state(st, after_first);
    return st;
  };
  auto own = [](const std::string& name) { return name.rfind("memory.", 0) == 0; };
  GradReport g = gradcheck_parameters(
      m,
      [&] {
        // The first segment from an empty memory too: what a model learns for its memory's
        // start (RMT's initial memory tokens) is used only there.
        models::Model::State empty = m.make_memory(B);
        const Tensor l1 = m.loss(first, empty);
        models::Model::State st = from_memory();
        return l1 + m.loss(second, st);
      },
      [&](const std::string& name) { return !own(name); });
  size_t tensors = 0, own_tensors = 0;
  for (auto& [name, t] : m.named_parameters()) own(name) ? ++own_tensors : ++tensors;
  if (own_tensors > 0) {
    m.train();  // the memory's losses are training losses
    GradReport c = gradcheck_parameters(
        m,
        [&] {
          models::Model::State st = from_memory();
          nn::AuxLosses aux;
          m.forward(second.inputs, &st, &aux);
          TZ_CHECK(!aux.terms.empty(), "conformance: the memory added no loss of its own over two segments");
          return aux.total();
        },
        own);
    m.eval();
    g.ok = g.ok && c.ok;
    g.elements += c.elements;
    g.max_error = std::max(g.max_error, c.max_error);
    g.vacuous.insert(g.vacuous.end(), c.vacuous.begin(), c.vacuous.end());
    if (!c.ok) g.report = c.report;
  }
  return grad_result(g, tensors + own_tensors,
                     cat_str(" (first segment from an empty memory, second given the first's memory",
                             own_tensors ? "; the memory's own losses" : "", ")"));
}

CheckResult check_grad(const Subject& s) {
  return check("grad", [&] {
    auto m = f64_model(s, 2, 0);
    models::Model::Batch ex = example(s, *m, kT, 7, DType::f64);
    if (m->has_memory()) return memory_grad_check(*m, ex);
    return grad_check(
        *m, [&] { return m->loss(ex); }, s.randomise);
  });
}

// Changing input k after position t leaves the outputs up to t unchanged and moves a later
// one, for t = 0, T/2 and T-2. Token inputs change to (id + 3) mod V; other inputs take the
// positions of another example.
CheckResult check_causal(const Subject& s) {
  return check("causal", [&] {
    auto m = f64_model(s, 3, check_length(s.chunk));
    const int k = m->causal_input();
    if (k < 0) return na(m->why_not_causal());
    randomised(s, *m);
    NoGradGuard no_grad;
    const std::vector<Tensor> a = example(s, *m, check_length(s.chunk), 7, DType::f64).inputs;
    const Tensor other = example(s, *m, check_length(s.chunk), 99, DType::f64).inputs[size_t(k)];
    const Tensor& x = a[size_t(k)];
    const int64_t T = x.size(1);
    Tensor y1 = m->forward(a);
    double worst_before = 0, least_after = INFINITY;
    for (int64_t t : {int64_t(0), T / 2, T - 2}) {
      std::vector<Tensor> b = a;
      b[size_t(k)] = x.clone();
      if (x.dtype() == DType::i64 && m->vocab() > 0) {
        for (int64_t i = 0; i < x.size(0); ++i)
          for (int64_t j = t + 1; j < T; ++j)
            b[size_t(k)].set({i, j}, double((int64_t(x.at({i, j})) + 3) % m->vocab()));
      } else {
        core::copy_(b[size_t(k)].narrow(1, t + 1, T - t - 1), other.narrow(1, t + 1, T - t - 1));
      }
      Tensor y2 = m->forward(b);
      double before = max_diff(y1.narrow(1, 0, t + 1), y2.narrow(1, 0, t + 1));
      double after = max_diff(y1.narrow(1, t + 1, T - t - 1), y2.narrow(1, t + 1, T - t - 1));
      if (before > 1e-12) return fail(cat_str("T ", T, ": outputs up to t=", t, " moved by ", before), sci(before));
      if (!(after > 1e-9))
        return fail(cat_str("T ", T, ": outputs after t=", t, " did not react to the change (vacuous)"));
      worst_before = std::max(worst_before, before);
      least_after = std::min(least_after, after);
    }
    CheckResult r = pass(cat_str("input ", k, ", T ", T, ", t in {0, ", T / 2, ", ", T - 2, "}: prefix moved at most ",
                                 worst_before, ", suffix at least ", least_after),
                         cat_str(sci(worst_before), " @T", T));
    r.numbers = {{"T", double(T)}, {"prefix moved", worst_before}, {"suffix moved", least_after}};
    return r;
  });
}

CheckResult check_step(const Subject& s) {
  return check("step", [&] {
    const int64_t T = check_length(s.chunk);
    auto m = f64_model(s, 4, T);
    if (!m->has_step()) return na(m->why_no_step());
    randomised(s, *m);
    NoGradGuard no_grad;
    Tensor ids = example(s, *m, T, 7).inputs[0];
    Tensor full_y = m->forward(ids);
    // a: the prefill; c: the split of the continuation; both off the chunk grid.
    const int64_t a = s.chunk ? s.chunk + 1 : T / 2 - 1, c = s.chunk ? s.chunk + 2 : T / 2 + 1;
    auto tokens_from = [&](models::Model::State& st, int64_t from) {
      double worst = 0;
      for (int64_t t = from; t < T; ++t)
        worst = std::max(worst, max_diff(m->step(ids.narrow(1, t, 1), st), full_y.narrow(1, t, 1)));
      return worst;
    };
    auto st1 = m->make_state(kB, T);
    double tokens = tokens_from(st1, 0);
    auto st2 = m->make_state(kB, T);
    double prefill = max_diff(m->step(ids.narrow(1, 0, a), st2), full_y.narrow(1, 0, a));
    prefill = std::max(prefill, tokens_from(st2, a));
    auto st3 = m->make_state(kB, T);
    double cont = max_diff(m->step(ids.narrow(1, 0, c), st3), full_y.narrow(1, 0, c));
    cont = std::max(cont, max_diff(m->step(ids.narrow(1, c, T - c), st3), full_y.narrow(1, c, T - c)));
    const double worst = std::max({tokens, prefill, cont});
    std::string detail = cat_str("T ", T, ": token by token ", tokens, "; prefill ", a, " then tokens ", prefill,
                                 "; forward ", c, " + continue ", T - c, " ", cont);
    std::string cell = cat_str(sci(worst), " @T", T);
    CheckResult r =
        worst <= kStepTolerance ? pass(detail, cell) : fail(cat_str(detail, " (tolerance ", kStepTolerance, ")"), cell);
    r.numbers = {{"T", double(T)}, {"tokens", tokens}, {"prefill", prefill}, {"continue", cont}};
    return r;
  });
}

// A state `advance`d by model a, saved to `path`, restored into a fresh state of b: how far
// the two continuations (`rest`) differ, and how far a zeroed copy of the saved state moves
// b's (it must: else the state does not matter).
struct RoundTrip {
  double diff = 0, moved = 0;
  size_t tensors = 0;
};
RoundTrip round_trip(models::Model& a, models::Model& b,
                     const std::function<models::Model::State(models::Model&)>& fresh,
                     const std::function<void(models::Model&, models::Model::State&)>& advance,
                     const std::function<Tensor(models::Model&, models::Model::State&)>& rest,
                     const std::string& path) {
  models::Model::State sa = fresh(a);
  advance(a, sa);
  save_safetensors(path, save_model_state(sa));
  TensorFile file = load_safetensors(path);
  std::filesystem::remove(path);
  models::Model::State sb = fresh(b);
  restore_model_state(sb, file.tensors);
  RoundTrip r{.tensors = file.tensors.size()};
  const Tensor yb = rest(b, sb);
  r.diff = max_diff(rest(a, sa), yb);
  std::map<std::string, Tensor> zeroed = file.tensors;
  for (auto& [name, t] : zeroed)
    if (t.dtype() != DType::i64) t = zeros_like(t);
  models::Model::State sz = fresh(b);
  restore_model_state(sz, zeroed);
  r.moved = max_diff(rest(b, sz), yb);
  return r;
}

CheckResult check_io(const Subject& s) {
  return check("io", [&] {
    const int64_t T = check_length(s.chunk);
    auto a = s.make(5, T), b = s.make(6, T);
    randomised(s, *a);  // b gets a's weights
    const std::vector<Tensor> inputs = example(s, *a, T, 7).inputs;
    CheckResult weights = save_load(a, b, s.id, [&](models::Model& m) { return m.forward(inputs); });
    if (weights.outcome != Outcome::passed || !a->has_step()) {
      if (!a->has_step()) weights.detail += "; no decoding state (no step form)";
      return weights;
    }
    // The decoding state: a prefill of `half` tokens by a, saved, restored into b.
    NoGradGuard no_grad;
    const Tensor& ids = inputs[0];
    const int64_t half = T / 2 + 1;
    RoundTrip decoding = round_trip(
        *a, *b, [&](models::Model& m) { return m.make_state(kB, T); },
        [&](models::Model& m, models::Model::State& st) { m.step(ids.narrow(1, 0, half), st); },
        [&](models::Model& m, models::Model::State& st) { return m.step(ids.narrow(1, half, T - half), st); },
        temp_path(s.id, "state"));
    std::string detail = cat_str("weights bit-identical; state of ", decoding.tensors, " tensors saved after ", half,
                                 " tokens, restored: continuation differs by ", decoding.diff, " (a zeroed state: by ",
                                 decoding.moved, ")");
    double d = decoding.diff, moved = decoding.moved;
    if (a->has_memory()) {  // segment memory after two segments, continued by a third
      const int64_t L = T / 2;
      RoundTrip memory = round_trip(
          *a, *b, [&](models::Model& m) { return m.make_memory(kB); },
          [&](models::Model& m, models::Model::State& st) {
            m.forward(ids.narrow(1, 0, L), &st);
            m.forward(ids.narrow(1, L, L), &st);
          },
          [&](models::Model& m, models::Model::State& st) { return m.forward(ids.narrow(1, 0, L), &st); },
          temp_path(s.id, "memory"));
      detail += cat_str("; segment memory of ", memory.tensors, " tensors after 2 segments: continuation differs by ",
                        memory.diff, " (zeroed: by ", memory.moved, ")");
      d = std::max(d, memory.diff);
      moved = std::min(moved, memory.moved);
    }
    CheckResult r = d != 0         ? fail(detail, cat_str("state ", sci(d)))
                    : !(moved > 0) ? fail(detail + ": the saved state does not matter (vacuous)", "state vacuous")
                                   : pass(detail, cat_str("weights+state (", decoding.tensors, ")"));
    r.numbers = {{"state difference", d}, {"zeroed state moved", moved}, {"state tensors", double(decoding.tensors)}};
    return r;
  });
}

namespace {
// The small sizes of the suite's tasks (the base model's vocabulary is 16). For scale:
// attention (gpt) reaches 1.00 on copy in 400 steps, but only 0.63 on selective_copy_mamba
// and 0.19 on mqar_zoology (0.80 and 0.23 after 3000 steps), so a family that claims them
// states the budget its mixer needs (learn_steps, with its reason).
data::TaskOptions task_options(const std::string& task) {
  if (task == "selective_copy_mamba") return {.vocab_size = kVocab, .seq_len = 20, .copy_len = 4};
  if (task == "mqar_zoology") return {.vocab_size = kVocab, .seq_len = 20, .num_pairs = 4};
  return {.vocab_size = kVocab, .seq_len = 16};
}

// Held-out accuracy on the scored positions of 256 fresh examples (eval mode).
double held_out_accuracy(models::Model& m, const data::Task& task) {
  m.eval();
  NoGradGuard no_grad;
  Generator held(424242);
  data::Batch batch = task.sample(256, held);
  return data::accuracy(m.forward(batch.inputs), batch.targets);
}
// Held-out score of a wrapper on 256 fresh examples of its own task: accuracy for class or
// token targets; for real-valued targets R² = 1 - loss / (the loss of predicting 0).
std::pair<const char*, double> wrapper_score(models::Model& m) {
  m.eval();
  NoGradGuard no_grad;
  Generator held(424242);
  models::Model::Batch ex = m.sample(256, held);
  if (ex.targets.dtype() == DType::i64) return {"accuracy", data::accuracy(m.forward(ex.inputs), ex.targets)};
  Tensor y = ex.targets.to(DType::f64), mask = ex.inputs[1].to(DType::f64).unsqueeze(-1);
  const double zero_loss = sum(y * y * mask).item() / (sum(mask).item() * double(y.size(-1)));
  return {"R²", 1.0 - m.loss(ex).item() / zero_loss};
}

}  // namespace

CheckResult check_learns(const Subject& s, const Options& options) {
  return check("learns", [&] {
    if (!options.learn) return na("skipped");
    Learning l = s.learning;
    if (options.try_steps > 0) l.steps = options.try_steps;  // a budget to try (tensorzoo check --steps)
    if (options.try_lr > 0) l.lr = options.try_lr;
    Options o = options;
    if (l.steps > 0) o.learn_steps = l.steps;
    std::string detail, cell;
    std::map<std::string, double> numbers;
    bool ok = false;
    // Whether a small model reaches the bar in a fixed budget can turn on the rounding of the
    // CPU it runs on (one seed of cosformer: 0.94 on one machine, 0.54 on another); a model
    // that cannot learn the task misses it with every seed. So up to learn_tries seeds, each
    // with its own initialisation and batches, and the first that reaches the bar counts.
    for (int64_t attempt = 0; attempt < std::max<int64_t>(options.learn_tries, 1) && !ok; ++attempt) {
      const uint64_t seed = options.learn_seed + uint64_t(attempt);
      std::string tried, row;
      numbers.clear();
      ok = true;
      if (s.own_task) {  // the wrappers: their own task, scored by accuracy or R²
        auto m = s.make(8 + seed, 0);
        Generator gen(11 + seed);
        CheckResult trained = learn(
            *m, [&] { return m->loss(m->sample(16, gen)); }, l.lr, o, "own task");
        auto [what, score] = wrapper_score(*m);
        numbers[what] = score;
        ok = score >= options.learn_bar;
        tried = cat_str("own task ", what, " ", fixed(score, 3), " (", training(trained), ")");
        row = cat_str(what == std::string("R²") ? "R² " : "", fixed(score));
      } else {
        std::vector<std::string> tasks{l.task.empty() ? "copy" : l.task};
        tasks.insert(tasks.end(), l.also.begin(), l.also.end());
        for (const std::string& name : tasks) {
          auto task = data::make_task(name, task_options(name));
          auto m = s.make(8 + seed, task->seq_len());
          Generator gen(11 + seed);
          CheckResult trained = learn(
              *m,
              [&] {
                data::Batch batch = task->sample(16, gen);
                return m->loss(batch.inputs, batch.targets);
              },
              l.lr, o, name);
          double acc = held_out_accuracy(*m, *task);
          numbers[name] = acc;
          ok = ok && acc >= options.learn_bar;
          tried += cat_str(tried.empty() ? "" : "; ", name, " accuracy ", fixed(acc, 3), " (", training(trained), ")");
          row += cat_str(row.empty() ? "" : ", ", name == "copy" ? "" : name + " ", fixed(acc));
        }
      }
      detail += cat_str(detail.empty() ? "" : " | ", attempt > 0 || !ok ? cat_str("seed ", seed, ": ") : "", tried);
      cell = attempt > 0 ? cat_str(row, " (seed ", seed, ")") : row;
    }
    if (options.try_steps > 0 || options.try_lr > 0 || options.try_warmup > 0)
      detail += cat_str("; tried: steps ", o.learn_steps, " lr ", l.lr > 0 ? l.lr : kLearnLr, " warmup ",
                        options.try_warmup > 0 ? options.try_warmup : kLearnWarmup);
    else if (!l.override_text().empty())
      detail += "; override: " + l.override_text();
    CheckResult r = !s.learning.override_text().empty() && s.learning.reason.empty()
                        ? fail(detail + " (an override needs a reason)", cell)
                    : !ok ? fail(cat_str(detail, " (needs >= ", options.learn_bar, " with one of ", options.learn_tries,
                                         " seeds)"),
                                 cell)
                          : pass(detail, cell);
    r.numbers = numbers;
    return r;
  });
}

std::vector<CheckResult> run_checks(const Subject& s, const Options& options) {
  std::vector<CheckResult> results{check_build(s)};
  if (results.back().outcome == Outcome::failed) return results;
  results.push_back(check_grad(s));
  results.push_back(check_causal(s));
  results.push_back(check_step(s));
  results.push_back(check_io(s));
  results.push_back(check_learns(s, options));
  return results;
}

std::vector<CheckResult> run_checks(const std::string& id, const Options& options) {
  if (!zoo::registry().find(id)) return {{"build", Outcome::failed, "unknown id '" + id + "'", "unknown"}};
  return run_checks(subject(id), options);
}

}  // namespace tz::conformance
