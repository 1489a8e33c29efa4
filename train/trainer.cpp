#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/dtype.h"
#include "core/json.h"
#include "core/parallel.h"
#include "core/safetensors.h"
#include "core/text.h"
#include "data/bpe.h"
#include "data/grammar.h"
#include "models/keys.h"
#include "models/zoo.h"
#include "train/run_dir.h"
#include "train/segments.h"

namespace tz::train {

namespace fs = std::filesystem;
using nlohmann::json;

void TrainOptions::validate() const {
  const int64_t context = model.get(models::kContext);
  auto in = [](const char* key, int64_t value, int64_t lo, int64_t hi) {
    TZ_CHECK(value >= lo && value <= hi, "train: ", key, " must be in [", lo, ", ", hi, "], got ", value);
  };
  in("steps", steps, 1, kMaxSteps);
  in("batch", batch, 1, kMaxBatch);
  in("seq_len", seq_len, 1, context);
  recipe.validate();
  in("warmup", recipe.warmup, 0, kMaxSteps);
  in("eval_every", eval_every, 1, kMaxSteps);
  in("save_every", save_every, 0, kMaxSteps);
  in("eval_batches", eval_batches, 1, kMaxBatch);
  in("log_every", log_every, 1, kMaxSteps);
  in("threads", threads, 0, kMaxThreads);
  in("builtin_bytes", builtin_bytes, 10000, kMaxBuiltinBytes);
  in("shards", shards, 0, batch);
  TZ_CHECK(shards == 0 || batch % shards == 0, "train: shards (", shards, ") must divide the batch (", batch, ")");
  data::check_tokenizer_kind(tokenizer, "train");
  if (tokenizer == "bytes")
    TZ_CHECK(vocab == 0 || vocab == 256, "train: the byte tokenizer has a vocabulary of 256, got vocab ", vocab,
             " (a larger vocabulary needs tokenizer bpe)");
  else
    TZ_CHECK(vocab == 0 || (vocab >= data::kMinBpeVocab && vocab <= data::kMaxBpeVocab), "train: vocab must be in [",
             data::kMinBpeVocab, ", ", data::kMaxBpeVocab, "] for tokenizer bpe (256 bytes + merges), got ", vocab);
}

std::string TrainOptions::to_json() const {
  json j = {{"data", data},
            {"tokenizer", tokenizer},
            {"vocab", vocab},
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
            {"plan_steps", recipe.plan_steps},
            {"eval_every", eval_every},
            {"save_every", save_every},
            {"eval_batches", eval_batches},
            {"log_every", log_every},
            {"threads", threads},
            {"seed", seed},
            {"out_dir", out_dir},
            {"skip_nonfinite", skip_nonfinite},
            {"shards", shards},
            {"deterministic", deterministic}};
  return j.dump();
}

TrainOptions TrainOptions::from_json(const std::string& text, const nn::Config& model, const std::string& source) {
  const json j = parse_json(text, source);
  TZ_CHECK(j.is_object(), source, ": expected a JSON object");
  TrainOptions o;
  o.model = model;
  o.shards = 1;  // a run saved before shards existed had one
  for (auto& item : j.items()) {
    const std::string& key = item.key();
    auto get = [&]<class T>(T& field) { field = json_get<T>(j, key, source); };
    if (key == "data")
      get(o.data);
    else if (key == "tokenizer")
      get(o.tokenizer);
    else if (key == "vocab")
      get(o.vocab);
    else if (key == "builtin_bytes")
      get(o.builtin_bytes);
    else if (key == "steps")
      get(o.steps);
    else if (key == "batch")
      get(o.batch);
    else if (key == "seq_len")
      get(o.seq_len);
    else if (key == "lr")
      get(o.recipe.lr);
    else if (key == "min_lr")
      get(o.recipe.min_lr);
    else if (key == "warmup")
      get(o.recipe.warmup);
    else if (key == "schedule")
      get(o.recipe.schedule);
    else if (key == "weight_decay")
      get(o.recipe.weight_decay);
    else if (key == "beta1")
      get(o.recipe.betas[0]);
    else if (key == "beta2")
      get(o.recipe.betas[1]);
    else if (key == "eps")
      get(o.recipe.eps);
    else if (key == "grad_clip")
      get(o.recipe.grad_clip);
    else if (key == "plan_steps")
      get(o.recipe.plan_steps);
    else if (key == "eval_every")
      get(o.eval_every);
    else if (key == "save_every")
      get(o.save_every);
    else if (key == "eval_batches")
      get(o.eval_batches);
    else if (key == "log_every")
      get(o.log_every);
    else if (key == "threads")
      get(o.threads);
    else if (key == "seed")
      get(o.seed);
    else if (key == "out_dir")
      get(o.out_dir);
    else if (key == "skip_nonfinite")
      get(o.skip_nonfinite);
    else if (key == "shards")
      get(o.shards);
    else if (key == "deterministic")
      get(o.deterministic);
    else
      throw Error(cat_str(source, ": unknown key '", key.substr(0, 80), "'"));
  }
  try {
    o.validate();
  } catch (const Error& e) {
    throw Error(cat_str(source, ": ", e.what()));
  }
  return o;
}

Trainer::Trainer(const TrainOptions& options, const Distribution& dist) : Trainer(options, dist, true, nullptr) {}

namespace {
// Shard k's generator: shard 0 is seeded with the run's seed (one shard: as before shards
// existed), shard k > 0 with a SplitMix64 mix of (seed, k).
// Checks that every rank makes alike (same options, same checkpoint): on several ranks their
// failure is an AgreedError, which rank 0 alone reports.
void agreed(Communicator& comm, const std::function<void()>& check) {
  try {
    check();
  } catch (const AgreedError&) {
    throw;
  } catch (const Error& e) {
    if (comm.size() > 1) throw AgreedError(e.what());
    throw;
  }
}

Generator shard_generator(uint64_t seed, int64_t k) {
  if (k == 0) return Generator(seed);
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * uint64_t(k + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return Generator(z ^ (z >> 31));
}

// A new run's tokenizer: bytes, or a BPE learned from the training split of `text` (every
// rank learns the same one: the training is deterministic).
std::shared_ptr<const data::Tokenizer> make_run_tokenizer(const TrainOptions& o, const std::string& text,
                                                          double val_fraction) {
  if (o.tokenizer == "bytes") return std::make_shared<data::ByteTokenizer>();
  const int64_t vocab = o.vocab > 0 ? o.vocab : kDefaultBpeVocab;
  const int64_t n = data::TextDataset::train_bytes(int64_t(text.size()), val_fraction);
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  int last_tenth = -1;
  auto tok = data::BpeTokenizer::train(
      std::string_view(text).substr(0, size_t(n)),
      {.vocab_size = vocab, .on_progress = [&](int64_t done, int64_t wanted) {
         const int tenth = wanted > 0 ? int(10 * done / wanted) : 10;
         if (!o.on_note || tenth == last_tenth) return;
         last_tenth = tenth;
         o.on_note(cat_str("tokenizer: bpe ", done, "/", wanted, " merges, ", int64_t(seconds() * 10) / 10.0, " s"));
       }});
  if (o.on_note && tok.vocab_size() < vocab)
    o.on_note(cat_str("tokenizer: the training text holds no pair twice after ", tok.merges().size(),
                      " merges: vocabulary ", tok.vocab_size(), " instead of ", vocab));
  return std::make_shared<data::BpeTokenizer>(std::move(tok));
}

uint64_t fingerprint(const std::vector<int64_t>& tokens) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int64_t t : tokens) h = (h ^ uint64_t(t)) * 0x100000001b3ULL;
  return h;
}
}  // namespace

Trainer::Trainer(const TrainOptions& options, const Distribution& dist, bool fresh_log,
                 std::shared_ptr<const data::Tokenizer> tokenizer)
    : options_(options),
      data_gen_(options.seed),
      comm_(dist.comm ? dist.comm : std::make_shared<SoloCommunicator>()),
      dist_(dist) {
  const int ranks = comm_->size();
  if (options_.shards == 0) options_.shards = ranks;
  agreed(*comm_, [&] {  // the same options on every rank: one rank says what is wrong
    check_shards(options_.batch, options_.shards, ranks);
    options_.validate();
  });
  if (options_.threads > 0) set_num_threads(options_.threads);
  data::TextDatasetOptions dopt{.val_fraction = 0.1, .seq_len = options_.seq_len};
  std::error_code ec;
  TZ_CHECK(options_.data.empty() || fs::exists(options_.data, ec), "TextDataset: no file at '", options_.data, "'");
  const std::string text = options_.data.empty() ? data::grammar_text(options_.builtin_bytes, options_.seed)
                                                 : read_file(options_.data, "TextDataset");
  TZ_CHECK(!text.empty(), "TextDataset: '", options_.data, "' is empty");
  if (!tokenizer) tokenizer = make_run_tokenizer(options_, text, dopt.val_fraction);
  dataset_ = std::make_unique<data::TextDataset>(data::TextDataset::from_string(
      text, dopt, options_.data.empty() ? "built-in grammar text" : options_.data, tokenizer));
  // The model reads the tokenizer's ids.
  options_.model.set(models::kVocab.name, std::to_string(tokenizer->vocab_size()));
  if (ranks > 1) {  // every rank must read the same text (its own copy of --data)
    const uint64_t mine = fingerprint(dataset_->tokens());
    std::vector<uint64_t> all(static_cast<size_t>(ranks));
    comm_->allgather(&mine, sizeof mine, all.data());
    for (int r = 1; r < ranks; ++r)
      TZ_CHECK(all[size_t(r)] == all[0], "train: rank ", r, " read different text from ", dataset_->source(),
               " than rank 0; every machine needs the same file at that path");
  }
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
    TZ_CHECK(options_.shards == 1,
             "train: a model with segment memory carries each row's memory from step to step "
             "and trains in one shard on one rank; got ",
             options_.shards, " shards on ", ranks, " ranks");
    streams_ =
        std::make_unique<data::TextStreams>(*dataset_, data::Split::train, options_.batch, options_.seq_len, data_gen_);
    memory_ = model_->make_memory(options_.batch);
    if (auto* lm = dynamic_cast<models::LM*>(model_.get())) segments += lm->memory->plan.bptt;
  }
  segments_per_step_ = segments;
  fit_ = std::make_unique<Fit>(model_->named_parameters(),
                               FitOptions{.steps = options_.steps,
                                          .recipe = options_.recipe,
                                          .tokens_per_step = options_.batch * options_.seq_len * segments,
                                          .skip_nonfinite = options_.skip_nonfinite});
  if (options_.shards > 1) {
    parallel_ = std::make_unique<DataParallel>(model_->named_parameters(), comm_,
                                               ParallelOptions{.shards = options_.shards,
                                                               .deterministic = options_.deterministic,
                                                               .bucket_mb = dist_.bucket_mb,
                                                               .overlap = dist_.overlap});
    for (int64_t j = 0; j < parallel_->local_shards(); ++j)
      shard_gens_.push_back(shard_generator(options_.seed, parallel_->first_shard() + j));
    // The same start on every rank, whatever each built (the initialisation is seeded alike).
    std::vector<Tensor> state;
    for (auto& [n, t] : model_->state_dict()) state.push_back(t);
    parallel_->broadcast(state);
  }
  on_rank0(*comm_, [&] {
    fs::create_directories(options_.out_dir);
    for (const std::string& name : remove_stale_files(options_.out_dir))
      std::fprintf(stderr, "train: removed %s in %s, left by an interrupted checkpoint write\n", name.c_str(),
                   options_.out_dir.c_str());
    if (fresh_log && !dataset_->tokenizer().to_json().empty())  // a new run's learned tokenizer
      write_run_file((fs::path(options_.out_dir) / models::kTokenizerFile).string(), dataset_->tokenizer().to_json());
    if (fresh_log) {
      std::ofstream log(fs::path(options_.out_dir) / kLogFile);
      TZ_CHECK(log.good(), "train: cannot write ", (fs::path(options_.out_dir) / kLogFile).string());
      log << "step,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s\n";
    }
  });
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
  // On several ranks each evaluates every R-th batch (all draw every batch, so the batches
  // stay those of one process); the losses are then added in batch order, as one process does.
  const int R = comm_->size(), me = comm_->rank();
  std::vector<double> losses(size_t(options_.eval_batches), 0.0);
  for (int64_t i = 0; i < options_.eval_batches; ++i) {
    data::Batch b = dataset_->sample(data::Split::val, options_.batch, options_.seq_len, gen);
    if (i % R == me) losses[size_t(i)] = model_->loss(b.inputs, b.targets).item();
  }
  if (R > 1) comm_->allreduce_sum(losses.data(), int64_t(losses.size()));  // one value and zeros per batch
  for (double l : losses) total += l;
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
  std::vector<Tensor> params;
  for (auto& [n, p] : model_->named_parameters()) params.push_back(p);
  Hooks hooks{.evaluate = [this] { return evaluate(); },
              .eval_every = options_.eval_every,
              .on_step =
                  [&](const StepRecord& r) {
                    history_.push_back(r);
                    if (writes_files() && (r.step % options_.log_every == 0 || r.val_loss || r.step == options_.steps))
                      append_log(r);
                    if (parallel_ && dist_.verify_replicas)
                      parallel_->check_replicas(params, cat_str("after step ", r.step));
                    const bool go_on = !on_step || on_step(r);
                    // A stop on any rank (Ctrl-C, SIGTERM, --stop-after) stops all at this step.
                    return comm_->size() > 1 ? !parallel_->any(!go_on) : go_on;
                  },
              .checkpoint = [this] { save_checkpoint(); },
              // By default saved with every evaluation (a run that diverges later keeps recent
              // weights) and, when evaluations are far apart in time, by the clock, so that a
              // killed run loses at most minutes.
              .checkpoint_every = options_.save_every > 0 ? options_.save_every : options_.eval_every,
              .checkpoint_after_s = options_.save_every > 0 ? 0 : kAutoSaveSeconds};
  try {
    if (parallel_)
      fit_->run_with_grads([this] { return parallel_step(); }, hooks);
    else
      fit_->run(loss, hooks);
  } catch (const Error& e) {
    // A NaN or Inf stop comes from the averaged loss and gradient: every rank stops alike.
    if (comm_->size() > 1 && fit_->stopped_on_error() && !dynamic_cast<const AgreedError*>(&e))
      throw AgreedError(e.what());
    throw;
  }
}

// One step over the shards: the whole batch is drawn on every rank (the same generator), and
// each rank computes its shards' rows, each with its own generator for dropout.
double Trainer::parallel_step() {
  model_->train();
  data::Batch b = dataset_->sample(data::Split::train, options_.batch, options_.seq_len, data_gen_);
  const int64_t rows = options_.batch / options_.shards;
  return parallel_->loss_and_grads([&](int64_t k) {
    Generator& global = default_generator();
    const Generator saved = global;
    Generator& mine = shard_gens_[size_t(k - parallel_->first_shard())];
    global = mine;
    Tensor loss = model_->loss(b.inputs.narrow(0, k * rows, rows), b.targets.narrow(0, k * rows, rows));
    mine = global;
    global = saved;
    return loss;
  });
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
  // Every shard's generator, gathered from the ranks (a collective: every rank saves).
  std::string shard_rng;
  if (parallel_) {
    std::vector<uint64_t> mine, all(size_t(2 * options_.shards));
    for (const Generator& g : shard_gens_) mine.insert(mine.end(), {g.seed(), g.counter()});
    comm_->allgather(mine.data(), int64_t(mine.size() * sizeof(uint64_t)), all.data());
    for (size_t i = 0; i < all.size(); i += 2) shard_rng += cat_str(i ? " " : "", all[i], " ", all[i + 1]);
  }
  on_rank0(*comm_, [&] { write_checkpoint(shard_rng); });
}

void Trainer::write_checkpoint(const std::string& shard_rng) const {
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
      {"format", kCheckpointFormat},
      {"format_version", std::to_string(kCheckpointVersion)},
      {"config", model_->config_json()},
      {"train_options", options_.to_json()},
      {"step", std::to_string(step())},
      {"elapsed_s", std::to_string(fit_->elapsed_s())},
      {"data_rng", std::to_string(data_gen_.seed()) + " " + std::to_string(data_gen_.counter())},
      {"global_rng", std::to_string(g.seed()) + " " + std::to_string(g.counter())},
  };
  if (!shard_rng.empty()) meta["shard_rng"] = shard_rng;  // "seed counter" of shards 0 .. K-1
  for (auto& [k, v] : models::checkpoint_tokenizer_metadata({tokenizer().kind(), tokenizer().to_json()})) meta[k] = v;
  save_safetensors(path, tensors, meta);
}

namespace {
// Applies `changes` to `o`, returning what changed as "lr 0.002 -> 0.001, steps 600 -> 800".
std::string apply(const ResumeChanges& changes, TrainOptions& o) {
  std::string said;
  auto change = [&]<class T>(const char* name, const std::optional<T>& to, T& field) {
    if (!to || *to == field) return;
    said += cat_str(said.empty() ? "" : ", ", name, " ", field, " -> ", *to);
    field = *to;
  };
  const int64_t planned = o.recipe.plan_steps > 0 ? o.recipe.plan_steps : o.steps;
  change("steps", changes.steps, o.steps);
  change("lr", changes.lr, o.recipe.lr);
  change("min_lr", changes.min_lr, o.recipe.min_lr);
  change("warmup", changes.warmup, o.recipe.warmup);
  change("schedule", changes.schedule, o.recipe.schedule);
  change("weight_decay", changes.weight_decay, o.recipe.weight_decay);
  change("grad_clip", changes.grad_clip, o.recipe.grad_clip);
  change("eval_every", changes.eval_every, o.eval_every);
  change("save_every", changes.save_every, o.save_every);
  change("log_every", changes.log_every, o.log_every);
  change("threads", changes.threads, o.threads);
  change("skip_nonfinite", changes.skip_nonfinite, o.skip_nonfinite);
  change("data", changes.data, o.data);
  // More steps extend the schedule on its decayed tail (recipe.h), unless asked to re-plan it.
  if (changes.replan)
    o.recipe.plan_steps = 0;
  else if (o.steps > planned && o.recipe.schedule != "constant")
    o.recipe.plan_steps = planned;
  if (o.recipe.plan_steps == o.steps) o.recipe.plan_steps = 0;
  if (changes.steps && o.recipe.plan_steps > 0)
    said +=
        cat_str("; the schedule as planned for ", o.recipe.plan_steps, " steps, then its final lr ",
                o.recipe.lr_at(o.recipe.plan_steps - 1, o.recipe.plan_steps), " (--replan: plan over ", o.steps, ")");
  else if (changes.steps && changes.replan)
    said += cat_str("; the schedule re-planned over ", o.steps, " steps");
  return said;
}
}  // namespace

std::unique_ptr<Trainer> Trainer::resume(const std::string& dir, const ResumeChanges& changes, std::string* changed,
                                         const Distribution& dist) {
  const std::shared_ptr<Communicator> comm = dist.comm ? dist.comm : std::make_shared<SoloCommunicator>();
  RunCheckpoint run;
  if (comm->size() == 1) {
    run = read_run(dir);
  } else {  // rank 0 reads the file and sends its bytes: the other machines need no copy
    const std::string path = (fs::path(dir) / kCheckpointFile).string();
    const fs::path tok_path = fs::path(dir) / models::kTokenizerFile;
    std::string bytes, tok = "-";  // "-": no tokenizer file (a byte-level run)
    on_rank0(*comm, [&] {
      TZ_CHECK(fs::exists(path), "checkpoint: no ", kCheckpointFile, " in ", dir);
      bytes = read_file(path, "checkpoint");
      if (fs::exists(tok_path)) tok = read_file(tok_path.string(), "checkpoint: tokenizer", uint64_t(1) << 28);
    });
    bytes = broadcast_string(*comm, bytes);
    tok = broadcast_string(*comm, tok);
    run = read_run(parse_safetensors(std::vector<uint8_t>(bytes.begin(), bytes.end()), path), path,
                   tok == "-" ? nullptr : &tok);
  }
  TrainOptions o = run.options;
  const std::string said = apply(changes, o);
  agreed(*comm, [&] {  // every rank has the same checkpoint and changes
    TZ_CHECK(!changes.steps || *changes.steps > run.step, "resume: steps ", changes.steps.value_or(0),
             " is not more than the ", run.step, " steps the run in ", dir, " has done");
    TZ_CHECK(run.step <= o.steps, "resume: the run in ", dir, " already did ", run.step,
             " steps; ask for more with --steps");
  });
  TZ_CHECK(o.data.empty() || fs::exists(o.data), "resume: the run in ", dir, " trained on '", o.data,
           "' (its checkpoint's training options), which does not exist now; restore the file, or give --data PATH "
           "to continue on a file at another place");
  std::unique_ptr<Trainer> t(new Trainer(o, dist, false, run.tokenizer));
  if (t->streams_) {
    TZ_CHECK(!run.memory_state.empty() && run.cursors.defined(), "checkpoint ", run.path,
             ": the model has segment memory but the checkpoint holds no memory (state.*) or stream places "
             "(data.cursors)");
    models::restore_model_state(t->memory_, run.memory_state);
    t->streams_->set_cursors(run.cursors);
  } else {
    TZ_CHECK(run.memory_state.empty() && !run.cursors.defined(), "checkpoint ", run.path,
             ": holds segment memory (state.*, data.cursors) but the model has none");
  }
  try {
    t->model_->load_state_dict(run.model_state);
  } catch (const Error& e) {
    throw Error(cat_str("checkpoint ", run.path, ": ", e.what()));
  }
  t->fit_->restore(run.optim_state, run.step, run.elapsed_s);
  auto rng = [&](const char* key) {
    const std::string s = run.file.metadata.count(key) ? run.file.metadata.at(key) : "";
    unsigned long long seed = 0, counter = 0;
    char extra = 0;
    TZ_CHECK(std::sscanf(s.c_str(), "%llu %llu %c", &seed, &counter, &extra) == 2, "checkpoint ", run.path,
             ": metadata '", key, "' is '", s.substr(0, 60), "', expected two integers (seed counter)");
    return std::pair<uint64_t, uint64_t>(seed, counter);
  };
  auto [ds, dc] = rng("data_rng");
  t->data_gen_.set_state(ds, dc);
  auto [gs, gc] = rng("global_rng");
  default_generator().set_state(gs, gc);
  if (t->parallel_) {
    t->restore_shard_rngs(run.file.metadata.count("shard_rng") ? run.file.metadata.at("shard_rng") : "", run.path);
    std::vector<Tensor> state;  // rank 0's parameters, as at a start
    for (auto& [n, x] : t->model_->state_dict()) state.push_back(x);
    t->parallel_->broadcast(state);
  }
  on_rank0(*comm, [&] {
    truncate_log(dir, run.step);
    if (!said.empty()) append_history(dir, cat_str("step ", run.step, ": resumed with ", said));
  });
  if (changed) *changed = said;
  return t;
}

void Trainer::restore_shard_rngs(const std::string& saved, const std::string& path) {
  std::istringstream in(saved);
  std::vector<uint64_t> v;
  for (uint64_t x; in >> x;) v.push_back(x);
  TZ_CHECK(in.eof() && int64_t(v.size()) == 2 * options_.shards, "checkpoint ", path, ": metadata 'shard_rng' is '",
           saved.substr(0, 60), "', expected ", options_.shards, " pairs of integers (seed counter), one per shard");
  for (size_t j = 0; j < shard_gens_.size(); ++j) {
    const size_t k = size_t(parallel_->first_shard()) + j;
    shard_gens_[j].set_state(v[2 * k], v[2 * k + 1]);
  }
}

}  // namespace tz::train
