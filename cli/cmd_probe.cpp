// `tensorzoo probe`: reads a trained run's feed-forward layer as key-value memories
// (Geva et al. 2021, "Transformer Feed-Forward Layers Are Key-Value Memories",
// arXiv:2012.14913; the maths is in nn/ffn/kv_memory.h).
//
// It runs the model over the run's validation text, records every key's coefficient
// m_i = f(x · k_i + b1_i) at one layer, and prints for the strongest keys (or the keys given)
//   - the text prefixes that make the key fire most (the paper's trigger examples), and
//   - the tokens its value vector promotes: the top entries of v_i E^T (E = output embedding).
#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "autograd/ops.h"
#include "cli/commands.h"
#include "core/creation.h"
#include "data/grammar.h"
#include "data/text_dataset.h"
#include "nn/ffn/kv_memory.h"
#include "train/run_dir.h"

namespace tz::cli {

namespace {

struct ProbeArgs {
  std::string run_dir;
  int64_t layer = -1;  // -1 = the last block
  std::string keys = "5";
  int64_t top = 5;
  int64_t max_tokens = 16384;
  int64_t window = 128;
};

// A token as readable text: its bytes, printable ASCII as is, the rest escaped.
std::string show_token(const data::Tokenizer& tok, int64_t id) {
  std::string out;
  for (char ch : tok.decode({id})) {
    const int b = static_cast<unsigned char>(ch);
    if (b == '\n')
      out += "\\n";
    else if (b == '\t')
      out += "\\t";
    else if (b >= 32 && b < 127)
      out += ch;
    else
      out += fmt::format("\\x{:02x}", b);
  }
  return out;
}

// The validation text of a run, rebuilt the way the trainer built it.
data::TextDataset run_dataset(const train::RunCheckpoint& run) {
  const train::TrainOptions& o = run.options;
  data::TextDatasetOptions dopt{.val_fraction = 0.1};  // as in train::Trainer
  return o.data.empty() ? data::TextDataset::from_string(data::grammar_text(o.builtin_bytes, o.seed), dopt,
                                                         "built-in grammar text", run.tokenizer)
                        : data::TextDataset::from_file(o.data, dopt, run.tokenizer);
}

// "5" = the 5 strongest keys; "3,17,42" = these keys.
std::vector<int64_t> parse_keys(const std::string& s, const Tensor& coeffs) {
  const int64_t F = coeffs.size(1);
  if (s.find(',') == std::string::npos) {
    int64_t k = 0;
    try {
      k = std::stoll(s);
    } catch (const std::exception&) {
      throw CLI::ValidationError(fmt::format("--keys: expected a count or a comma list of key indices, got '{}'", s));
    }
    if (k <= 0) throw CLI::ValidationError(fmt::format("--keys: the count must be positive, got {}", k));
    return nn::strongest_keys(coeffs, std::min(k, F));
  }
  std::vector<int64_t> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    int64_t k = -1;
    try {
      k = std::stoll(item);
    } catch (const std::exception&) {
    }
    if (k < 0 || k >= F) throw CLI::ValidationError(fmt::format("--keys: '{}' is not a key index in [0, {})", item, F));
    out.push_back(k);
  }
  return out;
}

int run_probe(const ProbeArgs& a) {
  if (a.top <= 0) throw CLI::ValidationError(fmt::format("--top must be positive, got {}", a.top));
  if (a.max_tokens <= 0) throw CLI::ValidationError(fmt::format("--max-tokens must be positive, got {}", a.max_tokens));
  if (a.window <= 0) throw CLI::ValidationError(fmt::format("--window must be positive, got {}", a.window));
  const train::RunCheckpoint run = train::read_run(a.run_dir);
  auto model = train::load_model(run);
  const int64_t depth = int64_t(model->layers->size());
  const int64_t layer = a.layer < 0 ? depth - 1 : a.layer;
  if (layer >= depth)
    throw CLI::ValidationError(
        fmt::format("--layer {} does not exist: the model has {} blocks (0..{})", a.layer, depth, depth - 1));
  auto block = model->layers->at<models::Block>(size_t(layer));
  auto mlp = std::dynamic_pointer_cast<nn::MLP>(block->ffn);
  TZ_CHECK(mlp, "probe: layer ", layer, "'s FFN is ", block->ffn->describe(),
           "; the key-value probe reads ffn_mlp (keys = fc rows, values = proj columns)");

  const int64_t T = std::min(a.window, model->context());
  if (a.max_tokens < T)
    throw CLI::ValidationError(
        fmt::format("--max-tokens {} is less than one window of {} tokens (--window {}{}): "
                    "give at least {}, or a smaller --window",
                    a.max_tokens, T, a.window, T < a.window ? ", cut to the model's context" : "", T));
  data::TextDataset ds = run_dataset(run);
  const data::Tokenizer& tok = *run.tokenizer;
  const auto& tokens = ds.tokens();
  const int64_t begin = ds.val_begin();
  const int64_t n = std::min(a.max_tokens, int64_t(tokens.size()) - begin) / T;  // whole windows
  TZ_CHECK(n > 0, "probe: the validation text (", int64_t(tokens.size()) - begin,
           " tokens) is shorter than one window of ", T);

  // Run the model over consecutive windows of the validation text, recording the keys.
  // Recorded position w*T + t is window w, offset t; its prefix is the window up to t.
  nn::KeyRecorder recorder(*mlp);
  {
    NoGradGuard no_grad;
    const int64_t B = 8;
    for (int64_t w0 = 0; w0 < n; w0 += B) {
      int64_t b = std::min(B, n - w0);
      std::vector<int64_t> ids(tokens.begin() + begin + w0 * T, tokens.begin() + begin + (w0 + b) * T);
      model->forward(from_vector(ids, {b, T}));
    }
  }
  Tensor coeffs = recorder.coefficients();  // [n T, F]
  std::vector<int64_t> keys = parse_keys(a.keys, coeffs);
  auto hits = nn::top_activations(coeffs, keys, a.top);
  Tensor E = model->head ? model->head->weight : model->tok_emb->weight;  // output embedding [V, C]
  Tensor proj = nn::value_vocab_projection(*mlp, E);                      // [F, V]

  fmt::print("layer {} of {}: {} keys ({}), {} validation positions in windows of {}\n", layer, depth, coeffs.size(1),
             mlp->options.activation, coeffs.size(0), T);
  for (size_t j = 0; j < keys.size(); ++j) {
    fmt::print("\nkey {}\n  top-activating prefixes (coefficient: text, the trigger token in [ ]):\n", keys[j]);
    for (const nn::KeyHit& h : hits[j]) {
      int64_t w = h.position / T, t = h.position % T;
      int64_t start = std::max<int64_t>(0, t - 40);
      std::string text = start > 0 ? "..." : "";
      for (int64_t i = start; i < t; ++i) text += show_token(tok, tokens[size_t(begin + w * T + i)]);
      text += fmt::format("[{}]", show_token(tok, tokens[size_t(begin + w * T + t)]));
      fmt::print("    {:8.4f}: {}\n", h.value, text);
    }
    Tensor row = proj.select(0, keys[j]);
    std::string top;
    for (int64_t id : nn::top_ids(row, a.top))
      top += fmt::format("{}'{}' {:.3f}", top.empty() ? "" : ", ", show_token(tok, id), row.at({id}));
    fmt::print("  top tokens of v_i E^T: {}\n", top);
  }
  return 0;
}

}  // namespace

void add_probe_command(CLI::App& app, std::vector<Command>& commands) {
  auto a = std::make_shared<ProbeArgs>();
  auto* cmd = app.add_subcommand(
      "probe", "Read a trained run's FFN as key-value memories: top-activating prefixes and value tokens per key");
  cmd->add_option("--run", a->run_dir, "Run directory holding checkpoint.safetensors")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--layer", a->layer, "Block to probe (default: the last)");
  cmd->add_option("--keys", a->keys, "How many of the strongest keys, or a comma list of key indices")
      ->capture_default_str();
  cmd->add_option("--top", a->top, "Prefixes and tokens to show per key")->capture_default_str();
  cmd->add_option("--max-tokens", a->max_tokens, "Validation tokens to read at most")->capture_default_str();
  cmd->add_option("--window", a->window, "Tokens per forward window (at most the model's context)")
      ->capture_default_str();
  commands.push_back({cmd, [a]() { return run_probe(*a); }});
}

}  // namespace tz::cli
