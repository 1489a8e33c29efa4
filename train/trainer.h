// Training a language model on text: the loop behind `tensorzoo train`.
//
// Each step samples a batch of windows, runs forward + backward, clips the gradient norm,
// sets the learning rate from the schedule and takes an AdamW step. Every eval_every steps
// it measures the validation loss. The run directory holds:
//   checkpoint.safetensors   weights, optimizer state, step, RNG states, config (resumable)
//   log.csv                  step, loss, val_loss, lr, grad_norm, tokens_per_s, elapsed_s
//   loss.png                 the curves (when gnuplot is installed)
// Resuming restores everything the next step depends on, so N steps + resume + M steps
// gives the same losses, bit for bit, as N + M steps in one go (same thread count).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "data/text_dataset.h"
#include "models/gpt.h"
#include "models/lm.h"
#include "models/model.h"
#include "nn/config.h"
#include "core/safetensors.h"
#include "optim/adam.h"

namespace tz::train {

struct TrainOptions {
  // The zoo LM config, parsed once by the caller: any registered mixer, position scheme, FFN
  // and norm.
  nn::Config model = models::GPTConfig{}.to_config();
  std::string data;                  // a UTF-8 text file; empty = the built-in grammar text
  int64_t builtin_bytes = 2'000'000;  // size of the built-in text
  int64_t steps = 600;
  int64_t batch = 8;
  int64_t seq_len = 256;
  double lr = 2e-3;
  double min_lr = 2e-4;
  int64_t warmup = 50;
  std::string schedule = "cosine";   // cosine | constant
  double weight_decay = 0.1;
  double beta2 = 0.99;
  double grad_clip = 1.0;            // 0 = off
  int64_t eval_every = 100;
  int64_t eval_batches = 8;
  int64_t log_every = 10;
  int threads = 0;                   // 0 = leave the thread count as it is
  uint64_t seed = 1;
  std::string out_dir = "runs/gpt";
  int64_t steps_override = 0;        // resume only: a new total step count (not saved)

  void validate() const;
  std::string to_json() const;
  static TrainOptions from_json(const std::string& json);
};

struct StepRecord {
  int64_t step = 0;      // steps done after this one
  double loss = 0;       // training loss of this step's batch
  double lr = 0;
  double grad_norm = 0;
  double tokens_per_s = 0;
  double elapsed_s = 0;
  std::optional<double> val_loss;
};

class Trainer {
 public:
  explicit Trainer(const TrainOptions& options);
  // Continues the run saved in `dir`; `steps` (if > 0) replaces the total step count.
  static std::unique_ptr<Trainer> resume(const std::string& dir, int64_t steps = 0);

  // Trains until options().steps, calling on_step after each step; on_step returning false
  // stops early (e.g. on Ctrl-C). Either way the run ends with a checkpoint, so stopping
  // and resuming later gives the same losses as never stopping.
  void run(const std::function<bool(const StepRecord&)>& on_step = nullptr);
  StepRecord train_step();
  double evaluate();  // mean validation loss over eval_batches fixed batches
  void save_checkpoint() const;

  const TrainOptions& options() const { return options_; }
  models::Model& model() const { return *model_; }
  const data::TextDataset& dataset() const { return *dataset_; }
  int64_t step() const { return step_; }
  const std::vector<StepRecord>& history() const { return history_; }

 private:
  Trainer(const TrainOptions& options, bool fresh_log);
  double lr_at(int64_t step) const;
  void append_log(const StepRecord& r) const;

  TrainOptions options_;
  std::unique_ptr<data::TextDataset> dataset_;
  std::shared_ptr<models::Model> model_;
  std::unique_ptr<optim::AdamW> optimizer_;
  Generator data_gen_;
  int64_t step_ = 0;
  double elapsed_before_ = 0;  // seconds spent in earlier sessions of a resumed run
  std::vector<StepRecord> history_;
};

// Reads and checks a run's checkpoint (format and version); fills *config (the model's JSON
// config) when given.
TensorFile load_checkpoint_file(const std::string& dir, std::string* config);
// The trained model of a run directory, ready for generation (eval mode).
std::unique_ptr<models::LM> load_model(const std::string& dir);

// Draws the curves of a run's log.csv into loss.png with gnuplot. Returns false (and says
// why in `message`) when gnuplot is missing or fails.
bool plot_loss(const std::string& dir, std::string& message);

}  // namespace tz::train
