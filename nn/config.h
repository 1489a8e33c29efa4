// nn::Config: a model's JSON configuration, read by the components it selects.
//
// Each config key is declared once, next to the component that reads it, as a typed
// nn::Key (name, type, default, doc):
//
//   inline const nn::Key<int64_t> kKvHeads{"attn_kv_heads", 0, "key/value heads G (0 = heads)"};
//   int64_t G = config.get(kKvHeads);          // the default when the key is absent
//   .keys = {kKvHeads, ...}                     // the registry's list, `tensorzoo info`, docs
//
// so the default and the doc cannot drift apart. Each component reads the keys it understands. Every read is recorded,
// so after a model is built `check_all_read()` can reject the keys nobody read — typos and options of components that
// were not selected — naming them, the keys that are valid here, and the nearest one.
// JSON stays a private dependency: this header shows no JSON type.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

namespace tz::nn {

// A key as the registry, `tensorzoo info` and docs/variants.md show it. type is one of
// int, number, bool, string, strings, ints, numbers (empty: not declared as an nn::Key).
struct ConfigKey {
  std::string key;
  std::string default_value;  // as JSON text
  std::string doc;
  std::string type;
};

// JSON text of a default value, and the type names above, for ConfigKey.
std::string json_text(int64_t v);
std::string json_text(double v);
std::string json_text(bool v);
std::string json_text(const std::string& v);
std::string json_text(const std::vector<std::string>& v);
std::string json_text(const std::vector<int64_t>& v);
std::string json_text(const std::vector<double>& v);
template <class T>
constexpr const char* key_type_name() {
  if constexpr (std::is_same_v<T, int64_t>)
    return "int";
  else if constexpr (std::is_same_v<T, double>)
    return "number";
  else if constexpr (std::is_same_v<T, bool>)
    return "bool";
  else if constexpr (std::is_same_v<T, std::string>)
    return "string";
  else if constexpr (std::is_same_v<T, std::vector<std::string>>)
    return "strings";
  else if constexpr (std::is_same_v<T, std::vector<int64_t>>)
    return "ints";
  else
    return "numbers";
}

// A config key declared once: name, type (T), default and doc.
// Integers in a config are at most 2^31 in magnitude (Config refuses others, naming the key).
constexpr int64_t kMaxConfigInt = int64_t(1) << 31;

template <class T>
struct Key {
  static_assert(std::is_same_v<T, int64_t> || std::is_same_v<T, double> || std::is_same_v<T, bool> ||
                    std::is_same_v<T, std::string> || std::is_same_v<T, std::vector<std::string>> ||
                    std::is_same_v<T, std::vector<int64_t>> || std::is_same_v<T, std::vector<double>>,
                "nn::Key: the type must be int64_t, double, bool, std::string or a vector of these");
  std::string name;
  T fallback;
  std::string doc;
  operator ConfigKey() const { return {name, json_text(fallback), doc, key_type_name<T>()}; }
};

class Config {
 public:
  Config();  // {}
  static Config parse(const std::string& json, const std::string& source = "config");
  Config(const Config& other);
  Config& operator=(const Config& other);
  ~Config();

  bool has(const std::string& key) const;
  bool has(const ConfigKey& key) const { return has(key.key); }
  // The value of a declared key (its default when absent); a value of the wrong type throws
  // naming the key, the expected type and what came.
  template <class T>
  T get(const Key<T>& k) const {
    if constexpr (std::is_same_v<T, int64_t>)
      return get_int(k.name, k.fallback);
    else if constexpr (std::is_same_v<T, double>)
      return get_double(k.name, k.fallback);
    else if constexpr (std::is_same_v<T, bool>)
      return get_bool(k.name, k.fallback);
    else if constexpr (std::is_same_v<T, std::string>)
      return get_string(k.name, k.fallback);
    else if constexpr (std::is_same_v<T, std::vector<std::string>>)
      return get_strings(k.name, k.fallback);
    else if constexpr (std::is_same_v<T, std::vector<int64_t>>)
      return get_ints(k.name, k.fallback);
    else
      return get_doubles(k.name, k.fallback);
  }
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_double(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  // A string or a list of strings (e.g. a per-layer mixer list).
  std::vector<std::string> get_strings(const std::string& key, const std::vector<std::string>& fallback) const;
  std::vector<int64_t> get_ints(const std::string& key, const std::vector<int64_t>& fallback) const;
  std::vector<double> get_doubles(const std::string& key, const std::vector<double>& fallback) const;
  // Sets a key (JSON text of the value), e.g. set("dim", "64") or set("mixer", "\"retnet\"").
  void set(const std::string& key, const std::string& json_value);
  // Overlays every key of `other` (its values win).
  void merge(const Config& other);

  std::vector<std::string> keys() const;
  std::string dump() const;  // compact JSON
  const std::string& source() const { return source_; }

  // Throws tz::Error naming every key that was never read, with the valid keys and the
  // nearest valid key to each unknown one. `valid` lists the keys the chosen components
  // accept (documented in the registry).
  void check_all_read(const std::vector<std::string>& valid) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string source_;
  mutable std::set<std::string> read_;
};

}  // namespace tz::nn
