// `tensorzoo train` and `tensorzoo sample`: training a model on text, and generating from it.
#include <fmt/core.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numbers>
#include <sstream>
#include <tuple>

#include <unistd.h>
#include <cstring>

#include "cli/commands.h"
#include "cli/plot.h"
#include "core/parallel.h"
#include "core/text.h"
#include "data/bpe.h"
#include "embed/text_model.h"
#include "models/generate.h"
#include "models/weights.h"
#include "nn/config.h"
#include "train/run_dir.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace tz::cli {

namespace {

// Ctrl-C during training finishes the current step, saves the checkpoint and exits.
// On several ranks the line in g_note is written at once as well: when mpirun stops the job
// because a rank failed, the step never ends (it waits for that rank), and this line says
// where the last checkpoint is. Two buffers, so that the handler never reads a half-written one.
std::atomic<bool> g_interrupted{false};
char g_note[2][512];
std::atomic<int> g_note_at{-1};
void on_sigint(int) {
  g_interrupted = true;
  const int at = g_note_at.load();
  if (at >= 0) {
    const char* note = g_note[at];
    ssize_t ignored = ::write(2, note, std::strlen(note));
    (void)ignored;
  }
}
void set_note(const std::string& text) {
  const int next = g_note_at.load() == 0 ? 1 : 0;
  std::snprintf(g_note[next], sizeof g_note[next], "%s\n", text.c_str());
  g_note_at = next;
}

// A new run may not mix with an old one: a directory that holds anything is refused unless
// `force`, which removes the files a run writes (and nothing else) first.
void claim_run_dir(const std::string& dir, bool force) {
  std::error_code ec;
  if (!fs::exists(dir, ec) || fs::is_empty(dir, ec)) return;
  TZ_CHECK(fs::is_directory(dir, ec), "train: --out ", dir, " exists and is not a directory");
  if (!force)
    throw CLI::ValidationError(fmt::format(
        "train: {} already holds files (a run?); continue it with --resume {}, choose another --out, or replace it "
        "with --force",
        dir, dir));
  for (const char* name :
       {train::kCheckpointFile, train::kLogFile, train::kHistoryFile, models::kTokenizerFile, "loss.png"})
    fs::remove(fs::path(dir) / name, ec);
}

std::string hms(double seconds) {
  long s = long(std::llround(seconds));
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string read_config_arg(const std::string& arg) {
  if (!arg.empty() && arg.front() == '{') return arg;
  return read_file(arg, "--config (a JSON file, or inline JSON starting with '{')", uint64_t(1) << 24);
}

// Streams the text as it is generated, each token's bytes as they come (a multi-byte UTF-8
// character shows once complete, since the terminal assembles the bytes).
void print_sample(models::Model& model, const data::Tokenizer& tok, const std::string& prompt,
                  const models::SampleOptions& so) {
  TZ_CHECK(!prompt.empty(), "sample: the prompt must not be empty");
  std::fputs(prompt.c_str(), stdout);
  models::generate(model, tok.encode(prompt), so, [&](int64_t t) {
    const std::string bytes = tok.decode({t});
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputc('\n', stdout);
}

int run_train(const train::TrainOptions& base, const std::string& resume_dir, const train::ResumeChanges& changes,
              int64_t sample_tokens, int64_t stop_after, const train::Distribution& dist) {
  std::unique_ptr<train::Trainer> trainer;
  const bool lead = dist.comm->rank() == 0;  // rank 0 prints, plots and samples
  if (!resume_dir.empty()) {
    std::string changed;
    trainer = train::Trainer::resume(resume_dir, changes, &changed, dist);
    if (lead)
      fmt::print("resuming {} at step {} of {}{}\n", resume_dir, trainer->step(), trainer->options().steps,
                 changed.empty() ? "" : " with " + changed + " (recorded in history.txt)");
  } else {
    train::TrainOptions o = base;
    if (lead)
      o.on_note = [](const std::string& line) {
        fmt::print("{}\n", line);
        std::fflush(stdout);
      };
    trainer = std::make_unique<train::Trainer>(o, dist);
  }
  const auto& o = trainer->options();
  const auto& ds = trainer->dataset();
  const int ranks = dist.comm->size();
  if (lead) {
    fmt::print("model: {} ({:.2f}M parameters)\n", trainer->model().describe(),
               double(trainer->model().num_parameters()) / 1e6);
    if (trainer->tokenizer().kind() == "bytes")
      fmt::print("data: {} ({} bytes: {} train, {} validation), unigram entropy {:.3f} nats/byte\n", ds.source(),
                 ds.num_tokens(), ds.num_tokens(data::Split::train), ds.num_tokens(data::Split::val),
                 ds.unigram_entropy_nats());
    else
      fmt::print(
          "data: {} ({} bytes, {} {} tokens of a vocabulary of {}: {} train, {} validation; {:.2f} bytes a token), "
          "unigram entropy {:.3f} nats/token\n",
          ds.source(), ds.num_bytes(data::Split::train) + ds.num_bytes(data::Split::val), ds.num_tokens(),
          trainer->tokenizer().kind(), ds.vocab_size(), ds.num_tokens(data::Split::train),
          ds.num_tokens(data::Split::val),
          double(ds.num_bytes(data::Split::train)) / double(std::max<int64_t>(1, ds.num_tokens(data::Split::train))),
          ds.unigram_entropy_nats());
    fmt::print("training: {} steps of {} x {} tokens, lr {} ({}), {} threads{}, output {}\n", o.steps, o.batch,
               o.seq_len, o.recipe.lr, o.recipe.schedule, get_num_threads(), ranks > 1 ? " per rank" : "", o.out_dir);
    if (o.shards > 1)
      fmt::print("data parallel: {} ranks ({}), the batch in {} shards of {} rows, {} reduction, buckets of {} MB{}\n",
                 ranks, dist.comm->describe(), o.shards, o.batch / o.shards,
                 o.deterministic ? "deterministic (fixed-order)" : "fast (MPI_Allreduce)", dist.bucket_mb,
                 dist.overlap && dist.comm->concurrent_calls() && ranks > 1 ? ", overlapped with backward" : "");
  }
  const int64_t start_step = trainer->step();
  int64_t saved_step = start_step;  // the last checkpoint (for the note a stopped rank writes)
  auto note = [&] {
    if (ranks > 1)
      set_note(
          fmt::format("tensorzoo (rank {} of {}): stopped by a signal; if mpirun reports a failed rank, the "
                      "last checkpoint in {} (step {} or later) is intact: continue with --resume {}",
                      dist.comm->rank(), ranks, o.out_dir, saved_step, o.out_dir));
  };
  note();
  double session_secs = 0;
  // SIGTERM (a scheduler's kill, `timeout`) stops as Ctrl-C does: at the end of the step, with
  // a checkpoint.
  std::signal(SIGINT, on_sigint);
  std::signal(SIGTERM, on_sigint);
  trainer->run([&](const train::StepRecord& r) {
    session_secs += r.seconds;
    // Checkpoints of the steps before this one are on disk (this step's comes after on_step).
    if (const int64_t done = (r.step - 1) / o.eval_every * o.eval_every; done > saved_step) saved_step = done, note();
    bool go_on = !g_interrupted && (stop_after == 0 || r.step - start_step < stop_after);
    if (!go_on && r.step < o.steps && lead)
      fmt::print("stopping at step {} of {}: continue with --resume {}\n", r.step, o.steps, o.out_dir);
    if (!lead || (r.step % o.log_every != 0 && !r.val_loss && r.step != o.steps && !r.skipped)) return go_on;
    double per_step = session_secs / double(r.step - start_step);
    std::string line = fmt::format("step {:>5}/{} | loss {:.4f}", r.step, o.steps, r.loss);
    if (r.skipped) line += " (not finite: batch skipped)";
    if (r.val_loss) line += fmt::format(" | val {:.4f}", *r.val_loss);
    line += fmt::format(" | lr {:.2e} | {:>6.0f} tok/s | {} elapsed | ETA {}", r.lr, r.tokens_per_s, hms(r.elapsed_s),
                        hms(per_step * double(o.steps - r.step)));
    fmt::print("{}\n", line);
    std::fflush(stdout);
    return go_on;
  });
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  g_note_at = -1;
  if (!lead) return 0;
  const auto& h = trainer->history();
  std::string ckpt = (fs::path(o.out_dir) / "checkpoint.safetensors").string();
  fmt::print("\ncheckpoint: {} ({:.1f} MB)\nlog: {}\n", ckpt, double(fs::file_size(ckpt)) / 1e6,
             (fs::path(o.out_dir) / "log.csv").string());
  if (!h.empty() && h.back().val_loss) {
    double v = *h.back().val_loss, u = ds.unigram_entropy_nats();
    if (trainer->tokenizer().kind() == "bytes") {
      fmt::print("final validation loss {:.4f} nats/byte vs unigram entropy {:.4f} ({:.0f}% of it)\n", v, u,
                 100 * v / u);
    } else {  // per byte: the tokens of the validation split over its bytes
      const double per_byte = double(ds.num_tokens(data::Split::val)) / double(ds.num_bytes(data::Split::val));
      fmt::print(
          "final validation loss {:.4f} nats/token ({:.4f} bits/byte, estimated from {} batches; tensorzoo eval "
          "scores all of it) vs unigram entropy {:.4f} ({:.0f}% of it)\n",
          v, v * per_byte / std::numbers::ln2, o.eval_batches, u, 100 * v / u);
    }
  }
  std::string msg;
  bool plotted = plot_loss(o.out_dir, msg);
  fmt::print("{}{}\n", plotted ? "plot: " : "", msg);
  if (sample_tokens > 0) {
    fmt::print("\nsample (temperature 0.8):\n");
    print_sample(trainer->model(), trainer->tokenizer(), "The ",
                 {.max_new_tokens = sample_tokens, .temperature = 0.8, .seed = o.seed});
  }
  return 0;
}

struct TrainArgs {
  train::TrainOptions opt;
  models::GPTConfig gpt;
  std::string config_arg, resume_dir;
  int64_t sample_tokens = 300, stop_after = 0;
  bool force = false, replan = false;
  train::Distribution dist;
  bool no_overlap = false;
};

// How this run spreads over the ranks mpirun started (one process without mpirun).
train::Distribution distribution(const TrainArgs& a) {
  train::Distribution d = a.dist;
  d.comm = world();
  d.overlap = !a.no_overlap;
  return d;
}

// `train --resume DIR`: the flags that may change a run are applied (and recorded in its
// history.txt); every other flag is refused, naming it, since the model, the seed and the
// batch shape are fixed by the checkpoint.
int resume_train(const TrainArgs& a, const CLI::App& cmd) {
  const train::TrainOptions& o = a.opt;
  train::ResumeChanges c;
  const std::map<std::string, std::function<void()>> honoured = {
      {"--steps", [&] { c.steps = o.steps; }},
      {"--lr", [&] { c.lr = o.recipe.lr; }},
      {"--min-lr", [&] { c.min_lr = o.recipe.min_lr; }},
      {"--warmup", [&] { c.warmup = o.recipe.warmup; }},
      {"--schedule", [&] { c.schedule = o.recipe.schedule; }},
      {"--weight-decay", [&] { c.weight_decay = o.recipe.weight_decay; }},
      {"--grad-clip", [&] { c.grad_clip = o.recipe.grad_clip; }},
      {"--skip-nonfinite", [&] { c.skip_nonfinite = o.skip_nonfinite; }},
      {"--eval-every", [&] { c.eval_every = o.eval_every; }},
      {"--save-every", [&] { c.save_every = o.save_every; }},
      {"--log-every", [&] { c.log_every = o.log_every; }},
      {"--threads", [&] { c.threads = o.threads; }},
      {"--data", [&] { c.data = o.data; }},
      {"--replan", [&] { c.replan = true; }},
      {"--bucket-mb", [] {}},
      {"--no-overlap", [] {}},
      {"--verify-replicas", [] {}},
      {"--resume", [] {}},
      {"--stop-after", [] {}},
      {"--sample", [] {}}};
  std::string allowed;
  for (const auto& [flag, set] : honoured)
    if (flag != "--resume") {
      if (!allowed.empty()) allowed += ", ";
      allowed += flag;
    }
  for (const CLI::Option* opt : cmd.get_options()) {
    const std::string flag = opt->get_name();
    if (opt->count() == 0 || flag == "--help") continue;
    auto it = honoured.find(flag);
    if (it != honoured.end()) {
      it->second();
      continue;
    }
    if (flag == "--out")
      throw CLI::ValidationError(fmt::format(
          "--out: a resumed run stays in its directory ({}); to branch it, copy the directory and resume the copy",
          a.resume_dir));
    throw CLI::ValidationError(fmt::format(
        "{} cannot change a resumed run (the model, the seed and the batch shape are fixed by the checkpoint in {}); "
        "with --resume you may give {}",
        flag, a.resume_dir, allowed));
  }
  return run_train(o, a.resume_dir, c, a.sample_tokens, a.stop_after, distribution(a));
}

}  // namespace

void add_train_commands(CLI::App& app, std::vector<Command>& commands) {
  auto a = std::make_shared<TrainArgs>();
  auto* train_cmd = app.add_subcommand("train", "Train a language model on the built-in text or a UTF-8 file");
  auto& opt = a->opt;
  auto& gpt = a->gpt;  // the default model; --config layers zoo keys over it
  auto& config_arg = a->config_arg;
  auto& resume_dir = a->resume_dir;
  train_cmd->add_option("--config", config_arg,
                        "Model config over the default GPT: a JSON file or inline JSON, e.g. "
                        "'{\"norm\": \"rmsnorm\", \"pos\": \"sinusoidal_pe\"}'");
  // Integer flags take values in a range, so that no size can overflow what it feeds.
  using train::kMaxBatch, train::kMaxBuiltinBytes, train::kMaxSteps, train::kMaxThreads;
  train_cmd->add_option("--dim", gpt.dim, "Model width")->check(CLI::Range(1, 1 << 16))->capture_default_str();
  train_cmd->add_option("--depth", gpt.depth, "Number of blocks")->check(CLI::Range(1, 1024))->capture_default_str();
  train_cmd->add_option("--heads", gpt.heads, "Attention heads")->check(CLI::Range(1, 1024))->capture_default_str();
  train_cmd->add_option("--context", gpt.context, "Longest sequence")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  train_cmd->add_option("--data", opt.data, "UTF-8 text file (default: built-in grammar text)")
      ->check(CLI::ExistingFile);
  train_cmd
      ->add_option("--tokenizer", opt.tokenizer,
                   "bytes (one token per byte), or bpe (byte-level BPE learned from the training split, saved as "
                   "tokenizer.json in the run)")
      ->check(CLI::Validator([](std::string& v) { return data::tokenizer_kind_error(v); }, "bytes|bpe"))
      ->capture_default_str();
  train_cmd->add_option("--vocab", opt.vocab,
                        fmt::format("With --tokenizer bpe: the vocabulary, 256 bytes + merges, in [{}, {}] "
                                    "(default {})",
                                    data::kMinBpeVocab, data::kMaxBpeVocab, train::kDefaultBpeVocab));
  train_cmd->add_option("--steps", opt.steps, "Training steps (with --resume: the new total)")
      ->check(CLI::Range(int64_t(1), kMaxSteps))
      ->capture_default_str();
  train_cmd->add_option("--batch", opt.batch, "Sequences per step")
      ->check(CLI::Range(int64_t(1), kMaxBatch))
      ->capture_default_str();
  train_cmd->add_option("--seq-len", opt.seq_len, "Tokens per sequence")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  train_cmd->add_option("--lr", opt.recipe.lr, "Peak learning rate")->capture_default_str();
  train_cmd->add_option("--min-lr", opt.recipe.min_lr, "Final learning rate (cosine)")->capture_default_str();
  train_cmd->add_option("--warmup", opt.recipe.warmup, "Warm-up steps")
      ->check(CLI::Range(int64_t(0), kMaxSteps))
      ->capture_default_str();
  train_cmd->add_option("--schedule", opt.recipe.schedule, "cosine or constant")
      ->check(CLI::IsMember({"cosine", "constant"}))
      ->capture_default_str();
  train_cmd->add_option("--weight-decay", opt.recipe.weight_decay, "AdamW decay")->capture_default_str();
  train_cmd->add_option("--grad-clip", opt.recipe.grad_clip, "Max gradient norm (0 = off)")->capture_default_str();
  train_cmd->add_flag("--skip-nonfinite", opt.skip_nonfinite,
                      "Skip a batch whose loss or gradient is NaN or Inf instead of stopping (at most 9 in a row)");
  train_cmd->add_option("--eval-every", opt.eval_every, "Steps between validations")
      ->check(CLI::Range(int64_t(1), kMaxSteps))
      ->capture_default_str();
  train_cmd
      ->add_option("--save-every", opt.save_every,
                   "Steps between checkpoints (0 = with every evaluation, and every 10 minutes in a long run)")
      ->check(CLI::Range(int64_t(0), kMaxSteps))
      ->capture_default_str();
  train_cmd->add_option("--log-every", opt.log_every, "Steps between progress lines")
      ->check(CLI::Range(int64_t(1), kMaxSteps))
      ->capture_default_str();
  train_cmd->add_option("--threads", opt.threads, "Threads (0 = OMP_NUM_THREADS or all cores)")
      ->check(CLI::Range(0, kMaxThreads));
  train_cmd->add_option("--seed", opt.seed, "Seed for data, initialisation and dropout")
      ->check(CLI::Validator(
          [](std::string& v) {
            return v.find_first_not_of("0123456789") == std::string::npos && !v.empty()
                       ? std::string()
                       : fmt::format("must be an integer in [0, 2^64), got '{}'", v.substr(0, 40));
          },
          "UINT64"))
      ->capture_default_str();
  train_cmd->add_option("--out", opt.out_dir, "Run directory")->capture_default_str();
  train_cmd->add_flag("--replan", a->replan,
                      "With --resume and more --steps: plan the schedule over the new total (the rate jumps back up "
                      "the cosine) instead of continuing at the old plan's final rate");
  train_cmd->add_flag("--force", a->force,
                      "Replace the run already in --out (its checkpoint, log, history and plot are removed first)");
  train_cmd->add_option("--builtin-bytes", opt.builtin_bytes, "Size of the built-in text")
      ->check(CLI::Range(int64_t(10000), kMaxBuiltinBytes))
      ->capture_default_str();
  train_cmd->add_option("--resume", resume_dir, "Continue the run in this directory")->check(CLI::ExistingDirectory);
  train_cmd
      ->add_option("--stop-after", a->stop_after,
                   "Stop (with a checkpoint) after this many steps; the schedule still plans --steps")
      ->check(CLI::Range(int64_t(0), kMaxSteps));
  // Data parallelism (mpirun -np N tensorzoo train ...; train/distributed.h).
  train_cmd
      ->add_option("--shards", opt.shards,
                   "Cut each batch into this many shards, each a forward and backward of its own (0 = the number of "
                   "ranks); a resume needs a number of ranks that divides it")
      ->check(CLI::Range(int64_t(0), kMaxBatch));
  train_cmd->add_flag("--deterministic", opt.deterministic,
                      "Sum the shards' gradients in a fixed order: bit-identical results on any number of ranks "
                      "that divides --shards (default: MPI_Allreduce, equal to f32 rounding)");
  train_cmd->add_option("--bucket-mb", a->dist.bucket_mb, "Gradients per reduction call, in MB")
      ->check(CLI::Range(0.001, 1e6))
      ->capture_default_str();
  train_cmd->add_flag("--no-overlap", a->no_overlap, "Reduce the gradients after backward, not during it");
  train_cmd->add_flag("--verify-replicas", a->dist.verify_replicas,
                      "After every step, check that every rank holds the same parameters (a fingerprint each)");
  train_cmd->add_option("--sample", a->sample_tokens, "Tokens to sample at the end (0 = none)")
      ->check(CLI::Range(0, 1 << 30))
      ->capture_default_str();

  commands.push_back({train_cmd, [a, train_cmd]() {
                        auto& opt = a->opt;
                        auto& gpt = a->gpt;
                        auto& config_arg = a->config_arg;
                        auto& resume_dir = a->resume_dir;

                        if (!resume_dir.empty()) return resume_train(*a, *train_cmd);
                        if (a->replan)
                          throw CLI::ValidationError("--replan: only with --resume (a new run plans its own)");
                        nn::Config model = gpt.to_config();
                        if (!config_arg.empty()) {
                          model.merge(nn::Config::parse(read_config_arg(config_arg), "--config"));
                          // Flags given explicitly win over the config file.
                          for (auto [flag, key, value] : {std::tuple{"--dim", "dim", gpt.dim},
                                                          {"--depth", "depth", gpt.depth},
                                                          {"--heads", "heads", gpt.heads},
                                                          {"--context", "context", gpt.context}})
                            if (train_cmd->count(flag)) model.set(key, std::to_string(value));
                        }
                        opt.model = model;
                        on_rank0(*world(), [&] { claim_run_dir(opt.out_dir, a->force); });
                        return run_train(opt, "", {}, a->sample_tokens, a->stop_after, distribution(*a));
                      }});

  struct SampleArgs {
    std::string run_dir, model_file, prompt = "The ";
    models::SampleOptions so;
    bool verbose = false, no_plan = false;
  };
  auto s = std::make_shared<SampleArgs>();
  auto* sample_cmd = app.add_subcommand("sample", "Generate text from a trained run or a model file");
  auto& so = s->so;
  auto* run_opt = sample_cmd->add_option("--run", s->run_dir, "Run directory holding checkpoint.safetensors")
                      ->check(CLI::ExistingDirectory);
  auto* model_opt = sample_cmd->add_option(
      "--model", s->model_file, "A model file instead: an export (tensorzoo export) or a checkpoint.safetensors");
  run_opt->excludes(model_opt);
  sample_cmd->add_option("--prompt", s->prompt, "Text to continue")->capture_default_str();
  sample_cmd->add_option("--tokens", so.max_new_tokens, "Tokens to generate")->capture_default_str();
  sample_cmd->add_option("--temperature", so.temperature, "0 = greedy")->capture_default_str();
  sample_cmd->add_option("--top-k", so.top_k, "Keep the k most likely (0 = all)")->capture_default_str();
  sample_cmd->add_option("--top-p", so.top_p, "Nucleus mass to keep")->capture_default_str();
  sample_cmd->add_option("--seed", so.seed, "Sampling seed")->capture_default_str();
  sample_cmd->add_flag("--no-plan", s->no_plan,
                       "Decode through the model's step form, not the decode plan (the same tokens, slower)");
  sample_cmd->add_flag("--verbose", s->verbose, "Say on stderr how the model decodes (plan or step form, and why)");

  commands.push_back({sample_cmd, [s]() {
                        if (s->run_dir.empty() && s->model_file.empty())
                          throw CLI::ValidationError("sample: give --run DIR or --model FILE");
                        s->so.validate();
                        s->so.decode_plan = !s->no_plan;
                        auto say = [&](const models::Model& m) {
                          if (s->verbose) fmt::print(stderr, "decoding: {}\n", models::decode_path(m, s->so));
                        };
                        if (!s->model_file.empty()) {
                          TextModel m = TextModel::load(s->model_file);
                          say(m.lm());
                          print_sample(m.lm(), m.tokenizer(), s->prompt, s->so);
                        } else {
                          const train::RunCheckpoint run = train::read_run(s->run_dir);
                          std::unique_ptr<models::LM> model = train::load_model(run);
                          say(*model);
                          print_sample(*model, *run.tokenizer, s->prompt, s->so);
                        }
                        return 0;
                      }});
}

}  // namespace tz::cli
