// Synthetic sequence tasks for comparing architectures (Zoology-style): each isolates one
// ability — copying, filtering, associative recall, induction, long-range retrieval — that
// attention has and that recurrent/state-space mixers may lack. A task makes batches of
// (inputs, targets), both i64 [B, T], in next-token form: targets[b, t] is what the model
// should output after reading inputs[b, 0..t]. Positions that are not scored hold
// kIgnoreIndex (-100), so the usual masked cross-entropy trains exactly on the answers.
//
//   auto task = make_task("mqar", {.vocab_size = 128, .seq_len = 64, .num_pairs = 8});
//   Batch b = task->sample(32, gen);
//   double acc = accuracy(predicted_ids, b.targets);   // on scored positions only
//
// Token layout (V = vocab_size, T = seq_len, n = copy_len, N = num_pairs):
//   copy            x1..xn SEP x1..xn PAD...            data ids [2, V); scored: the copy
//   copy_blank      x1..xn SEP PAD...                   data ids [2, V); scored: SEP and the
//                                                        next n-1 PADs, targets x1..xn (no
//                                                        answer in the inputs: for encoders)
//   selective_copy  NOISE/data mixed, MARK, d1..dn       data ids [3, V); scored: d1..dn
//   mqar            k1 v1 .. kN vN, PAD with queried keys   keys [1, 1+K), values [1+K, V),
//                                                        K = (V - 1) / 2; scored: queries
//   induction_heads random data with TRIG at p and at T-1   data ids [2, V); scored: last
//   passkey         filler, KEY digits, filler, QUERY digits  digits [3, 13), filler
//                                                        [13, V); scored: the final digits
// The papers' own forms (their token ids, their placement; defaults V as in the paper):
//   mqar_zoology    k1 v1 .. kN vN, then T - 2N positions: key i at 2N + 2 g_i, 0 elsewhere
//                   (or random ids with random_fill); gaps g_i distinct, drawn one after
//                   another with P(g) ~ (g + 1)^(power_a - 1), g in [0, (T - 2N) / 2).
//                   Keys [1, V/2), values [V/2, V), both distinct. Scored: each query,
//                   target its value. V = 8192 by default (Zoology, arXiv:2312.04927).
//   selective_copy_mamba  T - n positions of NOISE (id 0) with d1..dn (ids [1, V-1)) at
//                   random places, then n MARK (id V-1); the target at the i-th MARK is di,
//                   the inputs never show the answers. V = 16 by default, n = min(16, T/4);
//                   the paper: T = 4096, n = 16 (Mamba, arXiv:2312.00752, E.1).
//   induction_heads_mamba  random data ids [0, V-1), SPECIAL (id V-1) at p in [0, T-3] and
//                   at T-1; scored: the last position, target the token at p + 1.
//                   V = 16 by default; the paper trains at T = 256, tests up to 2^20.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "data/batch.h"

namespace tz::data {

// Special token ids (see the layout above); the *_mamba forms' marker / special is V - 1.
inline constexpr int64_t kPadToken = 0;     // filler / padding (selective_copy_mamba: the
                                            // noise; induction_heads_mamba: a data id)
inline constexpr int64_t kSepToken = 1;     // copy: separator; selective_copy: "copy now"
                                            // marker; induction_heads: the trigger;
                                            // passkey: "the pass key is"
inline constexpr int64_t kNoiseToken = 2;   // selective_copy: noise between the data tokens
inline constexpr int64_t kQueryToken = 2;   // passkey: "what is the pass key?"
inline constexpr int64_t kDigit0Token = 3;  // passkey: digit d is id 3 + d

// Options of every task, filled by field name; a task reads the fields it needs and
// checks them when it is made (make_task), naming the field and the limit.
struct TaskOptions {
  int64_t vocab_size = 0;      // V: all token ids, special tokens included (0: the task's
                               // default: 64; mqar_zoology 8192; the *_mamba forms 16)
  int64_t seq_len = 64;        // T: tokens per example
  int64_t copy_len = 0;        // copy, selective_copy(_mamba): tokens to reproduce (0: T/2
                               // for copy, max(1, T/8) for selective_copy, min(16, T/4)
                               // for selective_copy_mamba)
  int64_t num_pairs = 8;       // mqar(_zoology): key-value pairs at the start
  int64_t num_queries = 0;     // mqar: keys queried afterwards, <= num_pairs (0: num_pairs);
                               // mqar_zoology queries every pair (0 or num_pairs)
  int64_t passkey_digits = 5;  // passkey: digits of the hidden number
  double power_a = 0.01;       // mqar_zoology: query gaps follow P(g) ~ (g + 1)^(a - 1);
                               // 1 places the queries uniformly (Zoology's power_a)
  bool random_fill = false;    // mqar_zoology: non-query positions get random ids in
                               // [0, V) instead of 0 (Zoology's random_non_queries)
};

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string name() const = 0;
  virtual std::string description() const = 0;  // one line: what it measures
  // The options with defaults resolved (vocab_size, copy_len, num_queries are never 0 here).
  const TaskOptions& options() const { return options_; }
  int64_t vocab_size() const { return options_.vocab_size; }
  int64_t seq_len() const { return options_.seq_len; }

  // B examples: inputs, targets i64 [B, T]. Deterministic for the generator's state.
  Batch sample(int64_t batch, Generator& gen) const;

 protected:
  explicit Task(const TaskOptions& options) : options_(options) {}
  // Writes one example: inputs x[0, T) and targets y[0, T) (kIgnoreIndex where unscored).
  virtual void fill_example(int64_t* x, int64_t* y, Generator& gen) const = 0;
  TaskOptions options_;
};

// The registry. Unknown names throw tz::Error listing the valid names and the nearest one.
std::unique_ptr<Task> make_task(const std::string& name, const TaskOptions& options = {});
const std::vector<std::string>& task_names();

// Length extrapolation: the same task at seq_len * factor for each factor (default L, 2L,
// 4L), e.g. train on factor 1 and evaluate on all. The vocabulary never changes. With
// scale_counts = false the amount to remember (copy_len, num_pairs, num_queries,
// passkey_digits, resolved at length L) stays fixed and only the distances grow; with true,
// copy_len, num_pairs and num_queries grow with the length too.
struct LengthSweepEntry {
  int64_t factor;
  std::unique_ptr<Task> task;
};
std::vector<LengthSweepEntry> length_sweep(const std::string& name, const TaskOptions& base,
                                           const std::vector<int64_t>& factors = {1, 2, 4}, bool scale_counts = false);

// Fraction of scored positions (targets != kIgnoreIndex) where the prediction equals the
// target. `predictions` is either i64 ids with the targets' shape (e.g. argmax of logits)
// or floating logits with one extra last dim of size V, whose argmax is taken here.
double accuracy(const Tensor& predictions, const Tensor& targets);

}  // namespace tz::data
