// The training loop (train/fit.h) and its recipe (optim/recipe.h): the schedules as applied
// to the parameters, the stop on a NaN or Inf, the hooks' steps, and the trainer's refusal
// to write a broken checkpoint over a good one.
#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numbers>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "train/fit.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace tz;

namespace {
// A parameter w (f64, two elements) and loss = sum(c * w): the gradient is the constant c.
// AdamW's bias-corrected moments of a constant gradient are c and c^2, so each step moves
// w[i] by -lr * c[i] / (|c[i]| + eps), i.e. by -lr * sign(c[i]) to 1e-8: the records' lr can
// be read back from the parameter.
struct ConstantGradient {
  Tensor w = zeros({2}, DType::f64).requires_grad_();
  Tensor c = tensor({3.0, -0.5}, DType::f64);
  std::vector<std::pair<std::string, Tensor>> params() const { return {{"w", w}}; }
  train::LossFn loss() const {
    return [this] { return sum(c * w); };
  }
};

// The lr each step moved w[0] by (w[0] falls by lr per step, w[1] rises by lr).
std::vector<double> applied_lrs(const std::vector<double>& w0) {
  std::vector<double> out;
  for (size_t i = 1; i < w0.size(); ++i) out.push_back(w0[i - 1] - w0[i]);
  return out;
}

std::vector<double> fit_lrs(const optim::Recipe& recipe, int64_t steps, std::vector<double>& recorded) {
  ConstantGradient m;
  std::vector<double> w0 = {0.0};
  train::fit(m.params(), m.loss(), {.steps = steps, .recipe = recipe}, {.on_step = [&](const train::StepRecord& r) {
               recorded.push_back(r.lr);
               w0.push_back(m.w.to_vector<double>()[0]);
               return true;
             }});
  return applied_lrs(w0);
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

TEST_CASE("fit: the schedules, as recorded and as applied to the parameters") {
  SUBCASE("cosine: 0 at step 0, the peak after the warm-up, then down to min_lr") {
    std::vector<double> recorded;
    std::vector<double> applied = fit_lrs({.lr = 1.0, .min_lr = 0.1, .warmup = 2, .schedule = "cosine"}, 6, recorded);
    // Step s of 6 with warm-up 2: s / 2, then 0.1 + 0.9 (1 + cos(pi (s - 2) / 4)) / 2.
    auto cosine = [](double r) { return 0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi * r)); };
    const std::vector<double> want = {0.0, 0.5, 1.0, cosine(0.25), cosine(0.5), cosine(0.75)};
    REQUIRE(recorded.size() == want.size());
    for (size_t s = 0; s < want.size(); ++s) {
      CAPTURE(s);
      CHECK(recorded[s] == doctest::Approx(want[s]).epsilon(1e-15));
      CHECK(applied[s] == doctest::Approx(want[s]).epsilon(1e-7));
    }
  }
  SUBCASE("constant: the warm-up counts the step being taken, then the peak") {
    std::vector<double> recorded;
    std::vector<double> applied = fit_lrs({.lr = 0.2, .warmup = 4}, 6, recorded);
    const std::vector<double> want = {0.05, 0.1, 0.15, 0.2, 0.2, 0.2};
    REQUIRE(recorded.size() == want.size());
    for (size_t s = 0; s < want.size(); ++s) {
      CAPTURE(s);
      CHECK(recorded[s] == doctest::Approx(want[s]).epsilon(1e-15));
      CHECK(applied[s] == doctest::Approx(want[s]).epsilon(1e-7));
    }
  }
  SUBCASE("a warm-up longer than the run is shortened to the run") {
    const optim::Recipe constant{.lr = 1.0, .warmup = 10};
    const optim::Recipe cosine{.lr = 1.0, .warmup = 10, .schedule = "cosine"};
    for (int64_t s = 0; s < 4; ++s) {
      CHECK(constant.lr_at(s, 4) == doctest::Approx(double(s + 1) / 4).epsilon(1e-15));
      CHECK(cosine.lr_at(s, 4) == doctest::Approx(double(s) / 4).epsilon(1e-15));
    }
  }
  SUBCASE("clipping: the update uses the clipped gradient, the record the norm before") {
    ConstantGradient m;
    // With grad_clip 1 the gradient (3, -0.5) of norm sqrt(9.25) is scaled below 1, which
    // AdamW's first step does not see (m / sqrt(v) is scale-free), so check the record.
    auto records = train::fit(m.params(), m.loss(), {.steps = 1, .recipe = {.lr = 0.1, .grad_clip = 1.0}});
    REQUIRE(records.size() == 1);
    CHECK(records[0].grad_norm == doctest::Approx(std::sqrt(9.25)).epsilon(1e-12));
    CHECK(m.w.grad().to_vector<double>()[0] == doctest::Approx(3.0 / std::sqrt(9.25)).epsilon(1e-6));
  }
  SUBCASE("bad options name themselves and the valid choices") {
    CHECK_THROWS_WITH_AS(optim::Recipe{.schedule = "linear"}.validate(),
                         doctest::Contains("unknown schedule 'linear'; valid: constant, cosine"), Error);
    CHECK_THROWS_WITH_AS(optim::Recipe({.lr = 1e-3, .min_lr = 1e-2}).validate(), doctest::Contains("min_lr"), Error);
    CHECK_THROWS_WITH_AS((optim::Recipe{.betas = {0.9, 1.0}}.validate()), doctest::Contains("betas"), Error);
    ConstantGradient m;
    CHECK_THROWS_WITH_AS(train::Fit(m.params(), {.steps = 0}), doctest::Contains("steps must be positive"), Error);
    CHECK_THROWS_WITH_AS(train::Fit(m.params(), {.steps = 3, .recipe = {.grad_clip = -1}}),
                         doctest::Contains("grad_clip"), Error);
  }
}

TEST_CASE("fit: a NaN or Inf stops the run with an error naming the step, before its update") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  struct Case {
    const char* name;
    double added;       // added to the loss at step 5
    bool bad_gradient;  // instead: a finite loss whose gradient is NaN
    const char* message;
  };
  for (const Case& k : {Case{"NaN loss", nan, false, "the loss is NaN at step 5 of 10"},
                        Case{"Inf loss", inf, false, "the loss is Inf at step 5 of 10"},
                        Case{"NaN gradient", 1.0, true, "the gradient norm is NaN at step 5 of 10"}}) {
    CAPTURE(k.name);
    ConstantGradient m;
    int64_t calls = 0, checkpoints = 0;
    std::vector<double> w_after;  // w after the last step that completed
    train::Fit f(m.params(), {.steps = 10, .recipe = {.lr = 0.1}});
    train::LossFn loss = [&] {
      Tensor l = sum(m.c * m.w);
      if (++calls != 5) return l;
      // sqrt(0 * w) is 0, and its gradient 0.5 / sqrt(0) * 0 is NaN.
      return k.bad_gradient ? l + sum(sqrt(m.w * 0.0)) : l + k.added;
    };
    train::Hooks hooks{.on_step =
                           [&](const train::StepRecord&) {
                             w_after = m.w.to_vector<double>();
                             return true;
                           },
                       .checkpoint = [&] { ++checkpoints; },
                       .checkpoint_every = 2};
    CHECK_THROWS_WITH_AS(f.run(loss, hooks), doctest::Contains(k.message), Error);
    CHECK(f.steps_done() == 4);
    CHECK(f.stopped_on_error());
    CHECK(checkpoints == 2);                    // after steps 2 and 4, none after the stop
    CHECK(m.w.to_vector<double>() == w_after);  // step 5 did not touch the parameters
    for (double x : w_after) CHECK(std::isfinite(x));
    CHECK_THROWS_WITH_AS(f.step(loss), doctest::Contains("stopped at step 5"), Error);
  }
}

TEST_CASE("fit: skip_nonfinite skips a bad batch without touching the parameters, and stops after 10 in a row") {
  ConstantGradient m;
  int64_t calls = 0;
  std::set<int64_t> bad = {3, 4};  // calls whose loss is NaN
  train::LossFn loss = [&] {
    Tensor l = sum(m.c * m.w);
    return bad.count(++calls) ? l + std::numeric_limits<double>::quiet_NaN() : l;
  };
  train::Fit f(m.params(), {.steps = 6, .recipe = {.lr = 0.1}, .skip_nonfinite = true});
  std::vector<std::vector<double>> w;  // w after each step
  std::vector<bool> skipped;
  f.run(loss, {.on_step = [&](const train::StepRecord& r) {
          w.push_back(m.w.to_vector<double>());
          skipped.push_back(r.skipped);
          return true;
        }});
  CHECK(f.steps_done() == 6);
  CHECK(skipped == std::vector<bool>{false, false, true, true, false, false});
  CHECK(w[2] == w[1]);  // skipped steps leave the parameters
  CHECK(w[3] == w[1]);
  CHECK(w[4] != w[3]);  // and the run goes on
  // Ten bad batches in a row stop the run as without the option.
  bad.clear();
  for (int64_t i = 1; i <= 20; ++i) bad.insert(i);
  calls = 0;
  train::Fit g(m.params(), {.steps = 30, .recipe = {.lr = 0.1}, .skip_nonfinite = true});
  CHECK_THROWS_WITH_AS(g.run(loss), doctest::Contains("the loss is NaN at step 10 of 30 (lr 0.1, the 10th in a row)"),
                       Error);
  CHECK(g.stopped_on_error());
}

TEST_CASE("fit: hooks run at the right steps, in order, and on_step can stop the run") {
  auto trace = [](int64_t steps, int64_t stop_at, int64_t eval_every, int64_t checkpoint_every) {
    ConstantGradient m;
    std::vector<std::string> events;
    int64_t last = 0;
    train::Fit f(m.params(), {.steps = steps, .recipe = {.lr = 0.01}});
    f.run(m.loss(), {.evaluate =
                         [&] {
                           events.push_back("eval@" + std::to_string(last + 1));
                           return 1.5;
                         },
                     .eval_every = eval_every,
                     .on_step =
                         [&](const train::StepRecord& r) {
                           last = r.step;
                           events.push_back("step@" + std::to_string(r.step) + (r.val_loss ? "+val" : ""));
                           return r.step != stop_at;
                         },
                     .checkpoint = [&] { events.push_back("save@" + std::to_string(last)); },
                     .checkpoint_every = checkpoint_every});
    CHECK(f.steps_done() == (stop_at > 0 ? stop_at : steps));
    std::string joined;
    for (const auto& e : events) joined += (joined.empty() ? "" : " ") + e;
    return joined;
  };
  // Evaluates every 3 steps and after the last; saves every 4 and at the end.
  CHECK(trace(10, 0, 3, 4) ==
        "step@1 step@2 eval@3 step@3+val step@4 save@4 step@5 eval@6 step@6+val step@7 step@8 save@8 "
        "eval@9 step@9+val eval@10 step@10+val save@10");
  // Stopped by on_step at step 5: saved once, at 5.
  CHECK(trace(10, 5, 0, 4) == "step@1 step@2 step@3 step@4 save@4 step@5 save@5");
  // eval_every 0 evaluates after the last step only; the last step is a multiple of
  // checkpoint_every: saved once, not twice.
  CHECK(trace(8, 0, 0, 4) == "step@1 step@2 step@3 step@4 save@4 step@5 step@6 step@7 eval@8 step@8+val save@8");
  // No hooks at all: the loop still runs to the end.
  ConstantGradient m;
  train::Fit f(m.params(), {.steps = 3, .recipe = {.lr = 0.01}});
  f.run(m.loss());
  CHECK(f.steps_done() == 3);
}

TEST_CASE("fit: checkpoints by the clock, besides every N steps") {
  using Clock = std::chrono::steady_clock;
  // The steps after which the run saved, and the seconds between those saves.
  auto saves = [](int64_t every, double after_s, double step_s, std::vector<double>* gaps = nullptr) {
    ConstantGradient m;
    std::vector<int64_t> saved;
    int64_t last = 0;
    auto t = Clock::now();
    train::Fit f(m.params(), {.steps = 7, .recipe = {.lr = 0.01}});
    f.run(m.loss(), {.on_step =
                         [&](const train::StepRecord& r) {
                           last = r.step;
                           ::usleep(useconds_t(step_s * 1e6));  // a slow step
                           return true;
                         },
                     .checkpoint =
                         [&] {
                           saved.push_back(last);
                           if (gaps) gaps->push_back(std::chrono::duration<double>(Clock::now() - t).count());
                           t = Clock::now();
                         },
                     .checkpoint_every = every,
                     .checkpoint_after_s = after_s});
    return saved;
  };
  // Steps of 20 ms against 50 ms: saved once enough time has passed (after every third step
  // when the sleeps are exact), and at the end.
  std::vector<double> gaps;
  const std::vector<int64_t> by_time = saves(0, 0.05, 0.02, &gaps);
  CAPTURE(by_time);
  REQUIRE(by_time.size() >= 2);
  CHECK(by_time.size() <= 4);
  CHECK(by_time.back() == 7);
  for (size_t i = 0; i + 1 < gaps.size(); ++i) CHECK(gaps[i] >= 0.05);
  // A long interval never comes: only the end; every 2 saves at 2, 4, 6 whatever the clock.
  CHECK(saves(0, 3600, 0) == std::vector<int64_t>{7});
  CHECK(saves(2, 3600, 0) == std::vector<int64_t>{2, 4, 6, 7});
  ConstantGradient m;
  train::Fit f(m.params(), {.steps = 1, .recipe = {.lr = 0.01}});
  CHECK_THROWS_WITH_AS(f.run(m.loss(), {.checkpoint_after_s = -1}), doctest::Contains("checkpoint_after_s"), Error);
}

TEST_CASE("trainer: a NaN stops the run and never overwrites the good checkpoint") {
  train::TrainOptions o;
  o.model = models::GPTConfig{.dim = 16, .depth = 1, .heads = 2, .context = 16}.to_config();
  o.builtin_bytes = 20000;
  o.steps = 2;
  o.batch = 2;
  o.seq_len = 16;
  o.eval_every = 1;
  o.eval_batches = 1;
  o.threads = 1;
  o.out_dir = (fs::temp_directory_path() / ("tz_test_fit_" + std::to_string(::getpid()))).string();
  fs::remove_all(o.out_dir);
  train::Trainer(o).run();
  const fs::path ckpt = fs::path(o.out_dir) / "checkpoint.safetensors";
  const std::string good = slurp(ckpt);
  REQUIRE(!good.empty());

  // Continue to 4 steps with the final norm's weight poisoned: step 3's loss is NaN.
  auto poison = [](train::Trainer& t) {
    for (auto& [name, p] : t.model().named_parameters())
      if (p.dim() == 1) core::fill_(p, NAN);
  };
  auto t = train::Trainer::resume(o.out_dir, {.steps = 4});
  poison(*t);
  CHECK_THROWS_WITH_AS(t->run(), doctest::Contains("the loss is NaN at step 3 of 4"), Error);
  CHECK(slurp(ckpt) == good);
  CHECK_THROWS_WITH_AS(t->save_checkpoint(), doctest::Contains("stopped by a NaN or Inf"), Error);
  CHECK(slurp(ckpt) == good);

  // A direct save of non-finite weights is refused too, naming the tensor.
  auto u = train::Trainer::resume(o.out_dir, {.steps = 4});
  poison(*u);
  CHECK_THROWS_WITH_AS(u->save_checkpoint(), doctest::Contains("holds NaN or Inf"), Error);
  CHECK(slurp(ckpt) == good);
  // The good checkpoint still resumes and trains.
  auto v = train::Trainer::resume(o.out_dir, {.steps = 3});
  v->run();
  CHECK(v->step() == 3);
  fs::remove_all(o.out_dir);
}
