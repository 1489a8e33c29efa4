#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "core/parallel.h"
#include "data/grammar.h"
#include "core/safetensors.h"
#include "models/keys.h"
#include "models/zoo.h"
#include "optim/clip.h"
#include "optim/schedule.h"

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
  TZ_CHECK(seq_len > 0 && seq_len <= context, "train: seq_len must be in [1, context=", context,
           "], got ", seq_len);
  TZ_CHECK(lr > 0 && min_lr >= 0 && min_lr <= lr, "train: need 0 <= min_lr <= lr and lr > 0, got lr=",
           lr, " min_lr=", min_lr);
  TZ_CHECK(warmup >= 0, "train: warmup must be >= 0, got ", warmup);
  TZ_CHECK(schedule == "cosine" || schedule == "constant", "train: unknown schedule '", schedule,
           "'; valid: cosine, constant");
  TZ_CHECK(weight_decay >= 0 && grad_clip >= 0, "train: weight_decay and grad_clip must be >= 0");
  TZ_CHECK(beta2 >= 0 && beta2 < 1, "train: beta2 must be in [0, 1), got ", beta2);
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
            {"lr", lr},
            {"min_lr", min_lr},
            {"warmup", warmup},
            {"schedule", schedule},
            {"weight_decay", weight_decay},
            {"beta2", beta2},
            {"grad_clip", grad_clip},
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
      if (key == "model") o.model = nn::Config::parse(v.dump(), "model config");
      else if (key == "data") o.data = v.get<std::string>();
      else if (key == "builtin_bytes") o.builtin_bytes = v.get<int64_t>();
      else if (key == "steps") o.steps = v.get<int64_t>();
      else if (key == "batch") o.batch = v.get<int64_t>();
      else if (key == "seq_len") o.seq_len = v.get<int64_t>();
      else if (key == "lr") o.lr = v.get<double>();
      else if (key == "min_lr") o.min_lr = v.get<double>();
      else if (key == "warmup") o.warmup = v.get<int64_t>();
      else if (key == "schedule") o.schedule = v.get<std::string>();
      else if (key == "weight_decay") o.weight_decay = v.get<double>();
      else if (key == "beta2") o.beta2 = v.get<double>();
      else if (key == "grad_clip") o.grad_clip = v.get<double>();
      else if (key == "eval_every") o.eval_every = v.get<int64_t>();
      else if (key == "eval_batches") o.eval_batches = v.get<int64_t>();
      else if (key == "log_every") o.log_every = v.get<int64_t>();
      else if (key == "threads") o.threads = v.get<int>();
      else if (key == "seed") o.seed = v.get<uint64_t>();
      else if (key == "out_dir") o.out_dir = v.get<std::string>();
      else throw Error(cat_str("train options: unknown key '", key, "'"));
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
      options_.data.empty()
          ? data::TextDataset::from_string(data::grammar_text(options_.builtin_bytes, options_.seed),
                                           dopt, "built-in grammar text")
          : data::TextDataset::from_file(options_.data, dopt));
  // Initialisation and dropout draw from the global generator, seeded from the run's seed.
  manual_seed(options_.seed);
  Generator init_gen(options_.seed ^ 0x1234567ULL);
  model_ = zoo::make_model(options_.model, init_gen);
  TZ_CHECK(model_->vocab() > 0 && model_->causal_input() == 0, "train: the text trainer needs a causal language "
           "model, got ", model_->describe());
  TZ_CHECK(dataset_->vocab_size() == model_->vocab(), "train: the data has a vocabulary of ",
           dataset_->vocab_size(), " but the model expects ", model_->vocab());
  auto groups = optim::decay_groups(model_->named_parameters(), options_.weight_decay);
  optimizer_ = std::make_unique<optim::AdamW>(
      std::move(groups), optim::AdamWOptions{.lr = options_.lr, .betas = {0.9, options_.beta2}});
  fs::create_directories(options_.out_dir);
  if (fresh_log) {
    std::ofstream log(fs::path(options_.out_dir) / kLogFile);
    TZ_CHECK(log.good(), "train: cannot write ", (fs::path(options_.out_dir) / kLogFile).string());
    log << "step,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s\n";
  }
}

double Trainer::lr_at(int64_t step) const {
  const int64_t warmup = std::min(options_.warmup, options_.steps);  // short runs: shorter warm-up
  if (options_.schedule == "constant") {
    return step < warmup ? options_.lr * double(step + 1) / double(warmup) : options_.lr;
  }
  return optim::warmup_cosine(step, warmup, options_.steps, options_.lr, options_.min_lr);
}

StepRecord Trainer::train_step() {
  auto t0 = std::chrono::steady_clock::now();
  model_->train();
  data::Batch b = dataset_->sample(data::Split::train, options_.batch, options_.seq_len, data_gen_);
  Tensor loss = model_->loss(b.inputs, b.targets);
  optimizer_->zero_grad();
  loss.backward();
  StepRecord r;
  r.grad_norm = options_.grad_clip > 0 ? optim::clip_grad_norm(model_->parameters(), options_.grad_clip)
                                       : optim::clip_grad_norm(model_->parameters(), INFINITY);
  r.lr = lr_at(step_);
  optimizer_->set_lr(r.lr);
  optimizer_->step();
  ++step_;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.step = step_;
  r.loss = loss.item();
  r.tokens_per_s = double(options_.batch * options_.seq_len) / std::max(secs, 1e-9);
  elapsed_before_ += secs;
  r.elapsed_s = elapsed_before_;
  return r;
}

double Trainer::evaluate() {
  NoGradGuard no_grad;
  model_->eval();
  Generator gen(options_.seed + 0x9e3779b9ULL);  // the same validation batches every time
  double total = 0;
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
  std::snprintf(line, sizeof line, "%lld,%.9g,%s,%.6g,%.6g,%.1f,%.3f\n", (long long)r.step, r.loss, val,
                r.lr, r.grad_norm, r.tokens_per_s, r.elapsed_s);
  log << line;
}

void Trainer::run(const std::function<bool(const StepRecord&)>& on_step) {
  while (step_ < options_.steps) {
    StepRecord r = train_step();
    if (r.step % options_.eval_every == 0 || r.step == options_.steps) r.val_loss = evaluate();
    history_.push_back(r);
    if (r.step % options_.log_every == 0 || r.val_loss || r.step == options_.steps) append_log(r);
    if (on_step && !on_step(r)) break;
  }
  save_checkpoint();
}

void Trainer::save_checkpoint() const {
  std::map<std::string, Tensor> tensors;
  for (auto& [n, t] : model_->state_dict()) tensors["model." + n] = t;
  for (auto& [n, t] : optimizer_->state_dict()) tensors["optim." + n] = t;
  const Generator& g = default_generator();
  std::map<std::string, std::string> meta = {
      {"format", kFormat},
      {"format_version", std::to_string(kFormatVersion)},
      {"config", model_->config_json()},
      {"train_options", options_.to_json()},
      {"step", std::to_string(step_)},
      {"elapsed_s", std::to_string(elapsed_before_)},
      {"data_rng", std::to_string(data_gen_.seed()) + " " + std::to_string(data_gen_.counter())},
      {"global_rng", std::to_string(g.seed()) + " " + std::to_string(g.counter())},
  };
  save_safetensors((fs::path(options_.out_dir) / kCheckpointFile).string(), tensors, meta);
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
  TZ_CHECK(std::sscanf(s.c_str(), "%llu %llu", &seed, &counter) == 2, "checkpoint ", path,
           ": bad RNG state '", s, "'");
  return {seed, counter};
}
}  // namespace

TensorFile load_checkpoint_file(const std::string& dir, std::string* config) {
  std::string path = (fs::path(dir) / kCheckpointFile).string();
  TZ_CHECK(fs::exists(path), "checkpoint: no ", kCheckpointFile, " in ", dir);
  TensorFile f = load_safetensors(path);
  TZ_CHECK(require_meta(f, "format", path) == kFormat, "checkpoint ", path, ": format '",
           f.metadata["format"], "', expected '", kFormat, "'");
  std::string version = require_meta(f, "format_version", path);
  TZ_CHECK(version == std::to_string(kFormatVersion), "checkpoint ", path, ": format version ",
           version, " is not supported (this build reads version ", kFormatVersion, ")");
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
  std::map<std::string, Tensor> model_state, optim_state;
  for (auto& [n, tensor] : f.tensors) {
    if (n.rfind("model.", 0) == 0) model_state[n.substr(6)] = tensor;
    else if (n.rfind("optim.", 0) == 0) optim_state[n.substr(6)] = tensor;
    else throw Error(cat_str("checkpoint ", path, ": unexpected tensor '", n, "'"));
  }
  t->model_->load_state_dict(model_state);
  t->optimizer_->load_state_dict(optim_state);
  t->step_ = std::stoll(require_meta(f, "step", path));
  t->elapsed_before_ = std::stod(require_meta(f, "elapsed_s", path));
  auto [ds, dc] = parse_rng(require_meta(f, "data_rng", path), path);
  t->data_gen_.set_state(ds, dc);
  auto [gs, gc] = parse_rng(require_meta(f, "global_rng", path), path);
  default_generator().set_state(gs, gc);
  TZ_CHECK(t->step_ <= o.steps, "resume: the run in ", dir, " already did ", t->step_,
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
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    message = "gnuplot not found: install it (apt-get install gnuplot-nox) for " + dir + "/loss.png";
    return false;
  }
  fs::path script = fs::path(dir) / "loss.gp";
  {
    std::ofstream gp(script);
    gp << "set terminal pngcairo size 900,540 font ',11' noenhanced\n"
       << "set output '" << (fs::path(dir) / "loss.png").string() << "'\n"
       << "set datafile separator ','\n"
       << "set key top right\nset grid\n"
       << "set xlabel 'step'\nset ylabel 'loss (nats per byte)'\n"
       << "set title 'training run " << dir << "'\n"
       << "plot '" << (fs::path(dir) / kLogFile).string()
       << "' using 1:2 skip 1 with lines lw 1.5 title 'train', "
       << "'' using 1:($3 == $3 ? $3 : 1/0) skip 1 with linespoints lw 2 pt 7 title 'validation'\n";
  }
  std::string cmd = "gnuplot '" + script.string() + "' 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    message = "gnuplot failed on " + script.string();
    return false;
  }
  message = (fs::path(dir) / "loss.png").string();
  return true;
}

}  // namespace tz::train
