#include "train/forms_agree.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/creation.h"

namespace tz::forms {

const char* gate_name(Gate g) { return g == Gate::unit_decay ? "unit_decay" : "steep_decay"; }

std::string Comparison::str() const {
  char buf[256];
  const bool used = check == "used";
  std::snprintf(buf, sizeof buf, "%-9s %-5s %-30s %-10s %s %-8.1e %s", form.c_str(),
                chunk > 0 ? ("c=" + std::to_string(chunk)).c_str() : "-", check.c_str(), quantity.c_str(),
                used ? "max|g|" : "err   ", error, ok ? "ok" : "FAIL");
  return detail.empty() ? std::string(buf) : std::string(buf) + "  (" + detail + ")";
}

std::vector<Comparison> FormsResult::failures() const {
  std::vector<Comparison> f;
  for (const Comparison& c : lines)
    if (!c.ok) f.push_back(c);
  return f;
}

std::string FormsResult::report() const {
  std::ostringstream os;
  os << kernel << ": " << (ok ? "forms agree" : "FORMS DISAGREE") << ", " << lines.size() << " comparisons, max error "
     << max_error << "\n";
  for (const Comparison& c : lines) os << "  " << c.str() << "\n";
  for (const std::string& s : skipped) os << "  skipped: " << s << "\n";
  return os.str();
}

std::string FormsResult::failure_report() const {
  std::vector<Comparison> f = failures();
  if (f.empty()) return "ok";
  std::ostringstream os;
  os << kernel << ": " << f.size() << " of " << lines.size() << " comparisons fail\n";
  for (const Comparison& c : f) os << "  " << c.str() << "\n";
  return os.str();
}

// ---- gate inputs ---------------------------------------------------------------------------
Tensor unit_log_decay(const Shape& shape) { return zeros(shape, DType::f64); }

Tensor steep_log_decay(const Shape& shape, int64_t time_dim, int64_t chunk, double chunk_sum, Generator& gen) {
  TZ_CHECK(time_dim >= 0 && time_dim < int64_t(shape.size()), "steep_log_decay: time_dim ", time_dim,
           " out of range for shape ", shape);
  TZ_CHECK(chunk >= 1, "steep_log_decay: chunk must be >= 1, got ", chunk);
  TZ_CHECK(chunk_sum < 0, "steep_log_decay: chunk_sum must be negative, got ", chunk_sum);
  Tensor g = empty(shape, DType::f64);
  double* p = g.data<double>();
  const int64_t T = shape[size_t(time_dim)];
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < time_dim; ++d) outer *= shape[size_t(d)];
  for (int64_t d = time_dim + 1; d < int64_t(shape.size()); ++d) inner *= shape[size_t(d)];
  std::vector<double> u(static_cast<size_t>(chunk));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i)
      for (int64_t t0 = 0, j = 0; t0 < T; t0 += chunk, ++j) {
        const int64_t L = std::min(chunk, T - t0);
        double total = 0;
        for (int64_t s = 0; s < L; ++s) total += u[size_t(s)] = 1 + 2 * gen.uniform();
        for (int64_t s = 0; s < L; ++s) {
          // Steep: shares of chunk_sum; gentle: in [-0.1, 0].
          const double v = j % 2 == 0 ? chunk_sum * u[size_t(s)] / total : -0.05 * (u[size_t(s)] - 1);
          p[(o * T + t0 + s) * inner + i] = v;
        }
      }
  return g;
}

namespace {
// One form's results on one set of inputs: out, state, and the gradients of
// L = <w_out, out> + <w_state, state> w.r.t. every input (zeros when unreached), then h0.
struct Run {
  Tensor out, state;
  std::vector<Tensor> grads;
  std::string threw;
};

struct Probe {
  Tensor w_out, w_state;
};

using Whole = std::function<FormOutput(const std::vector<Tensor>&, const Tensor&)>;

bool is_float(const Tensor& t) { return t.dtype() == DType::f64 || t.dtype() == DType::f32; }

// Runs `form` on all T tokens (split = 0), or on [0, split) and then on [split, T) from
// the state the first part returned.
Run run(const Whole& form, const std::vector<Input>& inputs, const Tensor& h0, const Probe* probe, int64_t split,
        int64_t out_time_dim) {
  Run r;
  try {
    std::vector<Tensor> leaves;
    for (const Input& in : inputs) {
      Tensor x = in.value.detach();
      if (is_float(x)) x = x.clone().requires_grad_();
      leaves.push_back(x);
    }
    Tensor h = h0.detach().clone().requires_grad_();
    FormOutput o;
    if (split == 0) {
      o = form(leaves, h);
    } else {
      auto part = [&](int64_t start, int64_t len) {
        std::vector<Tensor> xs;
        for (size_t i = 0; i < inputs.size(); ++i)
          xs.push_back(inputs[i].time_dim == kNoTime ? leaves[i] : leaves[i].narrow(inputs[i].time_dim, start, len));
        return xs;
      };
      int64_t total = 0;  // T
      for (const Input& in : inputs)
        if (in.time_dim != kNoTime) total = in.value.size(in.time_dim);
      FormOutput first = form(part(0, split), h);
      FormOutput second = form(part(split, total - split), first.state);
      TZ_CHECK(first.out.defined() && second.out.defined(), "a part's out is undefined");
      o = {cat({first.out, second.out}, out_time_dim), second.state};
    }
    TZ_CHECK(o.out.defined() && o.state.defined(), "the form returned an undefined ",
             o.out.defined() ? "state" : "out");
    r.out = o.out.detach();
    r.state = o.state.detach();
    if (probe) {
      TZ_CHECK(o.out.shape() == probe->w_out.shape() && o.state.shape() == probe->w_state.shape(), "out ",
               o.out.shape(), " and state ", o.state.shape(), " where the naive loop gave ", probe->w_out.shape(),
               " and ", probe->w_state.shape());
      Tensor L = sum(o.out * probe->w_out) + sum(o.state * probe->w_state);
      if (L.requires_grad()) L.backward();
      leaves.push_back(h);
      for (const Tensor& x : leaves) {
        if (!is_float(x)) {
          r.grads.push_back(Tensor());
          continue;
        }
        Tensor g = x.grad();
        r.grads.push_back(g.defined() ? g.detach() : zeros(x.shape(), DType::f64));
      }
    }
  } catch (const std::exception& e) {
    r.threw = e.what();
  }
  return r;
}

// max |a - ref| / max(max |ref|, floor); 0 when a == ref; inf with a reason otherwise.
double rel_error(const Tensor& a, const Tensor& ref, double floor, std::string& why) {
  if (a.shape() != ref.shape()) {
    why = cat_str("shape ", a.shape(), " vs the naive loop's ", ref.shape());
    return INFINITY;
  }
  std::vector<double> x = a.to_vector<double>(), y = ref.to_vector<double>();
  double diff = 0, scale = 0;
  int64_t bad_x = 0, bad_y = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    bad_x += !std::isfinite(x[i]);
    bad_y += !std::isfinite(y[i]);
    diff = std::max(diff, std::abs(x[i] - y[i]));
    scale = std::max(scale, std::abs(y[i]));
  }
  if (bad_y) {
    why = cat_str(bad_y, " NaN/Inf in the naive loop's value");
    return INFINITY;
  }
  if (bad_x) {
    why = cat_str(bad_x, " of ", x.size(), " values NaN/Inf");
    return INFINITY;
  }
  scale = std::max(scale, floor);
  if (diff == 0) return 0;
  if (scale == 0) {
    why = cat_str("the naive loop's value is exactly 0, this one reaches ", diff);
    return INFINITY;
  }
  return diff / scale;
}
}  // namespace

FormsResult forms_agree(const KernelForms& k, const FormsOptions& opt) {
  const std::string who = "forms_agree(" + k.name + ")";
  TZ_CHECK(k.naive && k.chunked && k.make_inputs && k.state_shape, who,
           ": naive, chunked, make_inputs and state_shape are required");
  const int64_t T = opt.T;
  TZ_CHECK(T >= 4, who, ": T must be at least 4, got ", T);
  std::vector<int64_t> chunks;
  for (int64_t c : opt.chunks) {
    TZ_CHECK(c >= 1 && c < T, who, ": chunk sizes must be in [1, T = ", T, "), got ", c);
    TZ_CHECK(c == 1 || T % c != 0, who, ": T = ", T, " is a multiple of chunk ", c,
             ", so no run would end in a partial chunk; take a T that is a multiple of none of ", opt.chunks);
    chunks.push_back(c);
  }
  chunks.push_back(T);

  Generator gen(opt.seed);
  std::vector<Input> inputs = k.make_inputs(T, gen);
  TZ_CHECK(!inputs.empty(), who, ": make_inputs returned no inputs");
  std::set<std::string> names;
  bool has_time = false;
  for (const Input& in : inputs) {
    TZ_CHECK(!in.name.empty() && names.insert(in.name).second, who, ": input names must be unique and non-empty, got '",
             in.name, "'");
    TZ_CHECK(in.value.defined(), who, ": input '", in.name, "' is undefined");
    TZ_CHECK(!is_float(in.value) || in.value.dtype() == DType::f64, who, ": input '", in.name, "' must be f64, got ",
             dtype_name(in.value.dtype()));
    if (in.time_dim == kNoTime) continue;
    TZ_CHECK(in.time_dim >= 0 && in.time_dim < in.value.dim() && in.value.size(in.time_dim) == T, who, ": input '",
             in.name, "' of shape ", in.value.shape(), " has no dim ", in.time_dim, " of size T = ", T);
    has_time = true;
  }
  TZ_CHECK(has_time, who, ": no input runs along time (every time_dim is kNoTime)");
  for (const std::string& n : k.log_decays)
    TZ_CHECK(names.count(n), who, ": log_decays names '", n, "', which is not an input");
  Tensor h0 = randn(k.state_shape(inputs), gen, DType::f64);

  FormsResult res;
  res.kernel = k.name;
  auto add = [&](Comparison c) {
    if (c.check != "used") res.max_error = std::max(res.max_error, c.error);
    res.ok = res.ok && c.ok;
    res.lines.push_back(std::move(c));
  };
  // Compares one run with the naive reference: out, state, every gradient. At the gates,
  // errors are taken relative to the larger of the gate's and the ordinary inputs' scale
  // of each quantity (`usual`): decays that cut every cross-token term leave gradients
  // near 0, while a chunked form gets them as differences of terms of ordinary size (the
  // backward of G_t - G_s), whose rounding is ordinary-sized too. (Decayed linear
  // attention, 37 steps summing to -1000: max |grad g| 7e-6 against 34 on ordinary
  // inputs; the chunked form's error 2e-15, which is 3e-10 of the former.)
  auto max_abs = [](const Tensor& t) {
    double m = 0;
    if (t.defined())
      for (double v : t.to_vector<double>()) m = std::max(m, std::isfinite(v) ? std::abs(v) : 0.0);
    return m;
  };
  auto compare = [&](const Run& got, const Run& ref, const std::string& form, int64_t chunk, const std::string& check,
                     const Run* usual = nullptr) {
    if (!got.threw.empty() || !ref.threw.empty()) {
      const bool mine = !got.threw.empty();
      add({form, chunk, check, "threw", INFINITY, false, mine ? got.threw : "the naive loop threw: " + ref.threw});
      return;
    }
    if (usual && (!usual->threw.empty() || usual->grads.size() != ref.grads.size())) usual = nullptr;
    auto line = [&](const std::string& q, const Tensor& a, const Tensor& b, const Tensor& u) {
      std::string why;
      double e = rel_error(a, b, usual ? max_abs(u) : 0.0, why);
      add({form, chunk, check, q, e, e <= opt.tol, why});
    };
    line("out", got.out, ref.out, usual ? usual->out : Tensor());
    line("state", got.state, ref.state, usual ? usual->state : Tensor());
    for (size_t i = 0; i < ref.grads.size(); ++i) {
      if (!ref.grads[i].defined()) continue;
      line("grad " + (i < inputs.size() ? inputs[i].name : std::string("h0")), got.grads[i], ref.grads[i],
           usual ? usual->grads[i] : Tensor());
    }
  };

  // The naive loop on the random inputs fixes the probe w (its shapes) and the reference.
  Run naive0 = run(k.naive, inputs, h0, nullptr, 0, k.out_time_dim);
  if (!naive0.threw.empty()) {
    add({"naive", 0, "full", "threw", INFINITY, false, naive0.threw});
    return res;
  }
  Probe probe{randn(naive0.out.shape(), gen, DType::f64), randn(naive0.state.shape(), gen, DType::f64)};
  auto naive_on = [&](const std::vector<Input>& in) { return run(k.naive, in, h0, &probe, 0, k.out_time_dim); };
  auto chunked_at = [&](int64_t c) -> Whole {
    return [&k, c](const std::vector<Tensor>& x, const Tensor& h) { return k.chunked(x, h, c); };
  };
  const Run ref = naive_on(inputs);

  // used: every gradient of the naive loop is not all zero.
  for (size_t i = 0; i < ref.grads.size(); ++i) {
    if (!ref.grads[i].defined()) continue;
    double m = 0;
    for (double v : ref.grads[i].to_vector<double>()) m = std::max(m, std::isnan(v) ? INFINITY : std::abs(v));
    const std::string q = "grad " + (i < inputs.size() ? inputs[i].name : std::string("h0"));
    add({"naive", 0, "used", q, m, m > 0 && std::isfinite(m),
         m > 0 ? "" : "all zero: the kernel ignores it, and agreeing gradients would prove nothing"});
  }

  // full: every form on all T tokens.
  for (int64_t c : chunks)
    compare(run(chunked_at(c), inputs, h0, &probe, 0, k.out_time_dim), ref, "chunked", c, "full");
  if (k.quadratic) compare(run(k.quadratic, inputs, h0, &probe, 0, k.out_time_dim), ref, "quadratic", 0, "full");

  // continue: [0, a) then [a, T) from the returned state.
  if (opt.continuation) {
    const std::vector<int64_t> whole_splits = {1, T / 2, T - 1};
    for (int64_t a : whole_splits)
      compare(run(k.naive, inputs, h0, &probe, a, k.out_time_dim), ref, "naive", 0, "continue a=" + std::to_string(a));
    for (int64_t c : chunks) {
      const int64_t b = std::max(c, (T / 2) / c * c);  // a chunk boundary near T/2
      std::set<int64_t> splits;
      for (int64_t a : {int64_t(1), b - 1, b, b + 1})
        if (a >= 1 && a < T) splits.insert(a);
      for (int64_t a : splits)
        compare(run(chunked_at(c), inputs, h0, &probe, a, k.out_time_dim), ref, "chunked", c,
                "continue a=" + std::to_string(a));
    }
    if (k.quadratic)
      for (int64_t a : whole_splits)
        compare(run(k.quadratic, inputs, h0, &probe, a, k.out_time_dim), ref, "quadratic", 0,
                "continue a=" + std::to_string(a));
  } else {
    res.skipped.push_back("continuation: turned off in the options");
  }

  // gates: extreme decays, every form against the naive loop on the same inputs.
  if (!opt.gates) {
    res.skipped.push_back("gates: turned off in the options");
  } else if (k.log_decays.empty() && !k.make_gate) {
    res.skipped.push_back("gates: the kernel names no log_decays and has no make_gate");
  } else {
    TZ_CHECK(opt.steep_chunk_sum < -100, who, ": steep_chunk_sum must be below -100, got ", opt.steep_chunk_sum);
    auto gate_inputs = [&](Gate g, int64_t c) {
      if (k.make_gate) return k.make_gate(g, c, inputs, gen);
      std::vector<Input> in = inputs;
      for (Input& x : in)
        if (std::find(k.log_decays.begin(), k.log_decays.end(), x.name) != k.log_decays.end())
          x.value = g == Gate::unit_decay ? unit_log_decay(x.value.shape())
                                          : steep_log_decay(x.value.shape(), x.time_dim, c, opt.steep_chunk_sum, gen);
      return in;
    };
    // Unit decay: one input set for every chunk size (gates built for chunk T).
    const std::string unit = std::string("gate ") + gate_name(Gate::unit_decay);
    std::vector<Input> in_unit = gate_inputs(Gate::unit_decay, T);
    Run ref_unit = naive_on(in_unit);
    for (int64_t c : chunks)
      compare(run(chunked_at(c), in_unit, h0, &probe, 0, k.out_time_dim), ref_unit, "chunked", c, unit, &ref);
    if (k.quadratic)
      compare(run(k.quadratic, in_unit, h0, &probe, 0, k.out_time_dim), ref_unit, "quadratic", 0, unit, &ref);
    // Steep: inputs aimed at each chunk size.
    for (int64_t c : chunks) {
      const std::string steep = std::string("gate ") + gate_name(Gate::steep_decay);
      std::vector<Input> in_steep = gate_inputs(Gate::steep_decay, c);
      Run ref_steep = naive_on(in_steep);
      compare(run(chunked_at(c), in_steep, h0, &probe, 0, k.out_time_dim), ref_steep, "chunked", c, steep, &ref);
      if (k.quadratic)
        compare(run(k.quadratic, in_steep, h0, &probe, 0, k.out_time_dim), ref_steep, "quadratic", 0,
                steep + " (aimed at c=" + std::to_string(c) + ")", &ref);
    }
  }
  return res;
}

}  // namespace tz::forms
