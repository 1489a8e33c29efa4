// `tensorzoo quantize --run DIR --to int8|bf16 [--out FILE]`: a run's model with its linear
// layers' weights in fewer bytes for inference (models/quantize.h: q8_0 int8 with a scale
// per block of 32, or bf16), for `sample --model`, `eval --model`, tz::TextModel and the C
// API. Prints the sizes and, on windows of the run's validation text (--windows; 0 = all of
// it), the validation loss of the f32 and the quantized model and how far their logits are apart.
#include <fmt/core.h>

#include <cmath>
#include <filesystem>

#include "autograd/ops.h"
#include "cli/commands.h"
#include "core/creation.h"
#include "data/grammar.h"
#include "data/text_dataset.h"
#include "models/quantize.h"
#include "models/weights.h"
#include "train/run_dir.h"

namespace tz::cli {

namespace {
namespace fs = std::filesystem;

// The run's validation split (its held-out text), as tokens.
std::vector<int64_t> validation_tokens(const train::RunCheckpoint& run) {
  const train::TrainOptions& t = run.options;
  data::TextDataset d = t.data.empty() ? data::TextDataset::from_string(data::grammar_text(t.builtin_bytes, t.seed),
                                                                        {.val_fraction = 0.1}, "built-in grammar text")
                                       : data::TextDataset::from_file(t.data, {.val_fraction = 0.1});
  return std::vector<int64_t>(d.tokens().begin() + d.val_begin(), d.tokens().end());
}

// The loss of `model` and the squared logit differences from `ref` over windows of T tokens,
// 8 windows per forward. Returns {ref loss, model loss, relative RMS of the logits}.
struct Compared {
  double ref_loss = 0, loss = 0, rel_rms = 0;
  int64_t windows = 0;
};
Compared compare(models::LM& ref, models::LM& model, const std::vector<int64_t>& tokens, int64_t T, int64_t windows) {
  NoGradGuard no_grad;
  Compared c;
  c.windows = windows;
  double num = 0, den = 0;
  for (int64_t w0 = 0; w0 < windows; w0 += 8) {
    const int64_t B = std::min<int64_t>(8, windows - w0);
    std::vector<int64_t> in(size_t(B * T)), out(size_t(B * T));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        in[size_t(b * T + t)] = tokens[size_t((w0 + b) * T + t)];
        out[size_t(b * T + t)] = tokens[size_t((w0 + b) * T + t + 1)];
      }
    const Tensor ids = from_vector(in, {B, T}), targets = from_vector(out, {B * T});
    const Tensor a = ref.forward({ids}), b = model.forward({ids});
    const std::vector<float> av = a.to_vector<float>(), bv = b.to_vector<float>();
    for (size_t i = 0; i < av.size(); ++i) {
      num += (double(bv[i]) - av[i]) * (double(bv[i]) - av[i]);
      den += double(av[i]) * av[i];
    }
    c.ref_loss += cross_entropy(a.reshape({B * T, -1}), targets).item() * double(B);
    c.loss += cross_entropy(b.reshape({B * T, -1}), targets).item() * double(B);
  }
  c.ref_loss /= double(windows);
  c.loss /= double(windows);
  c.rel_rms = std::sqrt(num / std::max(den, 1e-300));
  return c;
}

// The loss of decoding 4 windows token by token (4 rows per step: the GEMV kernels, which for
// q8_0 quantize x per block too, where a whole window goes through the GEMM on f32 tiles).
double stepwise_loss(models::LM& model, const std::vector<int64_t>& tokens, int64_t T) {
  NoGradGuard no_grad;
  constexpr int64_t B = 4;
  models::Model::State state = model.make_state(B, T);
  double total = 0;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<int64_t> in(B), out(B);
    for (int64_t b = 0; b < B; ++b) {
      in[size_t(b)] = tokens[size_t(b * T + t)];
      out[size_t(b)] = tokens[size_t(b * T + t + 1)];
    }
    const Tensor logits = model.forward({from_vector(in, {B, 1})}, &state);
    total += cross_entropy(logits.reshape({B, -1}), from_vector(out, {B})).item();
  }
  return total / double(T);
}

int quantize(const std::string& dir, const std::string& to, std::string out, int64_t windows) {
  const QuantScheme scheme = parse_quant_scheme(to);
  const train::RunCheckpoint run = train::read_run(dir);
  if (out.empty()) out = (fs::path(dir) / fmt::format("model-{}.safetensors", to)).string();
  std::error_code ec;
  TZ_CHECK(!fs::equivalent(out, run.path, ec), "quantize: --out ", out, " is the run's checkpoint itself");
  TZ_CHECK(!fs::is_directory(out, ec), "quantize: --out ", out, " is a directory; give a file name");
  std::unique_ptr<models::LM> model = train::load_model(run);
  const models::QuantizeSummary sum = models::save_quantized(
      out, *model, scheme, {{"source", fs::absolute(run.path).string()}, {"step", std::to_string(run.step)}});
  std::unique_ptr<models::LM> quant = models::load_lm(out);  // what was written loads

  const double f32_mb = double(model->num_parameters()) * 4 / 1e6, file_mb = double(fs::file_size(out)) / 1e6;
  fmt::print("checkpoint: {} (step {}, {} parameters, {:.2f} MB in f32)\n", run.path, run.step, model->num_parameters(),
             f32_mb);
  fmt::print(
      "quantized:  {} ({:.2f} MB, {:.2f}x smaller than f32): {} linear weights in {} ({:.2f} MB){}, the rest "
      "in f32 ({:.2f} MB: embeddings, norms, biases)\n",
      out, file_mb, f32_mb / file_mb, sum.quantized, quant_scheme_name(scheme), double(sum.quantized_bytes) / 1e6,
      sum.kept_f32 ? fmt::format(", {} kept in f32 (K not a multiple of 32)", sum.kept_f32) : "",
      double(sum.f32_bytes) / 1e6);

  // The quantized model against the f32 one on windows of the validation text.
  const int64_t T = std::min(run.options.seq_len, model->context());
  const std::vector<int64_t> val = validation_tokens(run);
  const int64_t all = (int64_t(val.size()) - 1) / T;
  TZ_CHECK(all >= 1, "quantize: the validation split holds ", val.size(), " tokens, fewer than a window of ", T + 1);
  const Compared c = compare(*model, *quant, val, T, windows > 0 ? std::min(windows, all) : all);
  fmt::print(
      "validation loss on {} of {} windows of {} tokens: f32 {:.6f}, {} {:.6f} ({:+.4f} %); logits differ from "
      "f32 by {:.3g} relative RMS\n",
      c.windows, all, T, c.ref_loss, quant_scheme_name(scheme), c.loss, 100 * (c.loss - c.ref_loss) / c.ref_loss,
      c.rel_rms);
  if (all >= 4 && model->has_step()) {
    const double a = stepwise_loss(*model, val, T), b = stepwise_loss(*quant, val, T);
    fmt::print("decoding 4 windows token by token (the GEMV kernels): loss f32 {:.6f}, {} {:.6f} ({:+.4f} %)\n", a,
               quant_scheme_name(scheme), b, 100 * (b - a) / a);
  }
  if (c.windows < all)
    fmt::print("the whole validation text: --windows 0, or tensorzoo eval --run {} --model {}\n", dir, out);
  return 0;
}
}  // namespace

void add_quantize_command(CLI::App& app, std::vector<Command>& commands) {
  struct Args {
    std::string run_dir, to, out;
    int64_t windows = 8;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "quantize", "Write a run's model with its linear weights in int8 (q8_0) or bf16: a smaller, faster model file");
  cmd->add_option("--run", a->run_dir, "Run directory holding checkpoint.safetensors")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--to", a->to,
                  "int8 (q8_0: int8 weights, an f32 scale per block of 32; 1.125 bytes per weight) or bf16 (2 bytes)")
      ->required()
      ->check(CLI::IsMember({"int8", "q8_0", "bf16"}));
  cmd->add_option("--out", a->out, "The model file to write (default: DIR/model-<to>.safetensors)");
  cmd->add_option("--windows", a->windows,
                  "Validation windows on which to compare the losses and logits with f32's (0 = the whole split)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 30))
      ->capture_default_str();
  commands.push_back({cmd, [a] { return quantize(a->run_dir, a->to, a->out, a->windows); }});
}

}  // namespace tz::cli
