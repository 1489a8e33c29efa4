// Training a language model on text: `tensorzoo train`.
//
// Each step samples a batch of windows and takes one step of the training loop (fit.h):
// (a model with segment memory reads every batch row as a stream instead, one segment per
// step, carrying its memory: train/segments.h)
// forward + backward, gradient clipping, the learning rate from the schedule, an AdamW
// update; a NaN or Inf stops the run with an error (or skips the batch, skip_nonfinite) and
// leaves the checkpoint as it was. Every eval_every steps it measures the validation loss
// and saves the checkpoint. The run directory (train/run_dir.h) holds:
//   checkpoint.safetensors   weights, optimizer state, step, RNG states, config (resumable)
//   tokenizer.json           the BPE learned from the training split (--tokenizer bpe only)
//   log.csv                  step, loss, val_loss, lr, grad_norm, tokens_per_s, elapsed_s
//   history.txt              what each resume changed (lr, steps, ...)
//   loss.png                 the curves, drawn by the tool (cli/plot.h) when gnuplot is installed
// Resuming restores everything the next step depends on, so N steps + resume + M steps
// gives the same losses, bit for bit, as N + M steps in one go (same thread count). A resume
// may change the schedule and the bookkeeping (ResumeChanges); the model, the data and the
// batches are fixed by the checkpoint.
//
// On several ranks (mpirun; train/distributed.h) every rank runs a Trainer on the same
// options: each step's batch is cut into `shards` shards, each rank computes its own and the
// gradients are averaged over them, so N ranks train the run one process would with the same
// batch. Rank 0's parameters go to every rank at the start and after a resume; rank 0 alone
// writes the checkpoint, the log and the history. Each shard draws its random numbers
// (dropout) from its own generator, derived from the seed and the shard (shard 0: the seed
// itself), and the checkpoint keeps every shard's, so a resume on any number of ranks that
// divides the shards continues them.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/communicator.h"
#include "core/safetensors.h"
#include "data/text_dataset.h"
#include "models/gpt.h"
#include "models/lm.h"
#include "models/model.h"
#include "nn/config.h"
#include "optim/recipe.h"
#include "train/distributed.h"
#include "train/fit.h"

namespace tz::train {

// Limits of the training options (validate() and the CLI's flags): no count can overflow
// the products it feeds (batch x seq_len x segments tokens, steps x batch sequences).
constexpr int64_t kMaxSteps = int64_t(1) << 40;
constexpr int64_t kMaxBatch = int64_t(1) << 16;
constexpr int64_t kMaxBuiltinBytes = int64_t(1) << 31;
constexpr int kMaxThreads = 4096;
constexpr double kAutoSaveSeconds = 600;  // save_every 0: at least this often, by wall time
constexpr int64_t kDefaultBpeVocab = 4096;

struct TrainOptions {
  // The zoo LM config, parsed once by the caller: any registered mixer, position scheme, FFN
  // and norm.
  nn::Config model = models::GPTConfig{}.to_config();
  std::string data;  // a UTF-8 text file; empty = the built-in grammar text
  // "bytes", or "bpe": a byte-level BPE of `vocab` tokens (0: 4096) learned from the training
  // split when the run starts (data/bpe.h). The model's vocab follows the tokenizer's.
  std::string tokenizer = "bytes";
  int64_t vocab = 0;
  int64_t builtin_bytes = 2'000'000;  // size of the built-in text
  int64_t steps = 600;
  int64_t batch = 8;
  int64_t seq_len = 256;
  optim::Recipe recipe = {.lr = 2e-3,
                          .min_lr = 2e-4,
                          .warmup = 50,
                          .schedule = "cosine",
                          .weight_decay = 0.1,
                          .betas = {0.9, 0.99},
                          .grad_clip = 1.0};
  int64_t eval_every = 100;
  // Checkpoints: every save_every steps; 0 (the default) saves with every evaluation and, in a
  // long run, also whenever kAutoSaveSeconds have passed since the last save. Each save
  // replaces the file atomically, and a NaN or Inf never overwrites it (save_checkpoint).
  int64_t save_every = 0;
  int64_t eval_batches = 8;
  int64_t log_every = 10;
  int threads = 0;  // 0 = leave the thread count as it is
  uint64_t seed = 1;
  std::string out_dir = "runs/gpt";
  bool skip_nonfinite = false;  // skip a batch whose loss or gradient is NaN or Inf (fit.h)
  // The batch's shards (train/distributed.h): 0 = the number of ranks at the start. More than
  // one: each shard is a forward and backward of its own (batch / shards rows).
  int64_t shards = 0;
  bool deterministic = false;  // sum the shards' gradients in a fixed order (distributed.h)
  // Not part of the run: lines about the setup (the tokenizer's training progress).
  std::function<void(const std::string&)> on_note;

  void validate() const;
  // Everything but the model, which a checkpoint stores once, as its config.
  std::string to_json() const;
  static TrainOptions from_json(const std::string& json, const nn::Config& model, const std::string& source);
};

// What a resumed run may change; each given value replaces the saved one and is written to
// the run's history.txt. The model, the seed and the batch shape are fixed by the checkpoint
// (refused by the CLI), and the run stays in its directory. A new data file continues the
// run on other text (a moved file, or fine-tuning), no longer exactly as an unbroken run.
struct ResumeChanges {
  std::optional<int64_t> steps, warmup, eval_every, save_every, log_every;
  std::optional<double> lr, min_lr, weight_decay, grad_clip;
  std::optional<std::string> schedule, data;
  std::optional<int> threads;
  std::optional<bool> skip_nonfinite;
  // With more steps: plan the schedule over the new total (the rate jumps back up the
  // cosine) instead of keeping the old plan and its final rate for the added steps.
  bool replan = false;
};

// How a run is spread over ranks; not part of the run (a resume may change it).
struct Distribution {
  std::shared_ptr<Communicator> comm;  // null: this process alone
  double bucket_mb = 4;                // gradient buckets (distributed.h)
  bool overlap = true;                 // reduce buckets during backward
  bool verify_replicas = false;        // after every step, check that all ranks hold the same parameters
};

class Trainer {
 public:
  explicit Trainer(const TrainOptions& options, const Distribution& dist = {});
  // Continues the run saved in `dir`, with `changes` applied (a given steps must exceed the
  // steps done). `changed`, when given, receives the history line ("" when nothing changed).
  // On several ranks, rank 0 reads the checkpoint and sends it to the others (no shared disk
  // needed).
  static std::unique_ptr<Trainer> resume(const std::string& dir, const ResumeChanges& changes = {},
                                         std::string* changed = nullptr, const Distribution& dist = {});

  // Trains until options().steps, calling on_step after each step; on_step returning false
  // stops early (e.g. on Ctrl-C). Either way the run ends with a checkpoint, so stopping
  // and resuming later gives the same losses as never stopping. A NaN or Inf loss or
  // gradient throws tz::Error naming the step, and no checkpoint is written.
  void run(const std::function<bool(const StepRecord&)>& on_step = nullptr);
  double evaluate();  // mean validation loss over eval_batches fixed batches
  // Refuses (tz::Error) after a NaN/Inf stop or when a tensor is not finite, so a broken
  // run never overwrites a good checkpoint.
  void save_checkpoint() const;

  const TrainOptions& options() const { return options_; }
  models::Model& model() const { return *model_; }
  const data::TextDataset& dataset() const { return *dataset_; }
  const data::Tokenizer& tokenizer() const { return dataset_->tokenizer(); }
  int64_t step() const { return fit_->steps_done(); }
  const std::vector<StepRecord>& history() const { return history_; }
  Communicator& comm() const { return *comm_; }
  bool writes_files() const { return comm_->rank() == 0; }          // rank 0 writes checkpoint, log, history
  const DataParallel* parallel() const { return parallel_.get(); }  // null: one shard, one rank

 private:
  // `tokenizer`: a resumed run's; null: made for a new run (bytes, or a BPE learned here).
  Trainer(const TrainOptions& options, const Distribution& dist, bool fresh_log,
          std::shared_ptr<const data::Tokenizer> tokenizer);
  void append_log(const StepRecord& r) const;
  double parallel_step();
  void write_checkpoint(const std::string& shard_rng) const;
  void restore_shard_rngs(const std::string& saved, const std::string& path);

  TrainOptions options_;
  std::unique_ptr<data::TextDataset> dataset_;
  std::shared_ptr<models::Model> model_;
  Generator data_gen_;
  // Training across segments (a model with segment memory, train/segments.h): the streams
  // of the training split, the memory they carry, and the segments per step (1 + mem_bptt).
  std::unique_ptr<data::TextStreams> streams_;
  models::Model::State memory_;
  int64_t segments_per_step_ = 1;
  std::unique_ptr<Fit> fit_;  // the optimizer, the step count and the wall time of the run
  std::vector<StepRecord> history_;
  // Several shards or ranks: the gradient averaging, and this rank's shards' generators.
  std::shared_ptr<Communicator> comm_;
  Distribution dist_;
  std::unique_ptr<DataParallel> parallel_;
  std::vector<Generator> shard_gens_;
};

}  // namespace tz::train
