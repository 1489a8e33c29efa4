// The scans' forms agree (train/forms_agree.h), all in f64 to 1e-10: outputs, final states
// and the gradients of every input and of h0, at T = 37 (a multiple of no chunk size), with
// decays of exactly 1 and with chunks whose decay products underflow (exp(-1000) = 0).
//   scan:            naive = the loop of plain ops (scan_composite); chunked = the scan op
//                    with chunks of c; the op's loop over T and the reference kernels too.
//   selective_scan:  naive = Mamba's selective_scan_ref written with plain ops
//                    (selective_scan_composite, Abar materialised); chunked = the fused op
//                    saving its state every c steps (the backward recomputes c steps at a
//                    time); and the reference kernels.
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "tests/test_util.h"
#include "train/forms_agree.h"

using namespace tz;
using forms::FormOutput;
using forms::Input;

namespace {
constexpr int64_t kB = 2, kD = 3, kN = 4;

enum class ScanForm { chunked, loop, reference };

forms::KernelForms scan_forms(ScanForm form, bool complex) {
  auto state_of = [](const Tensor& h) { return h.select(1, h.size(1) - 1); };
  return {
      .name = complex ? "complex scan" : "scan",
      .naive = [complex, state_of](const std::vector<Tensor>& x, const Tensor& h0) -> FormOutput {
        Tensor h = scan_composite(x[0], x[1], h0, complex);
        return {h, state_of(h)};
      },
      .chunked = [form, complex, state_of](const std::vector<Tensor>& x, const Tensor& h0, int64_t c) -> FormOutput {
        ScanOptions o{.chunk = form == ScanForm::chunked ? c : x[0].size(1),
                      .complex = complex,
                      .reference = form == ScanForm::reference};
        Tensor h = scan(x[0], x[1], h0, o);
        return {h, state_of(h)};
      },
      .make_inputs =
          [complex](int64_t T, Generator& gen) {
            Shape s = complex ? Shape{kB, T, kD, 2} : Shape{kB, T, kD};
            // |a| in [0.5, 0.95]: for complex pairs a rotation of that modulus
            Tensor a = rand(s, gen, DType::f64, 0.5, 0.95);
            if (complex) {
              Tensor r = rand({kB, T, kD}, gen, DType::f64, 0.5, 0.95), th = rand({kB, T, kD}, gen, DType::f64, -1, 1);
              a = stack({r * cos(th), r * sin(th)}, -1);
            }
            return std::vector<Input>{{"a", a, 1}, {"b", randn(s, gen, DType::f64), 1}};
          },
      .state_shape =
          [complex](const std::vector<Input>&) {
            return complex ? Shape{kB, kD, 2} : Shape{kB, kD};
          },
      .make_gate =
          [complex](forms::Gate gate, int64_t chunk, std::vector<Input> in, Generator& gen) {
            Shape s{kB, in[0].value.size(1), kD};
            Tensor log_a = gate == forms::Gate::unit_decay ? forms::unit_log_decay(s)
                                                           : forms::steep_log_decay(s, 1, chunk, -1000, gen);
            Tensor a = exp(log_a);
            if (complex) {  // the same modulus, turned by a random angle
              Tensor th = rand(s, gen, DType::f64, -1, 1);
              a = stack({a * cos(th), a * sin(th)}, -1);
            }
            in[0].value = a;
            return in;
          },
  };
}

forms::KernelForms selective_forms(bool reference) {
  return {
      .name = reference ? "selective_scan reference kernels" : "selective_scan",
      .naive = [](const std::vector<Tensor>& x, const Tensor& h0) -> FormOutput {
        SelectiveScanResult r = selective_scan_composite(x[0], x[1], x[2], x[3], x[4], x[5], x[6], h0);
        return {r.y, r.state};
      },
      .chunked = [reference](const std::vector<Tensor>& x, const Tensor& h0, int64_t c) -> FormOutput {
        SelectiveScanResult r =
            selective_scan(x[0], x[1], x[2], x[3], x[4], x[5], x[6], h0, {.chunk = c, .reference = reference});
        return {r.y, r.state};
      },
      .make_inputs =
          [](int64_t T, Generator& gen) {
            return std::vector<Input>{{"u", randn({kB, T, kD}, gen, DType::f64), 1},
                                      {"delta", rand({kB, T, kD}, gen, DType::f64, 0.05, 1.0), 1},
                                      {"A", rand({kD, kN}, gen, DType::f64, -2.0, -0.1), forms::kNoTime},
                                      {"B", randn({kB, T, kN}, gen, DType::f64), 1},
                                      {"C", randn({kB, T, kN}, gen, DType::f64), 1},
                                      {"D", randn({kD}, gen, DType::f64), forms::kNoTime},
                                      {"z", randn({kB, T, kD}, gen, DType::f64), 1}};
          },
      .state_shape =
          [](const std::vector<Input>&) {
            return Shape{kB, kD, kN};
          },
      // The log-decay is delta A: A = 0 gives decays of exactly 1 (delta still scales the
      // input); A = -1 with delta = -steep gives chunks whose decays multiply to exp(-1000).
      .make_gate =
          [](forms::Gate gate, int64_t chunk, std::vector<Input> in, Generator& gen) {
            if (gate == forms::Gate::unit_decay) {
              in[2].value = zeros({kD, kN}, DType::f64);
            } else {
              in[2].value = -ones({kD, kN}, DType::f64);
              in[1].value = -forms::steep_log_decay(in[1].value.shape(), 1, chunk, -1000, gen);
            }
            return in;
          },
  };
}

void check(const forms::FormsResult& r, double* worst) {
  MESSAGE(r.kernel, ": ", r.lines.size(), " comparisons, max relative error ", r.max_error);
  CHECK_MESSAGE(r.ok, r.failure_report());
  CHECK(r.skipped.empty());
  CHECK(r.max_error <= 1e-10);
  if (worst) *worst = std::max(*worst, r.max_error);
}
}  // namespace

TEST_CASE("forms_agree: scan chunked == the loop of plain ops (real and complex)") {
  for (bool complex : {false, true}) {
    CAPTURE(complex);
    check(forms::forms_agree(scan_forms(ScanForm::chunked, complex)), nullptr);
  }
}

TEST_CASE("forms_agree: the scan op's loop over T and the reference kernels == the loop of plain ops") {
  for (ScanForm f : {ScanForm::loop, ScanForm::reference})
    for (bool complex : {false, true}) check(forms::forms_agree(scan_forms(f, complex), {.chunks = {1, 8}}), nullptr);
}

TEST_CASE("forms_agree: selective_scan fused (states saved every c steps) == selective_scan_ref with plain ops") {
  check(forms::forms_agree(selective_forms(false)), nullptr);
  check(forms::forms_agree(selective_forms(true), {.chunks = {1, 8}}), nullptr);
}

TEST_CASE("forms_agree catches a scan whose chunked form is given the wrong chunk boundary carry") {
  // The planted bug: the chunked op run without its initial state in every part but the
  // first, i.e. the carry across a continuation is lost.
  forms::KernelForms k = scan_forms(ScanForm::chunked, false);
  k.chunked = [](const std::vector<Tensor>& x, const Tensor& h0, int64_t c) -> FormOutput {
    Tensor h = scan(x[0], x[1], Tensor(), {.chunk = c});
    return {h, h.select(1, h.size(1) - 1)};
  };
  forms::FormsResult r = forms::forms_agree(k, {.gates = false});
  CHECK_FALSE(r.ok);
}
