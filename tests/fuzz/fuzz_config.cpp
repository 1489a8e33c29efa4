// libFuzzer harness: the JSON a user or a file gives — a model config (`--config`, a
// checkpoint's "config"), training options (a checkpoint's "train_options") and an arena
// spec (`arena --spec`), the same text offered to each reader.
// Each must accept or raise tz::Error. A config that parses must survive a round trip
// (dump, parse again, the same dump), and every key must read back through the typed getters
// or raise tz::Error. Any other exception, a crash or a sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "nn/config.h"
#include "train/arena.h"
#include "train/trainer.h"

namespace {

template <class F>
void expect_tz_error_or_success(F&& f) {
  try {
    f();
  } catch (const tz::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  tz::nn::Config config;
  bool parsed = false;
  expect_tz_error_or_success([&] {
    config = tz::nn::Config::parse(text, "fuzz config");
    parsed = true;
  });
  if (parsed) {
    const std::string dumped = config.dump();
    if (tz::nn::Config::parse(dumped, "round trip").dump() != dumped) __builtin_trap();
    for (const std::string& key : config.keys()) {
      expect_tz_error_or_success([&] { (void)config.get_int(key, 0); });
      expect_tz_error_or_success([&] { (void)config.get_double(key, 0); });
      expect_tz_error_or_success([&] { (void)config.get_bool(key, false); });
      expect_tz_error_or_success([&] { (void)config.get_string(key, ""); });
      expect_tz_error_or_success([&] { (void)config.get_ints(key, {}); });
      expect_tz_error_or_success([&] { (void)config.get_strings(key, {}); });
    }
  }
  expect_tz_error_or_success([&] { (void)tz::train::TrainOptions::from_json(text, config, "fuzz options"); });
  expect_tz_error_or_success([&] { (void)tz::arena::options_from_spec(text, tz::arena::Options{}); });
  return 0;
}
