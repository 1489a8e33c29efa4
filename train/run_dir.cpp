#include "train/run_dir.h"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/json.h"
#include "models/keys.h"
#include "models/zoo.h"

namespace tz::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string require_meta(const TensorFile& f, const std::string& key, const std::string& path) {
  auto it = f.metadata.find(key);
  TZ_CHECK(it != f.metadata.end(), "checkpoint ", path, ": metadata has no '", key,
           "' (not a training checkpoint written by tensorzoo?)");
  return it->second;
}

// A whole metadata field as a number, or an error naming the file, the field and the text.
template <class T>
T meta_number(const TensorFile& f, const std::string& key, const std::string& path) {
  const std::string s = require_meta(f, key, path);
  T value{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  TZ_CHECK(ec == std::errc() && end == s.data() + s.size() && value >= T(0), "checkpoint ", path, ": metadata '", key,
           "' is '", s.substr(0, 40), "', expected a non-negative number");
  return value;
}

// "a, b, c" of at most 10 names, then "and N more".
std::string some_names(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < 10; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > 10) s += cat_str(" and ", names.size() - 10, " more");
  return s;
}

}  // namespace

RunCheckpoint read_run(const std::string& dir) {
  const std::string path = (fs::path(dir) / kCheckpointFile).string();
  TZ_CHECK(fs::exists(path), "checkpoint: no ", kCheckpointFile, " in ", dir);
  return read_run(load_safetensors(path), path);
}

RunCheckpoint read_run(TensorFile file, const std::string& path, const std::string* tokenizer_text) {
  RunCheckpoint r;
  r.path = path;
  r.file = std::move(file);
  const TensorFile& f = r.file;
  TZ_CHECK(require_meta(f, "format", r.path) == kCheckpointFormat, "checkpoint ", r.path, ": format '",
           f.metadata.at("format").substr(0, 60), "', expected '", kCheckpointFormat, "'");
  const std::string version = require_meta(f, "format_version", r.path);
  TZ_CHECK(version == std::to_string(kCheckpointVersion), "checkpoint ", r.path, ": format version ",
           version.substr(0, 20), " is not supported (this build reads version ", kCheckpointVersion, ")");

  const std::string config = require_meta(f, "config", r.path);
  r.model = nn::Config::parse(config, cat_str("checkpoint ", r.path, ": config"));
  const std::string options_source = cat_str("checkpoint ", r.path, ": train_options");
  json options = parse_json(require_meta(f, "train_options", r.path), options_source);
  TZ_CHECK(options.is_object(), options_source, ": expected a JSON object");
  if (auto it = options.find("model"); it != options.end()) {  // written before the config was stored once
    TZ_CHECK(*it == parse_json(config, "config"), "checkpoint ", r.path,
             ": its model config ('config') and the model in its training options ('train_options') disagree; "
             "the file was edited or is corrupt. 'config' is ",
             config.substr(0, 300));
    options.erase(it);
  }
  r.options = TrainOptions::from_json(options.dump(), r.model, options_source);
  r.options.out_dir = fs::path(path).parent_path().string();
  std::vector<std::string> foreign;
  for (auto& [n, t] : f.tensors) {
    if (n.rfind("model.", 0) == 0)
      r.model_state[n.substr(6)] = t;
    else if (n.rfind("optim.", 0) == 0)
      r.optim_state[n.substr(6)] = t;
    else if (n.rfind("state.", 0) == 0)
      r.memory_state[n.substr(6)] = t;
    else if (n == "data.cursors")
      r.cursors = t;
    else
      foreign.push_back(n.substr(0, 80));
  }
  TZ_CHECK(foreign.empty(), "checkpoint ", r.path,
           ": unexpected tensors (not model.*, optim.*, state.*, data.cursors): ", some_names(foreign));
  r.tokenizer_data = models::read_tokenizer_data(f.metadata, r.path, tokenizer_text);
  const std::string tok_source = r.tokenizer_data.definition.empty()
                                     ? cat_str("checkpoint ", r.path)
                                     : cat_str((fs::path(r.path).parent_path() / models::kTokenizerFile).string(),
                                               " (the tokenizer of ", r.path, ")");
  r.tokenizer = data::make_tokenizer(r.tokenizer_data.kind, r.tokenizer_data.definition, tok_source);
  TZ_CHECK(r.model.get(models::kVocab) == r.tokenizer->vocab_size(), "checkpoint ", r.path, ": the model's vocab ",
           r.model.get(models::kVocab), " is not its tokenizer's vocabulary (", r.tokenizer->kind(), ", ",
           r.tokenizer->vocab_size(), ")");
  r.step = meta_number<int64_t>(f, "step", r.path);
  r.elapsed_s = meta_number<double>(f, "elapsed_s", r.path);
  return r;
}

std::unique_ptr<models::LM> load_model(const RunCheckpoint& run) {
  return models::load_lm(run.model, run.model_state, cat_str("checkpoint ", run.path));
}

std::unique_ptr<models::LM> load_model(const std::string& dir) { return load_model(read_run(dir)); }

std::vector<std::string> remove_stale_files(const std::string& dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return removed;
  const std::string prefix = std::string(kCheckpointFile) + ".tmp.";
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && entry.is_regular_file(ec) && fs::remove(entry.path(), ec))
      removed.push_back(name);
  }
  return removed;
}

void truncate_log(const std::string& dir, int64_t step) {
  const fs::path path = fs::path(dir) / kLogFile;
  std::ifstream in(path);
  TZ_CHECK(in.good(), "resume: cannot read ", path.string());
  std::string kept, line;
  std::getline(in, line);
  kept += line + "\n";  // the header
  while (std::getline(in, line)) {
    int64_t row_step = 0;
    auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), row_step);
    if (ec != std::errc() || row_step > step) break;  // rows after the checkpoint, or a torn last line
    kept += line + "\n";
  }
  in.close();
  std::ofstream out(path, std::ios::trunc);
  out << kept;
  TZ_CHECK(out.good(), "resume: cannot write ", path.string());
}

void write_run_file(const std::string& path, const std::string& text) {
  const std::string tmp = cat_str(path, ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    TZ_CHECK(out.good(), "train: cannot write ", tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  TZ_CHECK(!ec, "train: cannot rename ", tmp, " to ", path, ": ", ec.message());
}

void append_history(const std::string& dir, const std::string& line) {
  std::ofstream out(fs::path(dir) / kHistoryFile, std::ios::app);
  out << line << "\n";
  TZ_CHECK(out.good(), "train: cannot write ", (fs::path(dir) / kHistoryFile).string());
}

}  // namespace tz::train
