// gradcheck: compares analytic gradients with central finite differences, in f64.
//
// For y = fn(inputs), it draws a fixed random projection w of y's shape and checks
// d(sum(w * y))/dx for every element of every input that requires grad:
//   analytic  = backward through the graph,
//   numerical = (L(x + eps) - L(x - eps)) / (2 eps).
// An element fails when |analytic - numerical| > atol + rtol * |numerical|. Inputs may be
// non-contiguous views (each logical element is perturbed where it lives in storage), but
// not broadcast (stride-0) views.
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
  uint64_t seed = 1234;      // for the projection w
  int64_t max_elements = 0;  // per input; 0 = all (large inputs: a fixed random sample)
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;
  std::string report;  // the worst failing element per input, or "ok"
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace tz
