// The arena: train several zoo configurations on the same task with the same budget, and
// compare them honestly (same data stream, same steps, optionally matched parameter counts).
//
//   tensorzoo arena --models gpt,rmsnorm,sinusoidal_pe --task mqar --steps 300
//   tensorzoo arena --distill-from runs/gpt --models hedgehog,dijiang     (train/distill.h)
//
// Each entry is a variant id (its test overlay on the arena's base config) or a named JSON
// config. Every model sees the same batches (one generator seed) and is evaluated on the
// same held-out batches; with `eval_lengths` the task is also evaluated at multiples of the
// training length (length extrapolation). Results: a markdown table and results.csv with,
// per model, the validation loss and the task's accuracy on its scored positions at each
// evaluation length (columns val_loss_xM, acc@Mx), and a CSV of the curves (the tool plots
// it: cli/plot.h). With `segment`, sequences are read segment by segment (train/segments.h), so that
// memory models can be compared on tasks whose answer lies segments back (the copy task with
// its source one segment before the copy) and on text.
#pragma once

#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "core/communicator.h"
#include "data/tasks.h"
#include "nn/config.h"
#include "optim/recipe.h"

namespace tz::arena {

struct Entry {
  std::string name;    // as shown in the table
  std::string config;  // JSON overlay on the base config
};

struct Options {
  std::vector<Entry> models;
  std::string task = "mqar";  // a data task name, or "text" (the built-in grammar text)
  int64_t steps = 300;
  int64_t batch = 32;
  int64_t seq_len = 64;
  int64_t vocab = 0;                                            // task vocabulary (0: the task's default; text: 256)
  data::TaskOptions task_options;                               // the task's other options (vocab, seq_len set above)
  double lr = 3e-3;                                             // peak learning rate (recipe())
  int64_t warmup = 30;                                          // warm-up steps (recipe())
  std::string base = R"({"dim": 64, "depth": 2, "heads": 4})";  // shared by every model
  bool match_params = false;                                    // adjust each model's dim to the first one's count
  std::vector<int64_t> eval_lengths = {1};                      // evaluate at these multiples of seq_len
  // > 0: every sequence is read as consecutive segments of this many positions (the models'
  // context): models with segment memory carry it from segment to segment (a fresh memory
  // per batch: each row is one document), the others read each segment on its own.
  int64_t segment = 0;
  // With `segment`: memory models read every sequence twice, the loss on the second reading
  // (ERNIE-Doc's retrospective feed, train/segments.h); the others once.
  bool retrospective = false;
  // Distillation mode (train/distill.h): a run directory whose softmax-attention LM each
  // model (a feature-map mixer overlay on its config) is converted from, distilled for
  // `distill_steps` steps against the attention KL, then fine-tuned for `steps` on its text.
  std::string distill_from;
  int64_t distill_steps = 200;
  int64_t eval_batches = 8;
  int64_t log_every = 10;
  uint64_t seed = 1;
  int threads = 0;
  std::string out_dir = "runs/arena";
  // On several ranks (run with a Communicator), this process trains the models i with
  // i % ranks == rank; set by run().
  int rank = 0, ranks = 1;

  // What every model is trained with: AdamW with weight decay 0.01, lr warmed up over
  // `warmup` steps, then a cosine down to lr / 10; no clipping.
  optim::Recipe recipe() const;
};

struct Result {
  std::string name;
  std::string config;  // the full config trained
  int64_t params = 0;
  double train_loss = 0;                     // mean of the last 10 steps
  std::map<int64_t, double> val_loss;        // by length multiple
  std::map<int64_t, double> val_accuracy;    // correct / scored positions, all eval batches
  std::map<int64_t, std::string> val_error;  // why a length could not be evaluated
  double tokens_per_s = 0;
  double peak_mb = 0;        // peak tensor memory during training
  int64_t memory_slots = 0;  // segment memory: positions held over all layers (sum of M_n + Mc_n)
  double wall_s = 0;
  std::vector<std::pair<int64_t, double>> curve;  // (step, train loss)
  // Distillation mode: validation losses of the teacher, the converted student, the student
  // after distillation (val_loss[1]: after fine-tuning), and the attention KL before/after.
  static constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
  double teacher_val = kNone, converted_val = kNone, distilled_val = kNone, kl_before = kNone, kl_after = kNone;
};

// Parses `--models a,b,c` (ids) or a JSON spec {"task": ..., "steps": ..., "models": {name: config}}.
std::vector<Entry> entries_from_ids(const std::string& comma_separated);
// The same ids as mixers over another config ({"mixer": id}, the distillation mode's overlay).
std::vector<Entry> mixer_entries(const std::string& comma_separated);
Options options_from_spec(const std::string& json, const Options& defaults);

std::vector<Result> run(const Options& options, const std::function<void(const std::string&)>& progress = nullptr);
// The same on the ranks of `comm` (mpirun): the models are dealt round-robin, one per rank at
// a time, and every rank returns all results in the models' order (each model trains as in
// one process: its own seeds and batches, so only the timings differ).
std::vector<Result> run(const Options& options, Communicator& comm,
                        const std::function<void(const std::string&)>& progress = nullptr);

// --match-params. The config a model trains with (dim > 0 replaces its dim), and its parameter
// count (the model built once).
nn::Config model_config(const Options& options, const Entry& entry, int64_t dim = 0);
int64_t count_params(const nn::Config& config);

constexpr int64_t kMaxMatchDim = 1024;
struct GridMatch {
  int64_t k = 0;       // the grid point chosen
  int64_t count = 0;   // its count
  int64_t probes = 0;  // how many counts were computed
};
// The k in [1, n] whose count(k) is closest to target (ties: the smaller k), for a count that
// grows with k: what trying every k finds, from a few probes. A quadratic through k = 1, 2, 3
// predicts where the count crosses the target (a model's count is about a d^2 + b d + c);
// from there the search gallops to bracket the crossing and bisects it, so a count that is
// not quadratic (rounded hidden sizes) costs a few more probes, never a wrong answer.
GridMatch closest_on_grid(int64_t n, int64_t target, const std::function<int64_t(int64_t)>& count);
// The dim, a multiple of 2 * heads in [2 heads, max_dim], whose model has the parameter count
// closest to target: closest_on_grid over dims, each probe one model built.
GridMatch matching_dim(const Options& options, const Entry& entry, int64_t target, int64_t max_dim = kMaxMatchDim,
                       const std::function<void(const std::string&)>& progress = nullptr);

// Writes the markdown table (table.md), the results (results.csv) and the curves (curves.csv;
// the tool draws curves.png from it); returns the table.
std::string report(const Options& options, const std::vector<Result>& results);

}  // namespace tz::arena
