// `tensorzoo eval --run DIR [--model FILE] [--data FILE]`: a trained run's loss on a text, every
// token of it (--model: another file's weights for the run's model, e.g. a quantized one): the
// mean next-token loss (nats per token), its perplexity and bits per byte, with progress.
// The text is tokenized with the run's tokenizer. Bits per byte divide the total loss by the
// bytes of the scored tokens, so runs with different tokenizers compare on one scale.
// Without --data, the text is the run's own validation split (the held-out end of its
// training text). The text is read in consecutive windows of --seq-len tokens, each scored on
// its own (the first token of a window is context only), batched --batch at a time.
#include <fmt/core.h>

#include <cmath>
#include <numbers>

#include "autograd/ops.h"
#include "cli/commands.h"
#include "core/creation.h"
#include "data/grammar.h"
#include "data/text_dataset.h"
#include "models/weights.h"
#include "train/run_dir.h"

namespace tz::cli {

namespace {
struct EvalArgs {
  std::string run_dir, data, model_file;
  int64_t seq_len = 0, batch = 8;
};

int evaluate(const EvalArgs& a) {
  train::RunCheckpoint run = train::read_run(a.run_dir);
  std::unique_ptr<models::LM> model = a.model_file.empty() ? train::load_model(run) : models::load_lm(a.model_file);
  const int64_t T = a.seq_len > 0 ? a.seq_len : std::min(run.options.seq_len, model->context());
  if (T > model->context())
    throw CLI::ValidationError(fmt::format("--seq-len {} is longer than the model's context {}", T, model->context()));
  std::vector<int64_t> tokens;
  std::string source;
  if (!a.data.empty()) {
    data::TextDataset d = data::TextDataset::from_file(a.data, {.val_fraction = 0, .seq_len = 1}, run.tokenizer);
    tokens = d.tokens();
    source = a.data;
  } else {
    const train::TrainOptions& t = run.options;
    data::TextDataset d =
        t.data.empty() ? data::TextDataset::from_string(data::grammar_text(t.builtin_bytes, t.seed),
                                                        {.val_fraction = 0.1}, "built-in grammar text", run.tokenizer)
                       : data::TextDataset::from_file(t.data, {.val_fraction = 0.1}, run.tokenizer);
    tokens.assign(d.tokens().begin() + d.val_begin(), d.tokens().end());
    source = d.source() + ", the run's validation split";
  }
  const int64_t windows = (int64_t(tokens.size()) - 1) / T;
  TZ_CHECK(windows >= 1, "eval: ", source, " holds ", tokens.size(), " tokens; a window of --seq-len ", T, " needs ",
           T + 1);
  fmt::print("eval: {} on {} ({} windows of {} {} tokens)\n", a.model_file.empty() ? a.run_dir : a.model_file, source,
             windows, T, run.tokenizer->kind());
  // The bytes each token stands for: a target's share of the text.
  std::vector<int64_t> token_bytes(size_t(run.tokenizer->vocab_size()));
  for (int64_t id = 0; id < run.tokenizer->vocab_size(); ++id)
    token_bytes[size_t(id)] = int64_t(run.tokenizer->decode({id}).size());
  int64_t bytes = 0;
  NoGradGuard no_grad;
  model->eval();
  double total = 0;
  int64_t scored = 0, next_report = 1;
  for (int64_t w0 = 0; w0 < windows; w0 += a.batch) {
    const int64_t B = std::min(a.batch, windows - w0);
    std::vector<int64_t> in(size_t(B * T)), out(size_t(B * T));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        in[size_t(b * T + t)] = tokens[size_t((w0 + b) * T + t)];
        out[size_t(b * T + t)] = tokens[size_t((w0 + b) * T + t + 1)];
        bytes += token_bytes[size_t(out[size_t(b * T + t)])];
      }
    Tensor logits = model->forward({from_vector(in, {B, T})});
    total += cross_entropy(logits.reshape({B * T, -1}), from_vector(out, {B * T})).item() * double(B * T);
    scored += B * T;
    const int64_t done = w0 + B;
    if (done * 10 >= next_report * windows) {  // about every 10 %
      fmt::print("  {:3d}%  {} tokens, loss so far {:.4f}\n", int(100 * done / windows), scored,
                 total / double(scored));
      std::fflush(stdout);
      while (next_report * windows <= done * 10) ++next_report;
    }
  }
  const double loss = total / double(scored);
  fmt::print("tokens {} | bytes {} | loss {:.4f} nats/token | perplexity {:.3f} | {:.4f} bits/byte\n", scored, bytes,
             loss, std::exp(loss), total / std::numbers::ln2 / double(bytes));
  return 0;
}
}  // namespace

void add_eval_command(CLI::App& app, std::vector<Command>& commands) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "A trained run's loss per token, perplexity and bits per byte on a text");
  cmd->add_option("--run", a->run_dir, "Run directory holding checkpoint.safetensors")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--model", a->model_file,
                  "Score this model file instead of the run's weights (an export, or a quantized file from "
                  "`tensorzoo quantize`), on the run's text")
      ->check(CLI::ExistingFile);
  cmd->add_option("--data", a->data, "UTF-8 text file (default: the run's own validation split)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--seq-len", a->seq_len, "Window length (default: the run's training length)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  cmd->add_option("--batch", a->batch, "Windows per forward")->check(CLI::Range(1, 4096))->capture_default_str();
  commands.push_back({cmd, [a] { return evaluate(*a); }});
}

}  // namespace tz::cli
