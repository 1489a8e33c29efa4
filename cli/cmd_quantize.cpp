// `tensorzoo quantize --run DIR --to int8|bf16 [--out FILE]`: a run's model with its linear
// layers' weights in fewer bytes for inference (models/quantize.h: q8_0 int8 with a scale
// per block of 32, or bf16), for `sample --model`, `eval --model`, tz::TextModel and the C
// API. Prints the sizes and, on a few windows of the run's validation text, how far the
// quantized logits and loss are from the f32 model's (`eval --model` scores the whole text).
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

// Up to 4 windows of the run's validation split, [B, T + 1] tokens.
Tensor validation_windows(const train::RunCheckpoint& run, int64_t T) {
  const train::TrainOptions& t = run.options;
  data::TextDataset d = t.data.empty() ? data::TextDataset::from_string(data::grammar_text(t.builtin_bytes, t.seed),
                                                                        {.val_fraction = 0.1}, "built-in grammar text")
                                       : data::TextDataset::from_file(t.data, {.val_fraction = 0.1});
  std::vector<int64_t> val(d.tokens().begin() + d.val_begin(), d.tokens().end());
  const int64_t B = std::min<int64_t>(4, (int64_t(val.size()) - 1) / T);
  TZ_CHECK(B >= 1, "quantize: the validation split holds ", val.size(), " tokens, fewer than a window of ", T + 1);
  val.resize(size_t(B * (T + 1)));
  return from_vector(val, {B, T + 1});
}

int quantize(const std::string& dir, const std::string& to, std::string out) {
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

  // The quantized model against the f32 one on a few validation windows.
  const int64_t T = std::min(run.options.seq_len, model->context());
  const Tensor w = validation_windows(run, T);
  const int64_t B = w.size(0);
  const Tensor ids = w.narrow(1, 0, T).contiguous(), targets = w.narrow(1, 1, T).contiguous().reshape({B * T});
  NoGradGuard no_grad;
  const Tensor a = model->forward({ids}), b = quant->forward({ids});
  const std::vector<float> av = a.to_vector<float>(), bv = b.to_vector<float>();
  double num = 0, den = 0;
  for (size_t i = 0; i < av.size(); ++i) {
    num += (double(bv[i]) - av[i]) * (double(bv[i]) - av[i]);
    den += double(av[i]) * av[i];
  }
  const double la = cross_entropy(a.reshape({B * T, -1}), targets).item();
  const double lb = cross_entropy(b.reshape({B * T, -1}), targets).item();
  fmt::print(
      "on {} validation windows of {} tokens: logits differ from f32 by {:.3g} relative RMS; loss f32 {:.4f}, "
      "{} {:.4f} ({:+.2f} %)\n",
      B, T, std::sqrt(num / std::max(den, 1e-300)), la, quant_scheme_name(scheme), lb, 100 * (lb - la) / la);
  fmt::print("whole validation text: tensorzoo eval --run {} --model {}\n", dir, out);
  return 0;
}
}  // namespace

void add_quantize_command(CLI::App& app, std::vector<Command>& commands) {
  struct Args {
    std::string run_dir, to, out;
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
  commands.push_back({cmd, [a] { return quantize(a->run_dir, a->to, a->out); }});
}

}  // namespace tz::cli
