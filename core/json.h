// Reading JSON that comes from outside the program: config files and flags, arena specs,
// safetensors headers and checkpoint metadata. All of it goes through parse_json, which
//   - takes time linear in the text (one checking pass, then the library's plain parse);
//   - refuses nesting deeper than max_depth before building anything, so no crafted text
//     reaches a recursive walk (dump, destruction) deep enough to overflow the stack;
//   - refuses a key repeated in one object (nlohmann would silently keep the last copy);
//   - refuses a number beyond the range of a double (9E999), naming its key;
// and reports every fault as a JsonError naming the source, the key path and the byte.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "core/error.h"

namespace tz {

struct JsonLimits {
  int max_depth = 64;  // objects and arrays nested at most this deep
};

class JsonError : public Error {
 public:
  // problem: what is wrong; path: where, as model.layers[2] ("" = the top level);
  // byte: offset in the text of the fault (-1 when unknown).
  JsonError(const std::string& source, const std::string& problem, const std::string& path, int64_t byte);
  const std::string& problem() const { return problem_; }
  const std::string& path() const { return path_; }
  int64_t byte() const { return byte_; }

 private:
  std::string problem_, path_;
  int64_t byte_;
};

// Parses `text`; `source` names it in errors ("--config", "checkpoint runs/x/checkpoint.safetensors").
nlohmann::json parse_json(std::string_view text, const std::string& source, const JsonLimits& limits = {});

// The value of `key` in object `j` as T, or a tz::Error naming the source, the key and the
// type expected ("steps must be an integer, got \"ten\"").
template <class T>
T json_get(const nlohmann::json& j, const std::string& key, const std::string& source);

}  // namespace tz
