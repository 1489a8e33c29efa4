// A run directory of `tensorzoo train`, read back: the checkpoint, its model config and
// training options, the log, the history of resumes.
//
// One reader serves `sample`, `probe` and `train --resume`, so they cannot trust different
// copies of the config: the model config is stored once (the checkpoint's "config"); a
// checkpoint written before that also holds it inside "train_options", and the two must agree.
#pragma once

#include <memory>
#include <string>

#include "core/safetensors.h"
#include "models/lm.h"
#include "models/weights.h"
#include "nn/config.h"
#include "train/trainer.h"

namespace tz::train {

constexpr const char* kCheckpointFormat = models::kTrainCheckpointFormat;
constexpr int kCheckpointVersion = models::kTrainCheckpointVersion;
constexpr const char* kCheckpointFile = "checkpoint.safetensors";
constexpr const char* kLogFile = "log.csv";
constexpr const char* kHistoryFile = "history.txt";

struct RunCheckpoint {
  std::string path;  // dir/checkpoint.safetensors
  TensorFile file;   // its tensors and metadata
  // Its tensors by part, the prefixes removed: model.*, optim.*, state.* (segment memory) and
  // data.cursors (where each stream stands; undefined when absent).
  std::map<std::string, Tensor> model_state, optim_state, memory_state;
  Tensor cursors;
  nn::Config model;      // the model config
  TrainOptions options;  // the training options (options.model == model; out_dir = the directory)
  // The run's tokenizer (bytes, or the BPE in its tokenizer.json) and what names it.
  models::TokenizerData tokenizer_data;
  std::shared_ptr<const data::Tokenizer> tokenizer;
  int64_t step = 0;      // steps done
  double elapsed_s = 0;  // their wall time
};

// Reads and checks a run's checkpoint: format, version, every metadata field it needs, that
// each tensor belongs to one of the parts, and its tokenizer (tokenizer.json beside it, when
// it names one); errors name the file and the field or tensor.
RunCheckpoint read_run(const std::string& dir);
// The same checks on a checkpoint already read from `path` (which names it in errors);
// `tokenizer_text`, when given, is the run's tokenizer file as read elsewhere (rank 0).
RunCheckpoint read_run(TensorFile file, const std::string& path, const std::string* tokenizer_text = nullptr);
// Writes a file of a run directory atomically (a temporary file renamed over it).
void write_run_file(const std::string& path, const std::string& text);

// The trained model of a run, ready for generation (eval mode); a strict load whose errors
// name the checkpoint and list missing and unexpected tensors (models::load_lm; an application
// loads a checkpoint file or an export with models::load_lm(path) or tz::TextModel).
std::unique_ptr<models::LM> load_model(const RunCheckpoint& run);
std::unique_ptr<models::LM> load_model(const std::string& dir);

// Before a run starts or resumes: removes the temporary files an interrupted checkpoint write
// left behind (returns their names), and on resume cuts log.csv back to the rows at or
// before the checkpoint's step, so that the resumed log has no repeated steps.
std::vector<std::string> remove_stale_files(const std::string& dir);
void truncate_log(const std::string& dir, int64_t step);
void append_history(const std::string& dir, const std::string& line);

}  // namespace tz::train
