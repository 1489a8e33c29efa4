// The zoo conformance checks, run on every registered variant (tests/zoo/ and
// `tensorzoo check ID`). Each variant is plugged into a tiny model by its test_config, and
// each check measures a number the table shows:
//   build   builds from its default config; forward has the right shape, finite values
//   grad    f64 gradcheck of the loss w.r.t. every parameter: at least 16 elements per
//           tensor, stratified over its rows, one more in every block of D rows (each head
//           of a fused q/k/v weight), tensors under 64 elements whole. A tensor whose
//           analytic and numerical gradients are both all zero is vacuous and fails, unless
//           the variant's randomise hook draws a state where they are not (ReZero's α ≠ 0)
//   causal  for causal models: changing the tokens after t leaves the outputs up to t
//           unchanged and moves a later one, for t = 0, T/2 and T-2, T >= 2 chunk + 3
//           (causal, step and io run on the randomised model when there is a hook)
//   step    where a step form exists, f64, to 1e-9 against forward: token by token from an
//           empty state; a prefill of a tokens in one call, then token by token; forward
//           of x[:c] then of x[c:] continuing its state (T >= 2 chunk + 3, a and c off the
//           chunk grid)
//   io      save -> load into a fresh model gives identical outputs; a decoding state saved
//           mid-sequence (nn::save_state, a safetensors file) and restored into the fresh
//           model continues with identical logits
//   learns  held-out token accuracy on the scored positions of fresh batches, at least 0.9
//           after the default budget (copy, 400 steps, peak lr 1e-2); a variant changes the
//           budget or the task only with a reason in its registration, which is printed.
//           Selective mixers also learn selective copying, recall mixers a small MQAR.
// The 7th check, the catalogue's `proof` property, is a per-variant test in tests/zoo/.
//
// The checks run on a Subject: a factory of fresh models and what the registration states
// about them, so that tests can run them on models that are not registered (planted bugs).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "models/model.h"

namespace tz::conformance {

enum class Outcome { passed, failed, not_applicable };

struct CheckResult {
  std::string check;  // build, grad, causal, step, io, learns
  Outcome outcome = Outcome::not_applicable;
  std::string detail;                     // numbers measured, or why it failed / does not apply
  std::string cell;                       // the headline number for the table (e.g. "4e-10, 412 el")
  std::map<std::string, double> numbers;  // what it measured, by name (e.g. "max error")
  double seconds = 0;                     // time the check took
};

struct Options {
  int64_t learn_steps = 400;     // the default budget of the learns check
  double learn_fraction = 0.85;  // learn(): the loss report's reference fraction
  double learn_bar = 0.9;        // held-out accuracy (R² for real-valued outputs) to reach
  bool learn = true;
  uint64_t learn_seed = 0;  // shifts the learns check's seeds (initialisation, batches): 0 = the suite's
  int64_t learn_tries = 3;  // seeds learn_seed, learn_seed + 1, ...: the first to reach the bar counts
  int64_t try_steps = 0;    // > 0: this budget instead of the registration's (to find one)
  double try_lr = 0;        // > 0: this learning rate instead of the registration's
  int64_t try_warmup = 0;   // > 0: this many warmup steps instead of the registration's
};

// How a subject is taught (from its registration; the defaults are Options' and copy).
struct Learning {
  int64_t steps = 0;              // 0 = Options::learn_steps
  double lr = 0;                  // 0 = the default (read by learn() from the registry)
  std::string task;               // "" = copy
  std::string reason;             // why steps, lr or task differ from the default
  std::vector<std::string> also;  // more tasks its family claims (selective_copy_mamba, mqar_zoology)
  // The override as the suite prints it ("" when there is none).
  std::string override_text() const;
};

// What the checks of a token model run on.
struct Subject {
  std::string id;  // names it in messages and temporary files
  // A fresh model from `seed` that takes sequences of at least `context` positions.
  std::function<std::shared_ptr<models::Model>(uint64_t seed, int64_t context)> make;
  // It brings its own examples and task (Model::sample: the wrappers of models/wrappers.h);
  // otherwise it is a token model, checked on random ids and taught the tasks of data/tasks.h.
  bool own_task = false;
  int64_t chunk = 0;                                       // chunk or window size (0 = none)
  std::function<void(nn::Module&, Generator&)> randomise;  // see nn::VariantInfo::randomise
  Learning learning;
};

// The tiny base config every variant's test_config is laid over.
std::string base_config();
// The subject of a registered id: a token model built from base_config() and its test_config,
// or a wrapper built from its test_config alone.
Subject subject(const std::string& id);
// The sequence length of the causal and step checks: max(12, 2 chunk + 3).
int64_t check_length(int64_t chunk);

// The checks, one by one; none throws (a failure is reported in the result).
CheckResult check_build(const Subject& s);
CheckResult check_grad(const Subject& s);
CheckResult check_causal(const Subject& s);
CheckResult check_step(const Subject& s);
CheckResult check_io(const Subject& s);
CheckResult check_learns(const Subject& s, const Options& options = {});

// All six checks (stops after a failed build); run_checks(id) on subject(id).
std::vector<CheckResult> run_checks(const Subject& s, const Options& options = {});
std::vector<CheckResult> run_checks(const std::string& id, const Options& options = {});

// "pass", "FAIL" or "n/a".
const char* outcome_name(Outcome o);

}  // namespace tz::conformance
