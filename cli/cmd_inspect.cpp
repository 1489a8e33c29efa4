// `tensorzoo inspect FILE`: the tensors (name, dtype, shape, size) and metadata of any
// safetensors file, checkpoints of this tool or Python's alike.
// `tensorzoo runs [DIR]`: every run directory under DIR (default runs/): its step, model,
// tokenizer and last validation loss (per token, as the run logged it).
#include <fmt/core.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "core/safetensors.h"
#include "models/keys.h"
#include "train/run_dir.h"

namespace tz::cli {

namespace {
namespace fs = std::filesystem;

std::string shape_text(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// A metadata value on one line: at most 120 characters, newlines shown as \n.
std::string one_line(const std::string& v) {
  std::string out;
  for (char c : v.substr(0, 120)) out += c == '\n' ? std::string("\\n") : std::string(1, c);
  return v.size() > 120 ? out + fmt::format(" ... ({} characters)", v.size()) : out;
}

int inspect(const std::string& path, const std::string& filter) {
  TensorFile f = load_safetensors(path);
  fmt::print("{}: {} tensors\n", path, f.tensors.size());
  if (!f.metadata.empty()) {
    fmt::print("\nmetadata:\n");
    for (const auto& [k, v] : f.metadata) fmt::print("  {}: {}\n", k, one_line(v));
  }
  fmt::print("\n| tensor | dtype | shape | elements | MB |\n|---|---|---|---:|---:|\n");
  int64_t elements = 0, bytes = 0, shown = 0;
  for (const auto& [name, t] : f.tensors) {
    if (!filter.empty() && name.find(filter) == std::string::npos) continue;
    auto stored = f.file_dtypes.find(name);  // BF16 in the file, read as f32
    const bool bf16 = stored != f.file_dtypes.end() && stored->second == "BF16";
    const int64_t b = t.numel() * (bf16 ? 2 : int64_t(dtype_size(t.dtype())));
    fmt::print("| {} | {} | {} | {} | {:.3f} |\n", name, bf16 ? "bf16" : dtype_name(t.dtype()), shape_text(t.shape()),
               t.numel(), double(b) / 1e6);
    elements += t.numel();
    bytes += b;
    ++shown;
  }
  fmt::print("\n{} tensors{}: {} elements, {:.2f} MB\n", shown, filter.empty() ? "" : " matching '" + filter + "'",
             elements, double(bytes) / 1e6);
  return 0;
}

// The last validation loss logged in a run's log.csv ("-" when none).
std::string last_val_loss(const fs::path& dir) {
  std::ifstream in(dir / train::kLogFile);
  std::string line, last = "-";
  std::getline(in, line);  // header: step,loss,val_loss,...
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string step, loss, val;
    std::getline(ss, step, ',');
    std::getline(ss, loss, ',');
    std::getline(ss, val, ',');
    if (!val.empty()) last = val;
  }
  return last;
}

int list_runs(const std::string& root) {
  std::error_code ec;
  TZ_CHECK(fs::is_directory(root, ec), "runs: no directory ", root);
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root, ec))
    if (e.is_directory() && fs::exists(e.path() / train::kCheckpointFile)) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  if (dirs.empty()) {
    fmt::print("no runs under {} (a run is a directory with {})\n", root, train::kCheckpointFile);
    return 0;
  }
  fmt::print(
      "| run | step | model | tokenizer | params | val loss | checkpoint MB |\n|---|---:|---|---|---:|---:|---:|\n");
  for (const fs::path& d : dirs) {
    try {
      train::RunCheckpoint run = train::read_run(d.string());
      const nn::Config& c = run.model;
      std::string mixers;
      for (const std::string& m : c.get(models::kMixer)) mixers += (mixers.empty() ? "" : "+") + m;
      int64_t params = 0;
      for (const auto& [name, t] : run.model_state) params += t.numel();
      fmt::print("| {} | {}/{} | dim {}, depth {}, heads {}, {} | {} {} | {} | {} | {:.1f} |\n", d.filename().string(),
                 run.step, run.options.steps, c.get(models::kDim), c.get(models::kDepth), c.get(models::kHeads), mixers,
                 run.tokenizer->kind(), run.tokenizer->vocab_size(), params, last_val_loss(d),
                 double(fs::file_size(d / train::kCheckpointFile, ec)) / 1e6);
    } catch (const std::exception& e) {
      fmt::print("| {} | unreadable: {} | | | | | |\n", d.filename().string(), one_line(e.what()));
    }
  }
  return 0;
}
}  // namespace

void add_inspect_commands(CLI::App& app, std::vector<Command>& commands) {
  struct Args {
    std::string path, filter, root = "runs";
  };
  auto a = std::make_shared<Args>();
  auto* inspect_cmd = app.add_subcommand("inspect", "Show the tensors and metadata of a safetensors file");
  inspect_cmd->add_option("file", a->path, "A .safetensors file (a run's checkpoint.safetensors, or any other)")
      ->required()
      ->check(CLI::ExistingFile);
  inspect_cmd->add_option("--filter", a->filter, "Only tensors whose name contains this");
  commands.push_back({inspect_cmd, [a] { return inspect(a->path, a->filter); }});

  auto* runs_cmd = app.add_subcommand("runs", "List the runs under a directory: step, model, validation loss");
  runs_cmd->add_option("dir", a->root, "Directory holding run directories")->capture_default_str();
  commands.push_back({runs_cmd, [a] { return list_runs(a->root); }});
}

}  // namespace tz::cli
