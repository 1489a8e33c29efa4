// The zoo conformance checks, run on every registered variant (tests/zoo/ and
// `tensorzoo check ID`). Each variant is plugged into a tiny LM by its test_config:
//   1 build    builds from its default config; forward has the right shape, finite values
//   2 grad     gradcheck in f64 of the loss w.r.t. every parameter (a sample of elements)
//   3 causal   for causal models: changing tokens after t leaves logits up to t unchanged
//   4 step     where a step form exists: token-by-token decoding == the parallel forward
//   5 io       save -> load into a fresh model gives identical outputs
//   6 learns   a few hundred steps on the copy task cut the loss by a set fraction; the
//              target (0.85 x the initial ~2.75) is below ln 14 = 2.64, the best loss a
//              model can reach without reading the context, so it must copy to pass
// The 7th check, the catalogue's `proof` property, is a per-variant test in tests/zoo/.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace tz::conformance {

enum class Outcome { passed, failed, not_applicable };

struct CheckResult {
  std::string check;   // build, grad, causal, step, io, learns
  Outcome outcome = Outcome::not_applicable;
  std::string detail;  // numbers measured, or why it failed / does not apply
};

struct Options {
  int64_t learn_steps = 400;
  double learn_fraction = 0.85;  // final loss <= learn_fraction * initial loss
  bool learn = true;
};

// The tiny base config every variant's test_config is laid over.
std::string base_config();

// Runs checks 1-6 on `id`. Never throws: a failure is reported in the results.
std::vector<CheckResult> run_checks(const std::string& id, const Options& options = {});

// "pass", "FAIL" or "n/a".
const char* outcome_name(Outcome o);

}  // namespace tz::conformance
