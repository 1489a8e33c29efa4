// The C API (tensorzoo_c.h) from C++: statuses and messages for every failure, no exception
// across the boundary, and the same text as the C++ API for a seed.
#include <unistd.h>

#include <filesystem>
#include <string>

#include "embed/text_model.h"
#include "models/weights.h"
#include "tensorzoo_c.h"
#include "tests/test_util.h"
#include "train/run_dir.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace tz;

namespace {
// A tiny trained model, exported (once per process).
const std::string& model_file() {
  static const std::string path = [] {
    const fs::path dir = fs::temp_directory_path() / ("tz_test_c_api_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    train::TrainOptions o;
    o.model = nn::Config::parse(R"({"dim": 16, "depth": 1, "heads": 2, "context": 16})");
    o.builtin_bytes = 20000;
    o.steps = 2;
    o.batch = 2;
    o.seq_len = 16;
    o.eval_batches = 1;
    o.threads = 1;
    o.out_dir = (dir / "run").string();
    train::Trainer t(o);
    t.run();
    const std::string out = (dir / "model.safetensors").string();
    models::save_weights(out, t.model(), models::WeightsDType::f32);
    return out;
  }();
  return path;
}

int collect(const char* text, size_t length, void* user) {
  static_cast<std::string*>(user)->append(text, length);
  return 0;
}
}  // namespace

TEST_CASE("c api: load, tokenize, generate and free give the C++ API's text") {
  tz_model* model = nullptr;
  REQUIRE(tz_model_load(model_file().c_str(), &model) == TZ_OK);
  CHECK(tz_model_vocab_size(model) == 256);
  CHECK(tz_model_context(model) == 16);
  int64_t ids[8];
  size_t count = 0;
  REQUIRE(tz_tokenize(model, "The \xc3\xa9", 6, ids, 8, &count) == TZ_OK);
  CHECK(count == 6);
  CHECK(ids[4] == 0xc3);
  tz_sample_options o = tz_sample_options_default();
  CHECK(o.max_tokens == 200);
  CHECK(o.top_p == 1.0);
  o.max_tokens = 40;
  o.temperature = 0.9;
  o.seed = 4;
  std::string text;
  REQUIRE(tz_generate(model, "The ", 4, &o, collect, &text) == TZ_OK);
  TextModel cpp = TextModel::load(model_file());
  CHECK(text == cpp.generate("The ", {.max_new_tokens = 40, .temperature = 0.9, .seed = 4}));
  // A callback that says stop is obeyed at once.
  int calls = 0;
  auto stop_at_two = [](const char*, size_t, void* user) { return ++*static_cast<int*>(user) >= 2 ? 1 : 0; };
  REQUIRE(tz_generate(model, "The ", 4, &o, stop_at_two, &calls) == TZ_OK);
  CHECK(calls == 2);
  REQUIRE(tz_generate(model, "The ", 4, nullptr, nullptr, nullptr) == TZ_OK);  // defaults, no callback
  tz_model_free(model);
  tz_model_free(nullptr);
}

TEST_CASE("c api: every failure is a status and a message, never an exception") {
  tz_model* model = reinterpret_cast<tz_model*>(1);
  CHECK(tz_model_load("/nonexistent/model.safetensors", &model) == TZ_ERROR_FILE);
  CHECK(model == nullptr);
  CHECK(std::string(tz_last_error()).find("no file '/nonexistent/model.safetensors'") != std::string::npos);
  CHECK(std::string(tz_status_name(TZ_ERROR_FILE)) == "TZ_ERROR_FILE");
  const fs::path text = fs::temp_directory_path() / ("tz_test_c_api_text_" + std::to_string(::getpid()));
  {
    std::FILE* f = std::fopen(text.c_str(), "w");
    std::fputs("plain text", f);
    std::fclose(f);
  }
  CHECK(tz_model_load(text.c_str(), &model) == TZ_ERROR_FILE);
  CHECK(std::string(tz_last_error()).find("is not a model file") != std::string::npos);
  fs::remove(text);
  CHECK(tz_model_load(nullptr, &model) == TZ_ERROR_ARGUMENT);
  CHECK(tz_model_load(model_file().c_str(), nullptr) == TZ_ERROR_ARGUMENT);

  REQUIRE(tz_model_load(model_file().c_str(), &model) == TZ_OK);
  size_t count = 0;
  int64_t ids[2];
  CHECK(tz_tokenize(model, "abcde", 5, ids, 2, &count) == TZ_ERROR_CAPACITY);
  CHECK(count == 5);  // the size needed
  CHECK(std::string(tz_last_error()) == "tz_tokenize: 5 tokens do not fit in 2");
  CHECK(tz_tokenize(model, "abcde", 5, nullptr, 0, &count) == TZ_ERROR_CAPACITY);
  CHECK(tz_tokenize(model, nullptr, 3, ids, 2, &count) == TZ_ERROR_ARGUMENT);
  CHECK(tz_tokenize(model, "", 0, nullptr, 0, &count) == TZ_OK);
  CHECK(count == 0);
  tz_sample_options o = tz_sample_options_default();
  o.top_p = 0;
  CHECK(tz_generate(model, "The ", 4, &o, nullptr, nullptr) == TZ_ERROR_ARGUMENT);
  CHECK(std::string(tz_last_error()).find("top_p must be in (0, 1]") != std::string::npos);
  CHECK(tz_generate(model, "", 0, nullptr, nullptr, nullptr) == TZ_ERROR_ARGUMENT);
  CHECK(tz_generate(nullptr, "The ", 4, nullptr, nullptr, nullptr) == TZ_ERROR_ARGUMENT);
  CHECK(tz_set_num_threads(0) == TZ_ERROR_ARGUMENT);
  CHECK(tz_set_num_threads(1) == TZ_OK);
  CHECK(std::string(tz_last_error()).empty() == false);  // a success leaves the last error as it was
  tz_model_free(model);
}
