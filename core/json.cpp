#include "core/json.h"

#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>
#include <vector>

namespace tz {

using nlohmann::json;

namespace {

std::string describe(const std::string& source, const std::string& problem, const std::string& path, int64_t byte) {
  std::string where = path.empty() ? "" : cat_str(" at ", path);
  std::string at_byte = byte < 0 ? "" : cat_str(" (byte ", byte, ")");
  return cat_str(source, ": ", problem, where, at_byte);
}

// The checking pass: a SAX consumer that builds nothing, keeps the key path for messages,
// counts the depth and the keys of each open object.
class Checker {
 public:
  Checker(const std::string& source, const JsonLimits& limits) : source_(source), limits_(limits) {}

  bool null() { return value(); }
  bool boolean(bool) { return value(); }
  bool number_integer(json::number_integer_t) { return value(); }
  bool number_unsigned(json::number_unsigned_t) { return value(); }
  bool number_float(json::number_float_t, const json::string_t&) { return value(); }
  bool string(json::string_t&) { return value(); }
  bool binary(json::binary_t&) { return value(); }
  bool start_object(std::size_t) { return open(true); }
  bool start_array(std::size_t) { return open(false); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(json::string_t& k) {
    Frame& f = frames_.back();
    if (!f.keys.insert(k).second)
      throw JsonError(source_,
                      cat_str("key \"", clip(k), "\" appears twice in one object (a reader would keep only one)"),
                      path_of(frames_.size() - 1), -1);
    f.key = k;
    return true;
  }
  bool parse_error(std::size_t position, const std::string& token, const nlohmann::detail::exception& e) {
    // position counts the characters read, so the offending one is at position - 1.
    const int64_t at = position > 0 ? int64_t(position) - 1 : 0;
    if (e.id == 406)  // a number the lexer read but a double cannot hold; `at` is its last character
      throw JsonError(source_, cat_str("number ", clip(token), " is out of the range of a double"), path(),
                      at + 1 - int64_t(token.size()));
    std::string what = e.what();
    // nlohmann's text is "[json.exception.parse_error.101] parse error at line 1, column 5:
    // syntax error while parsing value - ..."; keep the part after "syntax error".
    const size_t cut = what.find("syntax error");
    // The path of the innermost container (an array's element index is not known here).
    if (!frames_.empty() && !frames_.back().object) frames_.back().index = -1;
    throw JsonError(source_, cat_str("invalid JSON: ", cut == std::string::npos ? what : what.substr(cut)), path(), at);
  }

 private:
  struct Frame {
    bool object;
    std::unordered_set<std::string> keys;  // objects: the keys so far
    std::string key;                       // objects: the key being read
    int64_t index = -1;                    // arrays: the element being read
  };

  static std::string clip(const std::string& s) { return s.size() <= 80 ? s : s.substr(0, 77) + "..."; }

  // The key path of the value being read, through the first `depth` frames.
  std::string path_of(size_t depth) const {
    std::string p;
    for (size_t i = 0; i < depth; ++i) {
      const Frame& f = frames_[i];
      if (f.object) {
        if (!p.empty()) p += '.';
        p += clip(f.key);
      } else if (f.index >= 0) {
        p += cat_str("[", f.index, "]");
      }
    }
    return p;
  }
  std::string path() const {
    std::string p = path_of(frames_.size());
    return p.size() <= 120 ? p : p.substr(0, 60) + " ... " + p.substr(p.size() - 40);
  }

  bool value() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().index;
    return true;
  }
  bool open(bool object) {
    value();
    if (int(frames_.size()) >= limits_.max_depth)
      throw JsonError(source_, cat_str("nested more than ", limits_.max_depth, " levels deep"), path(), -1);
    frames_.push_back({.object = object});
    return true;
  }
  bool close() {
    frames_.pop_back();
    return true;
  }

  const std::string& source_;
  const JsonLimits& limits_;
  std::vector<Frame> frames_;
};

}  // namespace

JsonError::JsonError(const std::string& source, const std::string& problem, const std::string& path, int64_t byte)
    : Error(describe(source, problem, path, byte)), problem_(problem), path_(path), byte_(byte) {}

json parse_json(std::string_view text, const std::string& source, const JsonLimits& limits) {
  Checker checker(source, limits);
  json::sax_parse(text.begin(), text.end(), &checker);
  // The text is known good and shallow: the library's parser builds it in one pass (no
  // callback: a parse callback makes nlohmann rescan each object as it closes).
  return json::parse(text.begin(), text.end());
}

template <class T>
T json_get(const json& j, const std::string& key, const std::string& source) {
  auto it = j.find(key);
  TZ_CHECK(it != j.end(), source, ": no key '", key, "'");
  const json& v = *it;
  auto wrong = [&](const char* expected) {
    std::string text = v.dump();
    if (text.size() > 80) text = text.substr(0, 77) + "...";
    return Error(cat_str(source, ": '", key, "' must be ", expected, ", got ", text));
  };
  if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) throw wrong("a string");
    return v.get<std::string>();
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) throw wrong("true or false");
    return v.get<bool>();
  } else if constexpr (std::is_same_v<T, double>) {
    if (!v.is_number()) throw wrong("a number");
    return v.get<double>();
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    if (!v.is_number_unsigned()) throw wrong("a non-negative integer");
    return v.get<uint64_t>();
  } else {  // int64_t, int: a signed integer in the type's range
    if (!v.is_number_integer() ||
        (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())))
      throw wrong("an integer");
    const int64_t x = v.get<int64_t>();
    if (x < std::numeric_limits<T>::min() || x > std::numeric_limits<T>::max())
      throw wrong(
          cat_str("an integer in [", std::numeric_limits<T>::min(), ", ", std::numeric_limits<T>::max(), "]").c_str());
    return T(x);
  }
}

template std::string json_get<std::string>(const json&, const std::string&, const std::string&);
template bool json_get<bool>(const json&, const std::string&, const std::string&);
template double json_get<double>(const json&, const std::string&, const std::string&);
template uint64_t json_get<uint64_t>(const json&, const std::string&, const std::string&);
template int64_t json_get<int64_t>(const json&, const std::string&, const std::string&);
template int json_get<int>(const json&, const std::string&, const std::string&);

}  // namespace tz
