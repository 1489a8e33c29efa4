// `tensorzoo export --run DIR --out model.safetensors [--dtype f32|bf16]`: a run's weights and
// config alone, for applications (tz::TextModel, tensorzoo_c.h, `sample --model`): no
// optimizer moments, so about a third of the checkpoint in f32 and a sixth in bf16. A run's
// BPE tokenizer (tokenizer.json) goes into the file's metadata: the file is all an
// application needs.
#include <fmt/core.h>

#include <filesystem>

#include "cli/commands.h"
#include "models/weights.h"
#include "train/run_dir.h"

namespace tz::cli {

namespace {
namespace fs = std::filesystem;

int export_weights(const std::string& dir, const std::string& out, const std::string& dtype_name) {
  const models::WeightsDType dtype = models::parse_weights_dtype(dtype_name);
  const train::RunCheckpoint run = train::read_run(dir);
  std::error_code ec;
  TZ_CHECK(!fs::equivalent(out, run.path, ec), "export: --out ", out, " is the run's checkpoint itself");
  TZ_CHECK(!fs::is_directory(out, ec), "export: --out ", out, " is a directory; give a file name");
  std::unique_ptr<models::LM> model = train::load_model(run);
  models::save_weights(out, *model, dtype,
                       {{"source", fs::absolute(run.path).string()}, {"step", std::to_string(run.step)}},
                       run.tokenizer_data);  // a learned tokenizer goes inside the file
  models::load_lm(out);                      // what was written loads
  const double full = double(fs::file_size(run.path)), weights = double(fs::file_size(out));
  fmt::print("checkpoint: {} (step {}, {:.2f} MB: weights, optimizer moments, training state)\n", run.path, run.step,
             full / 1e6);
  fmt::print("weights:    {} ({:.2f} MB: {} weights and config, {:.1f}x smaller)\n", out, weights / 1e6, dtype_name,
             full / weights);
  return 0;
}
}  // namespace

void add_export_command(CLI::App& app, std::vector<Command>& commands) {
  struct Args {
    std::string run_dir, out, dtype = "f32";
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("export", "Write a run's weights and config alone: a model file for applications");
  cmd->add_option("--run", a->run_dir, "Run directory holding checkpoint.safetensors")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--out", a->out, "The model file to write (.safetensors)")->required();
  cmd->add_option("--dtype", a->dtype, "f32, or bf16 (half the size; weights rounded to 8 mantissa bits)")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  commands.push_back({cmd, [a] { return export_weights(a->run_dir, a->out, a->dtype); }});
}

}  // namespace tz::cli
