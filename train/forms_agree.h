// forms_agree: proves that the forms of a recurrent sequence kernel compute one function.
//
// A linear-recurrent kernel (linear attention with decays, RetNet, GLA, Mamba's scan,
// DeltaNet, ...) comes in forms (flash-linear-attention's naive / chunk / fused_recurrent,
// and the materialised "parallel" form of e.g. RetNet, arXiv 2307.08621, sec. 2.2):
//   naive      the recurrent loop, one token at a time: the reference;
//   chunked    the same recurrence over chunks of c tokens (intra-chunk in parallel, the
//              state carried between chunks), c a free parameter;
//   quadratic  the materialised T x T form, where one exists.
// Each takes the inputs and an initial state h0 and returns {out, final state}.
//
// The caller describes the kernel by callables over f64 tensors (KernelForms); forms_agree
// then checks, all in f64, against the naive loop:
//   full      chunked at every c in {1, 2, 3, 8, 16, T} (T = 37, a multiple of none of
//             2, 3, 8, 16, so every run ends in a partial chunk) and quadratic: out, final
//             state, and the gradients of every input and of h0, where the gradients are
//             those of L = <w_out, out> + <w_state, state> for a fixed random w;
//   continue  each form run on tokens [0, a), then on [a, T) from the state it returned,
//             equals one naive run (out, state, gradients), for a in {1, b - 1, b, b + 1}
//             with b a chunk boundary near T/2; the naive loop continues itself too;
//   gates     extreme decays: every log-decay 0 (decay exactly 1), and steep chunks whose
//             log-decays sum to steep_chunk_sum (default -1000: past the -745 at which
//             exp underflows to 0 and the 709 at which it overflows in f64, so a chunked
//             form that exponentiates a lone cumulative sum meets 0 * inf) alternating
//             with gentle ones; no NaN or Inf anywhere and the naive loop's answer;
//   used      the naive loop's gradient of every input and of h0 is not all zero on the
//             random inputs, so that agreeing gradients mean something.
// Error of a quantity: max |form - naive| / max |naive| (0 when they are equal; inf for
// NaN, Inf or another shape); at the gates the divisor is at least the quantity's max on
// the ordinary inputs (see forms_agree.cpp). A line fails above tol (1e-10).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace tz::forms {

// What a form returns: its output and the final state (same shape as h0).
struct FormOutput {
  Tensor out;
  Tensor state;
};

// One input of the kernel. All floating inputs must be f64; each gets its gradient checked.
struct Input {
  std::string name;  // "q", "k", "v", "g": names it in the report
  Tensor value;
  int64_t time_dim = 1;  // the dim of size T; kNoTime: the same whole tensor for every part
};
constexpr int64_t kNoTime = -1;

using FullForm = std::function<FormOutput(const std::vector<Tensor>& inputs, const Tensor& h0)>;
using ChunkedForm = std::function<FormOutput(const std::vector<Tensor>& inputs, const Tensor& h0, int64_t chunk)>;

// The extreme gates forms_agree builds (see unit_log_decay, steep_log_decay).
enum class Gate { unit_decay, steep_decay };
const char* gate_name(Gate g);

struct KernelForms {
  std::string name;
  FullForm naive;       // the recurrent loop (required)
  ChunkedForm chunked;  // required
  FullForm quadratic;   // optional
  // Random inputs for sequence length T (values in the kernel's normal range, log-decays
  // <= 0), and the shape of the state h0 for them.
  std::function<std::vector<Input>(int64_t T, Generator& gen)> make_inputs;
  std::function<Shape(const std::vector<Input>& inputs)> state_shape;
  int64_t out_time_dim = 1;  // the dim of `out` along which the parts of a continuation join
  // Names of inputs that are log-decays (log of the decay, <= 0): the gates replace them
  // with unit_log_decay / steep_log_decay.
  std::vector<std::string> log_decays = {};
  // Instead of log_decays: builds a gate's inputs from random ones (for kernels whose decay
  // is a function of several inputs). chunk is the chunk size the inputs are aimed at.
  std::function<std::vector<Input>(Gate gate, int64_t chunk, std::vector<Input> inputs, Generator& gen)> make_gate;
};

struct FormsOptions {
  int64_t T = 37;                                  // must be a multiple of none of `chunks` but 1
  std::vector<int64_t> chunks = {1, 2, 3, 8, 16};  // T itself is added
  double tol = 1e-10;
  double steep_chunk_sum = -1000;  // each steep chunk's log-decays sum to this (< -100)
  uint64_t seed = 1;
  bool continuation = true;
  bool gates = true;
};

// One comparison against the naive loop.
struct Comparison {
  std::string form;      // "chunked", "quadratic", "naive"
  int64_t chunk = 0;     // chunk size; 0 for forms without one
  std::string check;     // "full", "continue a=17", "gate unit_decay", "gate steep_decay", "used"
  std::string quantity;  // "out", "state", "grad q", "grad h0", "threw"
  double error = 0;      // see the file comment; inf when non-finite
  bool ok = true;
  std::string detail;       // why it failed, when not just the number (non-finite values, throws)
  std::string str() const;  // "chunked   c=8   continue a=16   grad h0   err 2.1e-16  ok"
};

struct FormsResult {
  std::string kernel;
  bool ok = true;
  double max_error = 0;  // over the comparison lines (not "used")
  std::vector<Comparison> lines;
  std::vector<std::string> skipped;  // checks not run, and why
  std::vector<Comparison> failures() const;
  std::string report() const;          // every line, then the skipped checks
  std::string failure_report() const;  // the failing lines only, or "ok"
};

FormsResult forms_agree(const KernelForms& kernel, const FormsOptions& options = {});

// ---- gate inputs ---------------------------------------------------------------------------
// Log-decays of exactly 0: decay 1, the state never forgets.
Tensor unit_log_decay(const Shape& shape);
// Log-decays along time_dim, in chunks of `chunk` tokens from t = 0: even chunks steep (their
// values, random in a 1:3 ratio, sum to chunk_sum; a last partial chunk too), odd chunks
// gentle (in [-0.1, 0]). Every value is <= 0.
Tensor steep_log_decay(const Shape& shape, int64_t time_dim, int64_t chunk, double chunk_sum, Generator& gen);

}  // namespace tz::forms
