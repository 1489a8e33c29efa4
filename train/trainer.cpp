#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/dtype.h"
#include "core/parallel.h"
#include "core/safetensors.h"
#include "data/grammar.h"
#include "models/keys.h"
#include "models/zoo.h"
#include "train/plot.h"
#include "train/segments.h"

namespace tz::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr const char* kFormat = "tensorzoo-train-checkpoint";
constexpr int kFormatVersion = 1;
constexpr const char* kCheckpointFile = "checkpoint.safetensors";
constexpr const char* kLogFile = "log.csv";
}  // namespace

void TrainOptions::validate() const {
  const int64_t context = model.get(models::kContext);
  TZ_CHECK(steps > 0, "train: steps must be positive, got ", steps);
  TZ_CHECK(batch > 0, "train: batch must be positive, got ", batch);
  TZ_CHECK(seq_len > 0 && seq_len <= context, "train: seq_len must be in [1, context=", context, "], got ", seq_len);
  recipe.validate();
  TZ_CHECK(eval_every > 0 && eval_batches > 0 && log_every > 0,
           "train: eval_every, eval_batches and log_every must be positive");
  TZ_CHECK(threads >= 0, "train: threads must be >= 0, got ", threads);
  TZ_CHECK(builtin_bytes >= 10000, "train: builtin_bytes must be at least 10000, got ", builtin_bytes);
}

std::string TrainOptions::to_json() const {
  json j = {{"model", json::parse(model.dump())},
            {"data", data},
            {"builtin_bytes", builtin_bytes},
            {"steps", steps},
            {"batch", batch},
            {"seq_len", seq_len},
            {"lr", recipe.lr},
            {"min_lr", recipe.min_lr},
            {"warmup", recipe.warmup},
            {"schedule", recipe.schedule},
            {"weight_decay", recipe.weight_decay},
            {"beta1", recipe.betas[0]},
            {"beta2", recipe.betas[1]},
            {"eps", recipe.eps},
            {"grad_clip", recipe.grad_clip},
            {"eval_every", eval_every},
            {"eval_batches", eval_batches},
            {"log_every", log_every},
            {"threads", threads},
            {"seed", seed},
            {"out_dir", out_dir}};
  return j.dump();
}

TrainOptions TrainOptions::from_json(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw Error(cat_str("train options: invalid JSON: ", e.what()));
  }
  TZ_CHECK(j.is_object(), "train options: expected a JSON object");
  TrainOptions o;
  try {
    for (auto& [key, v] : j.items()) {
      if (key == "model")
        o.model = nn::Config::parse(v.dump(), "model config");
      else if (key == "data")
        o.data = v.get<std::string>();
      else if (key == "builtin_bytes")
        o.builtin_bytes = v.get<int64_t>();
      else if (key == "steps")
        o.steps = v.get<int64_t>();
      else if (key == "batch")
        o.batch = v.get<int64_t>();
      else if (key == "seq_len")
        o.seq_len = v.get<int64_t>();
      else if (key == "lr")
        o.recipe.lr = v.get<double>();
      else if (key == "min_lr")
        o.recipe.min_lr = v.get<double>();
      else if (key == "warmup")
        o.recipe.warmup = v.get<int64_t>();
      else if (key == "schedule")
        o.recipe.schedule = v.get<std::string>();
      else if (key == "weight_decay")
        o.recipe.weight_decay = v.get<double>();
      else if (key == "beta1")
        o.recipe.betas[0] = v.get<double>();
      else if (key == "beta2")
        o.recipe.betas[1] = v.get<double>();
      else if (key == "eps")
        o.recipe.eps = v.get<double>();
      else if (key == "grad_clip")
        o.recipe.grad_clip = v.get<double>();
      else if (key == "eval_every")
        o.eval_every = v.get<int64_t>();
      else if (key == "eval_batches")
        o.eval_batches = v.get<int64_t>();
      else if (key == "log_every")
        o.log_every = v.get<int64_t>();
      else if (key == "threads")
        o.threads = v.get<int>();
      else if (key == "seed")
        o.seed = v.get<uint64_t>();
      else if (key == "out_dir")
        o.out_dir = v.get<std::string>();
      else
        throw Error(cat_str("train options: unknown key '", key, "'"));
    }
  } catch (const json::exception& e) {
    throw Error(cat_str("train options: a value has the wrong type: ", e.what()));
  }
  o.validate();
  return o;
}

Trainer::Trainer(const TrainOptions& options) : Trainer(options, true) {}

Trainer::Trainer(const TrainOptions& options, bool fresh_log) : options_(options), data_gen_(options.seed) {
  options_.validate();
  if (options_.threads > 0) set_num_threads(options_.threads);
  data::TextDatasetOptions dopt{.val_fraction = 0.1, .seq_len = options_.seq_len};
  dataset_ = std::make_unique<data::TextDataset>(
      options_.data.empty() ? data::TextDataset::from_string(data::grammar_text(options_.builtin_bytes, options_.seed),
                                                             dopt, "built-in grammar text")
                            : data::TextDataset::from_file(options_.data, dopt));
  // Initialisation and dropout draw from the global generator, seeded from the run's seed.
  manual_seed(options_.seed);
  Generator init_gen(options_.seed ^ 0x1234567ULL);
  model_ = zoo::make_model(options_.model, init_gen);
  TZ_CHECK(model_->vocab() > 0 && model_->causal_input() == 0,
           "train: the text trainer needs a causal language "
           "model, got ",
           model_->describe());
  TZ_CHECK(dataset_->vocab_size() == model_->vocab(), "train: the data has a vocabulary of ", dataset_->vocab_size(),
           " but the model expects ", model_->vocab());
  int64_t segments = 1;        // per step
  if (model_->has_memory()) {  // training across segments: each row a stream, the memory carried
    streams_ =
        std::make_unique<data::TextStreams>(*dataset_, data::Split::train, options_.batch, options_.seq_len, data_gen_);
    memory_ = model_->make_memory(options_.batch);
    if (auto* lm = dynamic_cast<models::LM*>(model_.get())) segments += lm->memory->plan.bptt;
  }
  segments_per_step_ = segments;
  fit_ = std::make_unique<Fit>(model_->named_parameters(),
                               FitOptions{.steps = options_.steps,
                                          .recipe = options_.recipe,
                                          .tokens_per_step = options_.batch * options_.seq_len * segments});
  fs::create_directories(options_.out_dir);
  if (fresh_log) {
    std::ofstream log(fs::path(options_.out_dir) / kLogFile);
    TZ_CHECK(log.good(), "train: cannot write ", (fs::path(options_.out_dir) / kLogFile).string());
    log << "step,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s\n";
  }
}

double Trainer::evaluate() {
  NoGradGuard no_grad;
  model_->eval();
  Generator gen(options_.seed + 0x9e3779b9ULL);  // the same validation batches every time
  double total = 0;
  if (model_->has_memory()) {  // eval_batches consecutive segments of each stream, with memory
    data::TextStreams val(*dataset_, data::Split::val, options_.batch, options_.seq_len, gen);
    models::Model::State memory = model_->make_memory(options_.batch);
    std::vector<int64_t> restarted;
    for (int64_t i = 0; i < options_.eval_batches; ++i) {
      data::Batch b = val.next(gen, &restarted);
      cut_memory(memory, restarted);
      total += model_->loss({{b.inputs}, b.targets}, memory).item();
    }
    model_->train();
    return total / double(options_.eval_batches);
  }
  for (int64_t i = 0; i < options_.eval_batches; ++i) {
    data::Batch b = dataset_->sample(data::Split::val, options_.batch, options_.seq_len, gen);
    total += model_->loss(b.inputs, b.targets).item();
  }
  model_->train();
  return total / double(options_.eval_batches);
}

void Trainer::append_log(const StepRecord& r) const {
  std::ofstream log(fs::path(options_.out_dir) / kLogFile, std::ios::app);
  // Losses with 9 significant digits: an f32 value round-trips exactly, so logs of two
  // runs can be compared bit for bit.
  char val[32] = "";
  if (r.val_loss) std::snprintf(val, sizeof val, "%.9g", *r.val_loss);
  char line[256];
  std::snprintf(line, sizeof line, "%lld,%.9g,%s,%.6g,%.6g,%.1f,%.3f\n", (long long)r.step, r.loss, val, r.lr,
                r.grad_norm, r.tokens_per_s, r.elapsed_s);
  log << line;
}

void Trainer::run(const std::function<bool(const StepRecord&)>& on_step) {
  LossFn loss = [this] {
    model_->train();
    if (streams_) {  // the next segments of every stream; the gradient stops at the step's start
      cut_memory(memory_);
      Tensor total;
      std::vector<int64_t> restarted;
      for (int64_t i = 0; i < segments_per_step_; ++i) {
        data::Batch b = streams_->next(data_gen_, &restarted);
        if (!restarted.empty()) cut_memory(memory_, restarted);
        Tensor l = model_->loss({{b.inputs}, b.targets}, memory_);
        total = total.defined() ? total + l : l;
      }
      return segments_per_step_ == 1 ? total : total / double(segments_per_step_);
    }
    data::Batch b = dataset_->sample(data::Split::train, options_.batch, options_.seq_len, data_gen_);
    return model_->loss(b.inputs, b.targets);
  };
  fit_->run(loss, {.evaluate = [this] { return evaluate(); },
                   .eval_every = options_.eval_every,
                   .on_step =
                       [&](const StepRecord& r) {
                         history_.push_back(r);
                         if (r.step % options_.log_every == 0 || r.val_loss || r.step == options_.steps) append_log(r);
                         return !on_step || on_step(r);
                       },
                   .checkpoint = [this] { save_checkpoint(); }});
}

namespace {
bool all_finite(const Tensor& t) {
  if (!is_floating(t.dtype())) return true;
  Tensor c = core::contiguous(t);
  return TZ_DISPATCH_FLOAT(c.dtype(), "all_finite", [&]<class T>() {
    const T* x = c.data<T>();
    return std::all_of(x, x + c.numel(), [](T v) { return std::isfinite(v); });
  });
}
}  // namespace

void Trainer::save_checkpoint() const {
  const std::string path = (fs::path(options_.out_dir) / kCheckpointFile).string();
  TZ_CHECK(!fit_->stopped_on_error(), "train: not saving ", path,
           ": the run was stopped by a NaN or Inf (the file keeps the last good checkpoint)");
  std::map<std::string, Tensor> tensors;
  for (auto& [n, t] : model_->state_dict()) tensors["model." + n] = t;
  for (auto& [n, t] : fit_->optimizer().state_dict()) tensors["optim." + n] = t;
  if (streams_) {  // the memory and the streams' places: a resumed run continues exactly
    for (auto& [n, t] : models::save_model_state(memory_)) tensors["state." + n] = t;
    tensors["data.cursors"] = streams_->cursors();
  }
  for (auto& [n, t] : tensors)
    TZ_CHECK(all_finite(t), "train: not saving ", path, " at step ", step(), ": '", n,
             "' holds NaN or Inf (the file keeps the last good checkpoint)");
  const Generator& g = default_generator();
  std::map<std::string, std::string> meta = {
      {"format", kFormat},
      {"format_version", std::to_string(kFormatVersion)},
      {"config", model_->config_json()},
      {"train_options", options_.to_json()},
      {"step", std::to_string(step())},
      {"elapsed_s", std::to_string(fit_->elapsed_s())},
      {"data_rng", std::to_string(data_gen_.seed()) + " " + std::to_string(data_gen_.counter())},
      {"global_rng", std::to_string(g.seed()) + " " + std::to_string(g.counter())},
  };
  save_safetensors(path, tensors, meta);
}

namespace {
std::string require_meta(const TensorFile& f, const std::string& key, const std::string& path) {
  auto it = f.metadata.find(key);
  TZ_CHECK(it != f.metadata.end(), "checkpoint ", path, ": metadata has no '", key,
           "' (not a training checkpoint written by tensorzoo?)");
  return it->second;
}

std::pair<uint64_t, uint64_t> parse_rng(const std::string& s, const std::string& path) {
  unsigned long long seed = 0, counter = 0;
  TZ_CHECK(std::sscanf(s.c_str(), "%llu %llu", &seed, &counter) == 2, "checkpoint ", path, ": bad RNG state '", s, "'");
  return {seed, counter};
}
}  // namespace

TensorFile load_checkpoint_file(const std::string& dir, std::string* config) {
  std::string path = (fs::path(dir) / kCheckpointFile).string();
  TZ_CHECK(fs::exists(path), "checkpoint: no ", kCheckpointFile, " in ", dir);
  TensorFile f = load_safetensors(path);
  TZ_CHECK(require_meta(f, "format", path) == kFormat, "checkpoint ", path, ": format '", f.metadata["format"],
           "', expected '", kFormat, "'");
  std::string version = require_meta(f, "format_version", path);
  TZ_CHECK(version == std::to_string(kFormatVersion), "checkpoint ", path, ": format version ", version,
           " is not supported (this build reads version ", kFormatVersion, ")");
  if (config) *config = require_meta(f, "config", path);
  return f;
}

std::unique_ptr<Trainer> Trainer::resume(const std::string& dir, int64_t steps) {
  TensorFile f = load_checkpoint_file(dir, nullptr);
  std::string path = (fs::path(dir) / kCheckpointFile).string();
  TrainOptions o = TrainOptions::from_json(require_meta(f, "train_options", path));
  o.out_dir = dir;
  if (steps > 0) o.steps = steps;
  std::unique_ptr<Trainer> t(new Trainer(o, false));
  std::map<std::string, Tensor> model_state, optim_state, memory_state;
  for (auto& [n, tensor] : f.tensors) {
    if (n.rfind("model.", 0) == 0)
      model_state[n.substr(6)] = tensor;
    else if (n.rfind("optim.", 0) == 0)
      optim_state[n.substr(6)] = tensor;
    else if (n.rfind("state.", 0) == 0 && t->streams_)
      memory_state[n.substr(6)] = tensor;
    else if (n == "data.cursors" && t->streams_)
      t->streams_->set_cursors(tensor);
    else
      throw Error(cat_str("checkpoint ", path, ": unexpected tensor '", n, "'"));
  }
  if (t->streams_) {
    TZ_CHECK(!memory_state.empty() && f.tensors.count("data.cursors"), "checkpoint ", path,
             ": the model has segment memory but the checkpoint holds no memory (state.*) or stream places "
             "(data.cursors)");
    models::restore_model_state(t->memory_, memory_state);
  }
  t->model_->load_state_dict(model_state);
  t->fit_->restore(optim_state, std::stoll(require_meta(f, "step", path)),
                   std::stod(require_meta(f, "elapsed_s", path)));
  auto [ds, dc] = parse_rng(require_meta(f, "data_rng", path), path);
  t->data_gen_.set_state(ds, dc);
  auto [gs, gc] = parse_rng(require_meta(f, "global_rng", path), path);
  default_generator().set_state(gs, gc);
  TZ_CHECK(t->step() <= o.steps, "resume: the run in ", dir, " already did ", t->step(),
           " steps; ask for more with --steps");
  return t;
}

std::unique_ptr<models::LM> load_model(const std::string& dir) {
  std::string config;
  TensorFile f = load_checkpoint_file(dir, &config);
  Generator gen(0);
  auto model = zoo::make_lm(nn::Config::parse(config, "checkpoint config"), gen);
  std::map<std::string, Tensor> state;
  for (auto& [n, t] : f.tensors)
    if (n.rfind("model.", 0) == 0) state[n.substr(6)] = t;
  model->load_state_dict(state);
  model->eval();
  return model;
}

bool plot_loss(const std::string& dir, std::string& message) {
  return plot_png({.csv = (fs::path(dir) / kLogFile).string(),
                   .png = (fs::path(dir) / "loss.png").string(),
                   .title = "training run " + dir,
                   .ylabel = "loss (nats per byte)",
                   .curves = {{.column = 2, .title = "train", .width = 1.5},
                              {.column = 3, .title = "validation", .width = 2, .sparse = true}}},
                  message);
}

}  // namespace tz::train
