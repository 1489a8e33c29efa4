// parse_json (core/json.h): the one reader of outside JSON. Faults are tz::Errors naming the
// source, the key path and the byte; nesting is bounded before anything is built; time is
// linear in the text.
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/json.h"
#include "tests/test_util.h"

using namespace tz;
using nlohmann::json;

namespace {
// The message of the JsonError that parsing `text` throws ("" when none is thrown).
std::string fault(const std::string& text, const JsonLimits& limits = {}) {
  try {
    parse_json(text, "src", limits);
  } catch (const JsonError& e) {
    return e.what();
  }
  return "";
}
std::string nested(int depth, const std::string& open, const std::string& close) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += open;
  s += "1";
  for (int i = 0; i < depth; ++i) s += close;
  return s;
}
}  // namespace

TEST_CASE("json: good text parses to the library's value") {
  json j = parse_json(R"({"a": [1, 2.5, "x", null, true], "b": {"c": -3}})", "src");
  CHECK(j["a"][1] == 2.5);
  CHECK(j["b"]["c"] == -3);
  CHECK(parse_json(nested(64, "[", "]"), "src").is_array());  // exactly the limit
}

TEST_CASE("json: faults name the source, the key path and the byte") {
  CHECK(fault(R"({"a": {"b": [1, 2,, 3]}})") ==
        "src: invalid JSON: syntax error while parsing value - unexpected ','; expected '[', '{', or a literal at a.b "
        "(byte 18)");
  CHECK(fault(R"({"model": {"dim": 9E999}})") ==
        "src: number 9E999 is out of the range of a double at model.dim (byte 18)");
  CHECK(fault(R"({"a": 1, "b": {"c": 1, "c": 2}})") ==
        "src: key \"c\" appears twice in one object (a reader would keep only one) at b");
  CHECK(fault(R"({"a": 1, "a": 2})").find("key \"a\" appears twice") != std::string::npos);
  // The same key in different objects is fine.
  CHECK(fault(R"({"a": {"x": 1}, "b": {"x": 1}})").empty());
}

TEST_CASE("json: nesting beyond the limit is refused before anything is built") {
  for (const auto& [open, close] : {std::pair{"[", "]"}, {"{\"k\":", "}"}}) {
    CHECK(fault(nested(65, open, close)).find("nested more than 64 levels deep") != std::string::npos);
    // 100,000 levels: the size that overflowed the stack of a recursive reader.
    const std::string m = fault(nested(100000, open, close));
    CHECK(m.find("nested more than 64 levels deep") != std::string::npos);
    CHECK(m.size() < 300);  // the path is shortened
  }
  CHECK(fault(nested(5, "[", "]"), {.max_depth = 4}).find("nested more than 4 levels") != std::string::npos);
}

TEST_CASE("json: time is linear in the number of keys") {
  auto seconds = [](int n) {
    std::string text = "{";
    for (int i = 0; i < n; ++i) text += cat_str(i ? "," : "", "\"key", i, "\": {\"v\": [", i, "]}");
    text += "}";
    double best = INFINITY;  // CPU time, the best of 3: a busy machine does not decide
    for (int rep = 0; rep < 3; ++rep) {
      const double t0 = testing::thread_cpu_seconds();
      CHECK(parse_json(text, "src").size() == size_t(n));
      best = std::min(best, testing::thread_cpu_seconds() - t0);
    }
    return best;
  };
  const double small = seconds(25000), large = seconds(100000);
  // 4x the keys: a linear parser takes about 4x (a quadratic one 16x).
  CHECK_MESSAGE(large < 8 * small + 0.05, "25k keys ", small, " s, 100k keys ", large, " s");
}

TEST_CASE("json_get: a value of the wrong type or range names the key") {
  const json j = parse_json(R"({"n": 5, "big": 3000000000, "neg": -1, "s": "x", "f": 1.5, "b": true})", "opts");
  CHECK(json_get<int64_t>(j, "n", "opts") == 5);
  CHECK(json_get<int>(j, "n", "opts") == 5);
  CHECK(json_get<double>(j, "n", "opts") == 5.0);
  CHECK(json_get<uint64_t>(j, "big", "opts") == 3000000000ull);
  CHECK_THROWS_WITH_AS(json_get<int>(j, "big", "opts"),
                       "opts: 'big' must be an integer in [-2147483648, 2147483647], got 3000000000", Error);
  CHECK_THROWS_WITH_AS(json_get<uint64_t>(j, "neg", "opts"), "opts: 'neg' must be a non-negative integer, got -1",
                       Error);
  CHECK_THROWS_WITH_AS(json_get<int64_t>(j, "s", "opts"), "opts: 's' must be an integer, got \"x\"", Error);
  CHECK_THROWS_WITH_AS(json_get<int64_t>(j, "f", "opts"), "opts: 'f' must be an integer, got 1.5", Error);
  CHECK_THROWS_WITH_AS(json_get<std::string>(j, "b", "opts"), "opts: 'b' must be a string, got true", Error);
  CHECK_THROWS_WITH_AS(json_get<bool>(j, "missing", "opts"), "opts: no key 'missing'", Error);
}
