// Proofs of RWKV-4 (nn/linear_rnn/rwkv4.h) and Based (nn/linear_rnn/based.h).
// RWKV-4: the WKV kernel's stable recurrent loop ((a, b, p) state), its materialised parallel
// form and its chunked form agree in f64 (train/forms_agree.h: outputs, final states, every
// gradient, continuation, decay 1 and steep decays), also at k up to ±60 with w from 2e-9 to
// 8e3; the recurrent loop equals the catalogue's formula written with plain exps; in f32 at
// k = ±100, where that formula overflows, the stable forms stay at the f64 answer; and the
// mixer decodes as it runs the whole sequence.
// Based: its Taylor map's feature product is 1 + q.k + (q.k)^2 / 2; the mixer's forms agree
// and decode equals the forward; and it learns a small associative recall that a plain linear
// attention of the same size does not.
#include <algorithm>
#include <cmath>
#include <map>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "models/zoo.h"
#include "nn/linear_rnn/based.h"
#include "nn/linear_rnn/feature_maps.h"
#include "nn/linear_rnn/rwkv4.h"
#include "tests/test_util.h"
#include "tests/zoo/mixer_runs.h"
#include "tests/zoo/proofs.h"
#include "train/arena.h"
#include "train/forms_agree.h"

using namespace tz;
using tz::testing::rel_max;

namespace {
constexpr int64_t kB = 2, kT = 29, kC = 16;

// ---- the WKV kernel under forms_agree ------------------------------------------------------
// The state (a, b, p) is not unique (any p with a, b rescaled), so forms_agree sees it as
// h = (a / b, p + log b, s) [B, 3, C], the same for every form: read back as a = m e^s,
// b = e^s, p = ℓ, which a random h0 (b > 0) covers.
nn::WkvState wkv_state_of(const Tensor& h) {
  Tensor s = h.select(1, 2);
  return {h.select(1, 0) * exp(s), exp(s), h.select(1, 1)};
}
Tensor wkv_state_out(const nn::WkvState& s) { return stack({s.a / s.b, s.p + log(s.b), zeros_like(s.p)}, 1); }

// inputs: k, v [B, T, C], ŵ [C] (w = exp ŵ), u [C]; k_scale and the range of ŵ set the regime.
forms::KernelForms wkv_forms(double k_scale, double lo, double hi) {
  auto form = [](auto f) {
    return [f](const std::vector<Tensor>& x, const Tensor& h0) -> forms::FormOutput {
      nn::WkvState s = wkv_state_of(h0);
      Tensor y = f(x[0], x[1], exp(x[2]), x[3], s);
      return {y, wkv_state_out(s)};
    };
  };
  return {
      .name = cat_str("wkv (k scale ", k_scale, ", log w in [", lo, ", ", hi, "])"),
      .naive = form([](auto&&... a) { return nn::wkv_recurrent(a...); }),
      .chunked = [](const std::vector<Tensor>& x, const Tensor& h0, int64_t c) -> forms::FormOutput {
        nn::WkvState s = wkv_state_of(h0);
        Tensor y = nn::wkv_chunked(x[0], x[1], exp(x[2]), x[3], s, c);
        return {y, wkv_state_out(s)};
      },
      .quadratic = form([](auto&&... a) { return nn::wkv_parallel(a...); }),
      .make_inputs =
          [=](int64_t T, Generator& gen) {
            return std::vector<forms::Input>{{"k", rand({kB, T, kC}, gen, DType::f64, -k_scale, k_scale), 1},
                                             {"v", randn({kB, T, kC}, gen, DType::f64), 1},
                                             {"log_w", rand({kC}, gen, DType::f64, lo, hi), forms::kNoTime},
                                             {"u", randn({kC}, gen, DType::f64), forms::kNoTime}};
          },
      .state_shape =
          [](const std::vector<forms::Input>&) {
            return Shape{kB, 3, kC};
          },
      // the step's log-decay is -w = -exp(ŵ): ŵ = -800 gives w = 0 (decay exactly 1); a steep
      // chunk decays by e^-1000 (w = 1000 / chunk, every channel)
      .make_gate =
          [](forms::Gate g, int64_t chunk, std::vector<forms::Input> in, Generator&) {
            const double lw = g == forms::Gate::unit_decay ? -800.0 : std::log(1000.0 / double(chunk));
            in[2].value = full({kC}, lw, DType::f64);
            return in;
          },
  };
}

// The catalogue's formula with plain exps (no max subtracted), from a zero state.
Tensor wkv_direct(const Tensor& k, const Tensor& v, const Tensor& w, const Tensor& u) {
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < k.size(1); ++t) {
    Tensor kt = k.select(1, t);
    Tensor num = exp(u + kt) * v.select(1, t), den = exp(u + kt);
    for (int64_t i = 0; i < t; ++i) {
      Tensor e = exp(k.select(1, i) - double(t - 1 - i) * w);
      num = num + e * v.select(1, i);
      den = den + e;
    }
    ys.push_back(num / den);
  }
  return stack(ys, 1);
}

bool all_finite(const Tensor& x) {
  for (double v : x.to(DType::f64).to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

// ---- whole mixers: forms and decode --------------------------------------------------------
std::shared_ptr<nn::Mixer> make(const std::string& id, const std::string& form, int64_t chunk,
                                const std::string& extra = "") {
  Generator gen(3);
  nn::Config c = nn::Config::parse(cat_str(R"({"linear_form": ")", form, R"(", "linear_chunk": )", chunk, extra, "}"));
  auto m = zoo::registry().make_mixer(id, nn::ModelDims{.dim = kC, .heads = 2, .context = 64, .depth = 1}, c, gen);
  m->to(DType::f64);
  return m;
}

using testing::Run;
using testing::run;

// Against the recurrent form's forward: the parallel form, the chunked one at 1, 3, 8 and T
// (output and dL/dx), and a chunked prefill of 11 tokens then decoding token by token. The
// worst relative error; `scale` multiplies the input.
double forms_and_decode(const std::string& id, const std::string& extra = "", double scale = 1) {
  Generator gen(5);
  Tensor x = randn({kB, kT, kC}, gen, DType::f64) * scale, w = randn({kB, kT, kC}, gen, DType::f64);
  Run ref = run(*make(id, "recurrent", 1, extra), x, w);
  double worst = 0;
  auto note = [&](const std::string& what, double e) {
    INFO(id, " ", what, ": ", e);
    CHECK(e < 1e-10);
    worst = std::max(worst, e);
  };
  auto compare = [&](const std::string& form, int64_t chunk) {
    Run r = run(*make(id, form, chunk, extra), x, w);
    note(cat_str(form, " chunk ", chunk), testing::rel_max(r, ref));
  };
  compare("parallel", 1);
  for (int64_t c : {int64_t(1), int64_t(3), int64_t(8), kT}) compare("chunked", c);
  NoGradGuard no_grad;
  auto m = make(id, "chunked", 4, extra);
  auto state = m->make_state(kB, kT, DType::f64);
  std::vector<Tensor> outs{m->forward(x.narrow(1, 0, 11), {.start = 0}, state.get())};
  for (int64_t t = 11; t < kT; ++t) outs.push_back(m->forward(x.narrow(1, t, 1), {.start = t}, state.get()));
  note("prefill 11 + decode", rel_max(cat(outs, 1), ref.y));
  return worst;
}
}  // namespace

TZ_PROOF(rwkv4,
         "stable recurrent (a, b, p) == parallel == chunked in f64 at k = ±60, w 2e-9 to 8e3, decode == forward") {
  // 1. forms_agree on the kernel: ordinary inputs, then k up to ±60 with w = e^ŵ from
  //    e^-20 = 2e-9 (no decay to speak of) to e^9 = 8e3 (the past gone after one step)
  double worst = 0;
  for (auto [ks, lo, hi] : {std::tuple{1.0, -3.0, 1.0}, std::tuple{60.0, -20.0, 9.0}}) {
    forms::FormsResult r = forms::forms_agree(wkv_forms(ks, lo, hi));
    INFO(r.failure_report());
    CHECK(r.ok);
    MESSAGE(r.kernel, ": max error ", r.max_error, " over ", r.lines.size(), " comparisons");
    worst = std::max(worst, r.max_error);
  }
  // 2. the recurrent loop against the catalogue's formula with plain exps (f64 holds e^60)
  Generator gen(11);
  Tensor k = rand({kB, kT, kC}, gen, DType::f64, -60, 60), v = randn({kB, kT, kC}, gen, DType::f64);
  Tensor u = randn({kC}, gen, DType::f64);
  Tensor w = exp(cat({full({kC / 2}, -20.0, DType::f64), rand({kC / 2}, gen, DType::f64, -3, 9)}, 0));
  nn::WkvState s = nn::wkv_initial_state(kB, kC, DType::f64);
  const double direct = rel_max(nn::wkv_recurrent(k, v, w, u, s), wkv_direct(k, v, w, u));
  MESSAGE("recurrent vs plain-exp formula at k in [-60, 60]: ", direct);
  CHECK(direct < 1e-12);
  // 3. f32 at k in [-100, 100]: the plain formula overflows (e^100 > 3.4e38), the stable forms
  //    stay at the f64 answer
  Tensor k100 = rand({kB, kT, kC}, gen, DType::f64, -100, 100);
  nn::WkvState s64 = nn::wkv_initial_state(kB, kC, DType::f64);
  Tensor ref = nn::wkv_recurrent(k100, v, w, u, s64);
  auto f32 = [](const Tensor& t) { return t.to(DType::f32); };
  CHECK_FALSE(all_finite(wkv_direct(f32(k100), f32(v), f32(w), f32(u))));
  double e32 = 0;
  for (int form = 0; form < 3; ++form) {
    nn::WkvState s32 = nn::wkv_initial_state(kB, kC, DType::f32);
    Tensor y = form == 0   ? nn::wkv_recurrent(f32(k100), f32(v), f32(w), f32(u), s32)
               : form == 1 ? nn::wkv_parallel(f32(k100), f32(v), f32(w), f32(u), s32)
                           : nn::wkv_chunked(f32(k100), f32(v), f32(w), f32(u), s32, 8);
    CHECK(all_finite(y));
    e32 = std::max(e32, rel_max(y.to(DType::f64), ref));
  }
  MESSAGE("f32 at k in [-100, 100]: plain exps overflow; stable forms vs f64: ", e32);
  CHECK(e32 < 1e-5);
  // 4. the mixer: forms and decoding (token shift and WKV state carried), also at inputs x 30
  const double mixer = std::max(forms_and_decode("rwkv4"), forms_and_decode("rwkv4", "", 30.0));
  MESSAGE("rwkv4 mixer: max rel. error over forms and decode ", mixer);
  TZ_PROOF_NUMBER("max error, forms of WKV (f64)", std::max(worst, mixer));
}

// Based learns a small multi-query associative recall (data/tasks.h's mqar: 4 key-value pairs,
// then the queried keys; 8 keys, 8 values, 24 positions) that a plain linear attention
// (linear_attention, elu + 1 features, no decay) of the same parameter count does not, in a
// few seconds of training: 2 layers, width 32 (the baseline's width matched to Based's
// parameters), 4 heads. Based's window (64) covers the sequence here, as the paper's window
// covers the local span of its recall tasks; based_window 0 (the Taylor linear attention
// with its convs alone) is measured beside them.
std::map<std::string, double> based_recall(bool long_run) {
  std::vector<arena::Entry> models = {{"based", R"({"mixer": "based"})"},
                                      {"linear_attention", R"({"mixer": "linear_attention"})"}};
  if (long_run) models.push_back({"based_no_window", R"({"mixer": "based", "based_window": 0})"});
  arena::Options o{.models = models,
                   .task = "mqar",
                   .steps = long_run ? 3000 : 300,
                   .batch = 32,
                   .seq_len = 24,
                   .vocab = 17,
                   .task_options = {.num_pairs = 4},
                   .lr = 3e-3,
                   .base = R"({"dim": 32, "depth": 2, "heads": 4})",
                   .match_params = true,
                   .threads = 1,
                   .out_dir = std::string(TZ_BINARY_DIR) + "/proofs_based_mqar"};
  std::map<std::string, double> acc;
  for (const arena::Result& r : arena::run(o)) {
    MESSAGE(r.name, " (", r.params, " params): recall accuracy ", r.val_accuracy.at(1), " (", r.wall_s, " s)");
    acc[r.name] = r.val_accuracy.at(1);
  }
  return acc;
}

TZ_PROOF(based, "phi(q).phi(k) == 1 + q.k + (q.k)^2/2 to 1e-12, recurrent == parallel, recall above linear attention") {
  // 1. the Taylor map's feature product, d' = 16, at q.k from ~0.01 to ~400
  Generator gen(9);
  double identity = 0;
  for (double scale : {0.1, 1.0, 5.0}) {
    Tensor q = randn({500, 16}, gen, DType::f64, 0, scale), k = randn({500, 16}, gen, DType::f64, 0, scale);
    Tensor qk = sum(q * k, {1});
    Tensor got = sum(nn::taylor_features(q) * nn::taylor_features(k), {1});
    identity = std::max(identity, rel_max(got, 1.0 + qk + 0.5 * qk * qk));
  }
  // the mixer's map: q, k scaled by d'^(-1/4), so 1 + q.k / 4 + (q.k)^2 / 32 at d' = 16
  auto m = std::dynamic_pointer_cast<nn::Based>(make("based", "chunked", 8));
  REQUIRE(m);
  CHECK(m->feature_count() == 1 + 16 + 256);
  Tensor q = randn({3, 2, 7, 16}, gen, DType::f64), k = randn({3, 2, 7, 16}, gen, DType::f64);
  Tensor qk = sum(q * k, {3});
  identity = std::max(identity, rel_max(sum(m->features(q) * m->features(k), {3}), 1.0 + qk / 4.0 + qk * qk / 32.0));
  MESSAGE("based: phi(q).phi(k) vs 1 + q.k + (q.k)^2 / 2, max rel. error ", identity);
  CHECK(identity <= 1e-12);
  // 2. forms (recurrent reference, parallel, chunked at 1, 3, 8, T) and decoding, with the
  //    window covering the sequence (64) and crossed by it (5), with and without convs
  const double forms = std::max({forms_and_decode("based"), forms_and_decode("based", R"(, "based_window": 5)"),
                                 forms_and_decode("based", R"(, "based_window": 5, "based_conv": 0)")});
  MESSAGE("based: max rel. error over forms and decode ", forms);
  // the window holds exactly W keys: with the linear branch's projection zeroed (its values
  // 0), out_t moves with x_{t-W+1} and not with x_{t-W}
  {
    NoGradGuard no_grad;
    auto win = std::dynamic_pointer_cast<nn::Based>(make("based", "chunked", 8, R"(, "based_window": 5)"));
    REQUIRE(win);
    for (Tensor* t : {&win->qkv_proj->weight, &win->qkv_proj->bias})
      std::fill(t->data<double>(), t->data<double>() + t->numel(), 0.0);
    Tensor x = randn({1, kT, kC}, gen, DType::f64);
    auto moved = [&](int64_t j, int64_t t) {
      Tensor x2 = x.clone();
      for (int64_t c = 0; c < kC; ++c) x2.set({0, j, c}, x.at({0, j, c}) + 1.0);
      return rel_max(win->forward(x2, {}).select(1, t), win->forward(x, {}).select(1, t));
    };
    const double outside = moved(20 - 5, 20), inside = moved(20 - 4, 20);
    MESSAGE("based: window 5, out_20 moved by x_15 ", outside, ", by x_16 ", inside);
    CHECK(outside == 0);
    CHECK(inside > 1e-3);
  }
  TZ_PROOF_NUMBER("phi(q).phi(k) max rel. error", identity);  // the number without the training run
  // 3. recall against plain linear attention of the same size
  if (!testing::learning_runs()) return;
  const std::map<std::string, double> acc = based_recall(testing::long_runs());
  CHECK(acc.at("based") >= 0.9);
  CHECK(acc.at("based") - acc.at("linear_attention") >= 0.3);
  TZ_PROOF_NUMBER("MQAR recall, based minus linear attention", acc.at("based") - acc.at("linear_attention"));
}
