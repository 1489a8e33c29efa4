// gradcheck: compares analytic gradients with central finite differences, in f64.
//
// For y = fn(inputs), it draws a fixed random projection w of y's shape and checks
// d(sum(w * y))/dx for the chosen elements of every input that requires grad:
//   analytic  = backward through the graph,
//   numerical = (L(x + eps) - L(x - eps)) / (2 eps).
// An element fails when |analytic - numerical| > atol + rtol * |numerical|. Inputs may be
// non-contiguous views (each logical element is perturbed where it lives in storage), but
// not broadcast (stride-0) views.
//
// Which elements (gradcheck_elements): every element when max_elements = 0 or the tensor
// is small (under check_all_below elements, or not larger than the sample); otherwise a
// seeded sample of m = max(max_elements, min_elements) elements stratified over the
// tensor seen as R rows (dim 0) x N columns (the other dims flattened): sample i lies in
// row stratum [i R / m, (i+1) R / m) and in a column stratum given by a shuffled
// assignment, so every one of the m equal row strata and of the m equal column strata
// holds one element. A fused weight [3 H D, C] thus gets >= 5 checked rows in each of its
// q, k and v blocks. With block_rows (e.g. D: "blocks of D rows"), one more element is
// drawn in every block of that many rows, whatever the block count.
//
// Vacuity: a tensor whose analytic and numerical gradients are both exactly zero on every
// checked element proves nothing about its backward (ReZero's branch at alpha = 0, a
// parameter the loss never reaches). Such tensors are listed in `vacuous`, and `ok` is
// false unless allow_vacuous is set.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tz {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-4;
  uint64_t seed = 1234;          // for the projection w and the element sample
  int64_t max_elements = 0;      // per input: 0 = all; else the sample size (raised to min_elements)
  int64_t min_elements = 16;     // the least a sampled tensor gets (one per row stratum)
  int64_t check_all_below = 64;  // tensors with fewer elements are checked whole
  // Block sizes along dim 0: empty = none; one value = every input; one per input (0 =
  // none for that input). At least one element is checked in every block of rows.
  std::vector<int64_t> block_rows = {};
  // Names for the report, one per input ("input K" where missing).
  std::vector<std::string> names = {};
  bool allow_vacuous = false;  // true: all-zero gradients do not make ok false
};

// One line per input that requires grad.
struct GradcheckTensor {
  std::string name;
  Shape shape;
  int64_t checked = 0;       // elements compared
  int64_t failed = 0;        // elements outside atol + rtol |numerical|
  double max_abs_error = 0;  // over the checked elements (inf for NaN)
  bool vacuous = false;      // analytic and numerical exactly zero on every checked element
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;
  std::string report;                    // the worst failing element per input and the vacuous ones, or "ok"
  std::vector<GradcheckTensor> tensors;  // per input that requires grad, in input order
  std::vector<std::string> vacuous;      // names of the vacuous tensors
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

// The flat (row-major logical) indices gradcheck checks for input number `input` of
// shape `shape`, sorted and without repeats; deterministic in (options.seed, input).
std::vector<int64_t> gradcheck_elements(const Shape& shape, const GradcheckOptions& options, size_t input = 0);

}  // namespace tz
