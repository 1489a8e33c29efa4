#include "nn/config.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json.h"
#include "core/text.h"

namespace tz::nn {

struct Config::Impl {
  nlohmann::json j = nlohmann::json::object();
};

Config::Config() : impl_(std::make_unique<Impl>()) {}
Config::Config(const Config& o) : impl_(std::make_unique<Impl>(*o.impl_)), source_(o.source_), read_(o.read_) {}
Config& Config::operator=(const Config& o) {
  *impl_ = *o.impl_;
  source_ = o.source_;
  read_ = o.read_;
  return *this;
}
Config::~Config() = default;

Config Config::parse(const std::string& json, const std::string& source) {
  Config c;
  c.source_ = source;
  c.impl_->j = parse_json(json, source);
  TZ_CHECK(c.impl_->j.is_object(), source, ": expected a JSON object, got ", c.impl_->j.type_name());
  return c;
}

std::string json_text(int64_t v) { return nlohmann::json(v).dump(); }
std::string json_text(double v) { return nlohmann::json(v).dump(); }
std::string json_text(bool v) { return v ? "true" : "false"; }
std::string json_text(const std::string& v) { return nlohmann::json(v).dump(); }
std::string json_text(const std::vector<std::string>& v) { return nlohmann::json(v).dump(); }
std::string json_text(const std::vector<int64_t>& v) { return nlohmann::json(v).dump(); }
std::string json_text(const std::vector<double>& v) { return nlohmann::json(v).dump(); }

bool Config::has(const std::string& key) const { return impl_->j.contains(key); }

namespace {
template <class T>
T read(const nlohmann::json& j, const std::string& key, const T& fallback, const std::string& source,
       const char* expected) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  try {
    if constexpr (std::is_same_v<T, int64_t>) {
      TZ_CHECK(it->is_number_integer(), source, ": key '", key, "' must be ", expected, ", got ", it->dump());
      // No size, count or index of a model is near 2^31: a larger value is corrupt or crafted,
      // and would overflow the products it feeds.
      TZ_CHECK(it->is_number_unsigned() ? it->get<uint64_t>() <= uint64_t(kMaxConfigInt)
                                        : it->get<int64_t>() >= -kMaxConfigInt,
               source, ": key '", key, "' is ", it->dump(),
               ", outside [-2^31, 2^31], the range of model config integers");
    } else if constexpr (std::is_same_v<T, double>) {
      TZ_CHECK(it->is_number(), source, ": key '", key, "' must be ", expected, ", got ", it->dump());
    } else if constexpr (std::is_same_v<T, bool>) {
      TZ_CHECK(it->is_boolean(), source, ": key '", key, "' must be ", expected, ", got ", it->dump());
    } else if constexpr (std::is_same_v<T, std::string>) {
      TZ_CHECK(it->is_string(), source, ": key '", key, "' must be ", expected, ", got ", it->dump());
    }
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(cat_str(source, ": key '", key, "' must be ", expected, ", got ", it->dump()));
  }
}
}  // namespace

int64_t Config::get_int(const std::string& key, int64_t fallback) const {
  read_.insert(key);
  return read(impl_->j, key, fallback, source_, "an integer");
}
double Config::get_double(const std::string& key, double fallback) const {
  read_.insert(key);
  return read(impl_->j, key, fallback, source_, "a number");
}
bool Config::get_bool(const std::string& key, bool fallback) const {
  read_.insert(key);
  return read(impl_->j, key, fallback, source_, "true or false");
}
std::string Config::get_string(const std::string& key, const std::string& fallback) const {
  read_.insert(key);
  return read(impl_->j, key, fallback, source_, "a string");
}

std::vector<std::string> Config::get_strings(const std::string& key, const std::vector<std::string>& fallback) const {
  read_.insert(key);
  auto it = impl_->j.find(key);
  if (it == impl_->j.end()) return fallback;
  if (it->is_string()) return {it->get<std::string>()};
  TZ_CHECK(it->is_array(), source_, ": key '", key, "' must be a string or a list of strings, got ", it->dump());
  std::vector<std::string> out;
  for (auto& v : *it) {
    TZ_CHECK(v.is_string(), source_, ": key '", key, "' must list strings, got ", v.dump());
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::vector<int64_t> Config::get_ints(const std::string& key, const std::vector<int64_t>& fallback) const {
  read_.insert(key);
  auto it = impl_->j.find(key);
  if (it == impl_->j.end()) return fallback;
  if (it->is_number_integer()) return {it->get<int64_t>()};
  TZ_CHECK(it->is_array(), source_, ": key '", key, "' must be an integer or a list of integers, got ", it->dump());
  std::vector<int64_t> out;
  for (auto& v : *it) {
    TZ_CHECK(v.is_number_integer(), source_, ": key '", key, "' must list integers, got ", v.dump());
    out.push_back(v.get<int64_t>());
  }
  return out;
}

std::vector<double> Config::get_doubles(const std::string& key, const std::vector<double>& fallback) const {
  read_.insert(key);
  auto it = impl_->j.find(key);
  if (it == impl_->j.end()) return fallback;
  if (it->is_number()) return {it->get<double>()};
  TZ_CHECK(it->is_array(), source_, ": key '", key, "' must be a number or a list of numbers, got ", it->dump());
  std::vector<double> out;
  for (auto& v : *it) {
    TZ_CHECK(v.is_number(), source_, ": key '", key, "' must list numbers, got ", v.dump());
    out.push_back(v.get<double>());
  }
  return out;
}

void Config::set(const std::string& key, const std::string& json_value) {
  impl_->j[key] = parse_json(json_value, cat_str(source_, ": the value of '", key, "'"));
}

void Config::merge(const Config& other) {
  for (auto& [k, v] : other.impl_->j.items()) impl_->j[k] = v;
}

std::vector<std::string> Config::keys() const {
  std::vector<std::string> out;
  for (auto& [k, v] : impl_->j.items()) out.push_back(k);
  return out;
}

std::string Config::dump() const { return impl_->j.dump(); }

void Config::check_all_read(const std::vector<std::string>& valid) const {
  std::vector<std::string> problems;
  for (auto& [k, v] : impl_->j.items()) {
    if (read_.count(k)) continue;
    std::string guess = nearest(k, valid);
    const std::string key = k.size() <= 80 ? k : k.substr(0, 77) + "...";
    problems.push_back(guess.empty() ? cat_str("'", key, "'") : cat_str("'", key, "' (did you mean '", guess, "'?)"));
  }
  TZ_CHECK(problems.empty(), source_, ": unknown key", problems.size() > 1 ? "s " : " ", join(problems),
           "; valid keys for this model: ", join(valid));
}

}  // namespace tz::nn
