// What the shared library exports: the API of tensorzoo.h and tensorzoo_c.h, and nothing of the
// library's insides (the trainer, the JSON reader, the kernels' helpers, fmt, nlohmann-json).
#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/test_util.h"

TEST_CASE("exports: the shared library exports its API and hides the rest") {
  const std::string lib = std::string(TZ_BINARY_DIR) + "/libtensorzoo.so";
  if (!std::filesystem::exists(lib)) {
    MESSAGE("no ", lib, " in this build (sanitizers): nothing to check");
    return;
  }
  std::FILE* nm = ::popen(("nm -DC --defined-only " + lib + " 2>&1").c_str(), "r");
  REQUIRE(nm != nullptr);
  std::string all;
  char line[4096];
  int count = 0;
  while (std::fgets(line, sizeof line, nm)) {
    all += line;
    ++count;
  }
  REQUIRE(::pclose(nm) == 0);
  MESSAGE("libtensorzoo.so exports ", count, " symbols");
  for (const char* api : {"tz_model_load", "tz_generate", "tz::TextModel::load", "tz::Tensor::backward",
                          "tz::models::generate", "tz::set_wait_policy"}) {
    CAPTURE(api);
    CHECK(all.find(api) != std::string::npos);
  }
  for (const char* inside : {"tz::train::", "tz::arena::", "tz::parse_json", "nlohmann::", "fmt::", "SleepingPool"}) {
    CAPTURE(inside);
    CHECK(all.find(inside) == std::string::npos);
  }
  CHECK(count < 3000);  // 1992 when written; 5429 when every symbol was exported
}
