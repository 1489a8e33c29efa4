// nn::Config: a model's JSON configuration, read by the components it selects.
//
// Each component (mixer, position scheme, FFN, norm, ...) reads the keys it understands
// through typed getters with defaults. Every read is recorded, so after a model is built
// `check_all_read()` can reject the keys nobody read — typos and options of components that
// were not selected — naming them, the keys that are valid here, and the nearest one.
// JSON stays a private dependency: this header shows no JSON type.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace tz::nn {

class Config {
 public:
  Config();  // {}
  static Config parse(const std::string& json, const std::string& source = "config");
  Config(const Config& other);
  Config& operator=(const Config& other);
  ~Config();

  bool has(const std::string& key) const;
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
