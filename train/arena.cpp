#include "train/arena.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/ops.h"
#include "core/allocator.h"
#include "core/json.h"
#include "core/parallel.h"
#include "data/grammar.h"
#include "data/tasks.h"
#include "data/text_dataset.h"
#include "models/keys.h"
#include "models/zoo.h"
#include "train/distill.h"
#include "train/fit.h"
#include "train/segments.h"

namespace tz::arena {

namespace fs = std::filesystem;
using nlohmann::json;

optim::Recipe Options::recipe() const {
  return {.lr = lr, .min_lr = lr * 0.1, .warmup = warmup, .schedule = "cosine", .weight_decay = 0.01};
}

std::vector<Entry> entries_from_ids(const std::string& list) {
  std::vector<Entry> out;
  std::stringstream ss(list);
  std::string id;
  while (std::getline(ss, id, ',')) {
    if (id.empty()) continue;
    out.push_back({id, zoo::registry().get(id).test_config});
  }
  TZ_CHECK(!out.empty(), "arena: no models given (e.g. --models gpt,rmsnorm)");
  return out;
}

std::vector<Entry> mixer_entries(const std::string& list) {
  std::vector<Entry> out;
  for (Entry& e : entries_from_ids(list)) {  // checks the ids
    TZ_CHECK(zoo::registry().get(e.name).mixer, "arena: '", e.name, "' is not a mixer");
    out.push_back({e.name, cat_str(R"({"mixer": ")", e.name, R"("})")});
  }
  return out;
}

Options options_from_spec(const std::string& text, const Options& defaults) {
  const std::string source = "arena spec";
  const json j = parse_json(text, source);
  TZ_CHECK(j.is_object(), "arena spec: expected a JSON object");
  Options o = defaults;
  try {
    for (auto& item : j.items()) {
      const std::string& key = item.key();
      const json& v = item.value();
      auto get = [&]<class T>(T& field) { field = json_get<T>(j, key, source); };
      if (key == "task")
        get(o.task);
      else if (key == "steps")
        get(o.steps);
      else if (key == "batch")
        get(o.batch);
      else if (key == "seq_len")
        get(o.seq_len);
      else if (key == "vocab")
        get(o.vocab);
      else if (key == "lr")
        get(o.lr);
      else if (key == "warmup")
        get(o.warmup);
      else if (key == "base")
        o.base = v.dump();
      else if (key == "match_params")
        get(o.match_params);
      else if (key == "eval_lengths")
        o.eval_lengths = v.get<std::vector<int64_t>>();
      else if (key == "segment")
        get(o.segment);
      else if (key == "retrospective")
        get(o.retrospective);
      else if (key == "seed")
        get(o.seed);
      else if (key == "distill_from")
        get(o.distill_from);
      else if (key == "distill_steps")
        get(o.distill_steps);
      else if (key == "models") {
        o.models.clear();
        if (v.is_array()) {
          for (auto& id : v)
            o.models.push_back({id.get<std::string>(), zoo::registry().get(id.get<std::string>()).test_config});
        } else {
          TZ_CHECK(v.is_object(), "arena spec: 'models' must be a list of ids or an object name -> config");
          for (auto& [name, cfg] : v.items())
            o.models.push_back(
                {name, cfg.is_string() ? zoo::registry().get(cfg.get<std::string>()).test_config : cfg.dump()});
        }
      } else {
        throw Error(cat_str("arena spec: unknown key '", key.substr(0, 80),
                            "'; valid: task, steps, batch, seq_len, vocab, lr, "
                            "warmup, base, match_params, eval_lengths, segment, retrospective, seed, distill_from, "
                            "distill_steps, models"));
      }
    }
  } catch (const json::exception& e) {
    throw Error(cat_str("arena spec: a value has the wrong type: ", e.what()));
  }
  return o;
}

namespace {
struct Source {
  std::unique_ptr<data::Task> task;         // synthetic tasks
  std::unique_ptr<data::TextDataset> text;  // "text"
  data::Batch sample(int64_t batch, int64_t seq_len, Generator& gen, bool val) const {
    if (task) return task->sample(batch, gen);
    return text->sample(val ? data::Split::val : data::Split::train, batch, seq_len, gen);
  }
};

Source make_source(const Options& o, int64_t seq_len) {
  Source s;
  if (o.task == "text") {
    s.text = std::make_unique<data::TextDataset>(data::TextDataset::from_string(
        data::grammar_text(400000, o.seed), {.val_fraction = 0.1, .seq_len = seq_len}, "built-in grammar text"));
  } else {
    data::TaskOptions to = o.task_options;
    to.vocab_size = o.vocab;
    to.seq_len = seq_len;
    s.task = data::make_task(o.task, to);
  }
  return s;
}

// The models' vocabulary: the task's (its default when o.vocab is 0); bytes for text.
int64_t model_vocab(const Options& o) { return o.task == "text" ? 256 : make_source(o, o.seq_len).task->vocab_size(); }

}  // namespace

nn::Config model_config(const Options& o, const Entry& e, int64_t dim_override) {
  nn::Config c = nn::Config::parse(o.base, "arena base");
  c.set("vocab", std::to_string(model_vocab(o)));
  int64_t longest = 1;
  for (int64_t m : o.eval_lengths) longest = std::max(longest, m);
  c.set("context", std::to_string(o.segment > 0 ? o.segment : o.seq_len * longest));
  c.merge(nn::Config::parse(e.config, "arena model '" + e.name + "'"));
  if (dim_override > 0) c.set("dim", std::to_string(dim_override));
  return c;
}

int64_t count_params(const nn::Config& config) {
  Generator gen(0);
  return zoo::make_lm(config, gen)->num_parameters();
}

GridMatch closest_on_grid(int64_t n, int64_t target, const std::function<int64_t(int64_t)>& count) {
  TZ_CHECK(n >= 1, "closest_on_grid: the grid needs at least one point, got ", n);
  std::map<int64_t, int64_t> seen;
  auto f = [&](int64_t k) {
    auto it = seen.find(k);
    return it != seen.end() ? it->second : seen[k] = count(k);
  };
  // Where a quadratic through the first three points crosses the target.
  int64_t guess = 1;
  if (n >= 3) {
    const double c1 = double(f(1)), c2 = double(f(2)), c3 = double(f(3));
    const double a = (c3 - 2 * c2 + c1) / 2, b = c2 - c1 - 3 * a, c = c1 - a - b - double(target);
    double k = a > 0 ? (-b + std::sqrt(std::max(0.0, b * b - 4 * a * c))) / (2 * a) : b > 0 ? -c / b : 1;
    guess = std::clamp<int64_t>(int64_t(std::llround(std::isfinite(k) ? std::clamp(k, 1.0, double(n)) : 1.0)), 1, n);
  }
  // Bracket the crossing: lo < hi with f(lo) < target <= f(hi) (lo = 0, hi = n + 1: none),
  // galloping away from the guess, then bisect.
  int64_t lo = 0, hi = n + 1;
  if (f(guess) >= target) {
    hi = guess;
    for (int64_t s = 1; hi > 1; s *= 2) {
      const int64_t k = std::max<int64_t>(1, hi - s);
      if (f(k) < target) {
        lo = k;
        break;
      }
      hi = k;
    }
  } else {
    lo = guess;
    for (int64_t s = 1; lo < n; s *= 2) {
      const int64_t k = std::min(n, lo + s);
      if (f(k) >= target) {
        hi = k;
        break;
      }
      lo = k;
    }
  }
  while (hi - lo > 1 && lo >= 1 && hi <= n) {
    const int64_t mid = lo + (hi - lo) / 2;
    (f(mid) >= target ? hi : lo) = mid;
  }
  GridMatch m;
  if (hi > n || (lo >= 1 && target - f(lo) <= f(hi) - target))
    m = {lo, f(lo), 0};
  else
    m = {hi, f(hi), 0};
  m.probes = int64_t(seen.size());
  return m;
}

GridMatch matching_dim(const Options& o, const Entry& e, int64_t target, int64_t max_dim,
                       const std::function<void(const std::string&)>& progress) {
  const int64_t step = 2 * model_config(o, e).get(models::kHeads);
  TZ_CHECK(max_dim >= step, "arena: --match-params needs dims up to at least ", step, " (2 x heads), got ", max_dim);
  GridMatch m = closest_on_grid(max_dim / step, target, [&](int64_t k) {
    const int64_t params = count_params(model_config(o, e, k * step));
    if (progress)
      progress(
          cat_str("    matching ", e.name, ": dim ", k * step, " has ", params, " parameters (target ", target, ")"));
    return params;
  });
  m.k *= step;  // the dim
  if (progress) progress(cat_str("    matching ", e.name, ": dim ", m.k, " after ", m.probes, " models built"));
  return m;
}

std::vector<Result> run(const Options& o, const std::function<void(const std::string&)>& progress) {
  if (!o.distill_from.empty()) return run_distillation(o, progress);
  TZ_CHECK(!o.models.empty(), "arena: no models");
  TZ_CHECK(o.steps > 0 && o.batch > 0 && o.seq_len > 1, "arena: steps, batch and seq_len must be positive");
  TZ_CHECK(!o.retrospective || o.segment > 0, "arena: retrospective needs segment > 0");
  TZ_CHECK(o.segment >= 0 && (o.segment == 0 || o.seq_len % o.segment == 0),
           "arena: segment must be 0 or divide "
           "seq_len (",
           o.seq_len, "), got ", o.segment);
  if (o.threads > 0) set_num_threads(o.threads);
  Source train_source = make_source(o, o.seq_len);
  std::vector<Result> results;
  const int64_t target_params = o.match_params ? count_params(model_config(o, o.models[0])) : 0;
  for (size_t i = 0; i < o.models.size(); ++i) {
    if (int64_t(i) % o.ranks != o.rank) continue;  // another rank's
    const Entry& e = o.models[i];
    Result r;
    r.name = e.name;
    int64_t dim = 0;
    if (o.match_params && i > 0) dim = matching_dim(o, e, target_params, kMaxMatchDim, progress).k;
    nn::Config config = model_config(o, e, dim);
    r.config = config.dump();
    Generator init(o.seed * 7919 + 1);
    auto model = zoo::make_lm(config, init);
    r.params = model->num_parameters();
    const int64_t feeds = o.retrospective && model->has_memory() ? 2 : 1;
    if (model->memory)
      for (size_t n = 0; n < model->memory->plan.mem.size(); ++n)
        r.memory_slots += model->memory->plan.mem[n] + model->memory->plan.cmem[n];
    if (progress) progress(cat_str("[", i + 1, "/", o.models.size(), "] ", e.name, ": ", r.params, " parameters"));

    train::Fit fit(model->named_parameters(), {.steps = o.steps, .recipe = o.recipe()});
    Generator data_gen(o.seed);  // every model sees the same batches
    reset_allocator_peak();
    auto t0 = std::chrono::steady_clock::now();
    double recent = 0;
    int64_t recent_n = 0;
    auto next_batch = [&] { return train_source.sample(o.batch, o.seq_len, data_gen, false); };
    train::LossFn loss =
        o.segment > 0
            ? train::LossFn([&] { return train::segmented_loss(*model, next_batch(), o.segment, nullptr, feeds); })
            : train::batch_loss(*model, next_batch);
    fit.run(loss, {.on_step = [&](const train::StepRecord& s) {
              if ((s.step - 1) % o.log_every == 0 || s.step == o.steps) r.curve.emplace_back(s.step, s.loss);
              if (s.step > o.steps - 10) recent += s.loss, ++recent_n;
              if (progress && s.step % std::max<int64_t>(o.steps / 5, 1) == 0)
                progress(cat_str("    step ", s.step, "/", o.steps, "  loss ", s.loss));
              return true;
            }});
    r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.train_loss = recent / double(std::max<int64_t>(recent_n, 1));
    r.tokens_per_s = double(o.steps * o.batch * o.seq_len) / r.wall_s;
    r.peak_mb = double(allocator_stats().peak_bytes) / 1e6;

    NoGradGuard no_grad;
    model->eval();
    for (int64_t m : o.eval_lengths) {
      try {
        Source src = make_source(o, o.seq_len * m);
        Generator val_gen(o.seed + 1000003);  // the same held-out batches for every model
        double loss = 0, correct = 0;
        int64_t scored = 0;  // accuracy pools the scored positions of every batch
        for (int64_t k = 0; k < o.eval_batches; ++k) {
          data::Batch b = src.sample(o.batch, o.seq_len * m, val_gen, true);
          Tensor logits = o.segment > 0 ? train::segmented_logits(*model, b.inputs, o.segment, nullptr, feeds)
                                        : model->forward(b.inputs);
          loss += cross_entropy(logits.reshape({-1, logits.size(-1)}), b.targets.reshape({-1})).item();
          std::vector<int64_t> y = b.targets.to_vector<int64_t>();
          const auto n = std::count_if(y.begin(), y.end(), [](int64_t v) { return v != data::kIgnoreIndex; });
          correct += data::accuracy(logits, b.targets) * double(n);
          scored += n;
        }
        r.val_loss[m] = loss / double(o.eval_batches);
        r.val_accuracy[m] = correct / double(scored);
      } catch (const std::exception& ex) {
        r.val_error[m] = ex.what();
      }
    }
    results.push_back(std::move(r));
  }
  return results;
}

namespace {
// A Result as JSON and back, for the ranks to send theirs to every rank (NaN as null).
json number(double x) { return std::isnan(x) ? json(nullptr) : json(x); }
double number(const json& j) { return j.is_null() ? NAN : j.get<double>(); }

json to_json(const Result& r) {
  json j = {{"name", r.name},
            {"config", r.config},
            {"params", r.params},
            {"train_loss", number(r.train_loss)},
            {"tokens_per_s", r.tokens_per_s},
            {"peak_mb", r.peak_mb},
            {"memory_slots", r.memory_slots},
            {"wall_s", r.wall_s},
            {"teacher_val", number(r.teacher_val)},
            {"converted_val", number(r.converted_val)},
            {"distilled_val", number(r.distilled_val)},
            {"kl_before", number(r.kl_before)},
            {"kl_after", number(r.kl_after)}};
  for (auto& [m, v] : r.val_loss) j["val_loss"][std::to_string(m)] = number(v);
  for (auto& [m, v] : r.val_accuracy) j["val_accuracy"][std::to_string(m)] = number(v);
  for (auto& [m, v] : r.val_error) j["val_error"][std::to_string(m)] = v;
  for (auto& [s, l] : r.curve) j["curve"].push_back({s, number(l)});
  return j;
}

Result from_json(const json& j) {
  Result r;
  r.name = j.at("name");
  r.config = j.at("config");
  r.params = j.at("params");
  r.train_loss = number(j.at("train_loss"));
  r.tokens_per_s = j.at("tokens_per_s");
  r.peak_mb = j.at("peak_mb");
  r.memory_slots = j.at("memory_slots");
  r.wall_s = j.at("wall_s");
  r.teacher_val = number(j.at("teacher_val"));
  r.converted_val = number(j.at("converted_val"));
  r.distilled_val = number(j.at("distilled_val"));
  r.kl_before = number(j.at("kl_before"));
  r.kl_after = number(j.at("kl_after"));
  for (const char* key : {"val_loss", "val_accuracy", "val_error"})
    if (j.contains(key))
      for (auto& [m, v] : j.at(key).items()) {
        if (std::string(key) == "val_error")
          r.val_error[std::stoll(m)] = v.get<std::string>();
        else
          (std::string(key) == "val_loss" ? r.val_loss : r.val_accuracy)[std::stoll(m)] = number(v);
      }
  if (j.contains("curve"))
    for (auto& p : j.at("curve")) r.curve.emplace_back(p.at(0).get<int64_t>(), number(p.at(1)));
  return r;
}
}  // namespace

std::vector<Result> run(const Options& options, Communicator& comm,
                        const std::function<void(const std::string&)>& progress) {
  Options o = options;
  o.rank = comm.rank();
  o.ranks = comm.size();
  const std::vector<Result> mine = run(o, progress);
  json j = json::array();
  for (const Result& r : mine) j.push_back(to_json(r));
  const std::vector<std::string> all = allgather_strings(comm, j.dump());
  // Rank p trained models p, p + N, p + 2N, ...: deal them back into the models' order.
  std::vector<std::vector<Result>> by_rank;
  for (const std::string& s : all) {
    by_rank.emplace_back();
    for (const json& r : parse_json(s, "arena results of a rank")) by_rank.back().push_back(from_json(r));
  }
  std::vector<Result> results;
  for (size_t i = 0; i < o.models.size(); ++i) {
    const auto& theirs = by_rank[i % by_rank.size()];
    const size_t k = i / by_rank.size();
    TZ_CHECK(k < theirs.size(), "arena: rank ", i % by_rank.size(), " sent ", theirs.size(),
             " results, expected model ", o.models[i].name);
    results.push_back(theirs[k]);
  }
  return results;
}

namespace {
std::string distillation_table(const std::vector<Result>& results) {
  std::ostringstream t;
  t << "| model | params | teacher val | converted val | attention KL | distilled val | attention KL | "
       "fine-tuned val | wall s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  char buf[160];
  for (const Result& r : results) {
    std::snprintf(buf, sizeof buf, "| %s | %lld | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.1f |\n", r.name.c_str(),
                  static_cast<long long>(r.params), r.teacher_val, r.converted_val, r.kl_before, r.distilled_val,
                  r.kl_after, r.val_loss.count(1) ? r.val_loss.at(1) : NAN, r.wall_s);
    t << buf;
  }
  return t.str();
}

std::string arena_table(const Options& o, const std::vector<Result>& results) {
  std::ostringstream t;
  const bool memory = std::any_of(results.begin(), results.end(), [](const Result& r) { return r.memory_slots > 0; });
  t << "| model | params |" << (memory ? " memory slots |" : "") << " train loss |";
  for (int64_t m : o.eval_lengths) t << " val loss @" << m * o.seq_len << " | acc@" << m << "x |";
  t << " tokens/s | peak MB | wall s |\n|---|---:|" << (memory ? "---:|" : "") << "---:|";
  for (size_t i = 0; i < o.eval_lengths.size(); ++i) t << "---:|---:|";
  t << "---:|---:|---:|\n";
  char buf[64];
  for (const Result& r : results) {
    t << "| " << r.name << " | " << r.params << " | ";
    if (memory) t << r.memory_slots << " | ";
    std::snprintf(buf, sizeof buf, "%.4f", r.train_loss);
    t << buf << " |";
    for (int64_t m : o.eval_lengths) {
      if (r.val_loss.count(m)) {
        std::snprintf(buf, sizeof buf, " %.4f | %.3f |", r.val_loss.at(m), r.val_accuracy.at(m));
        t << buf;
      } else {
        t << " n/a | n/a |";
      }
    }
    std::snprintf(buf, sizeof buf, " %.0f | %.1f | %.1f |", r.tokens_per_s, r.peak_mb, r.wall_s);
    t << buf << "\n";
  }
  return t.str();
}
}  // namespace

std::string report(const Options& o, const std::vector<Result>& results) {
  const std::string table = o.distill_from.empty() ? arena_table(o, results) : distillation_table(results);
  fs::create_directories(o.out_dir);
  fs::path csv = fs::path(o.out_dir) / "curves.csv";
  {
    std::ofstream out(csv);
    out << "step";
    for (const Result& r : results) out << "," << r.name;
    out << "\n";
    for (size_t k = 0; !results.empty() && k < results[0].curve.size(); ++k) {
      out << results[0].curve[k].first;
      for (const Result& r : results) out << "," << (k < r.curve.size() ? r.curve[k].second : NAN);
      out << "\n";
    }
  }
  {
    std::ofstream out(fs::path(o.out_dir) / "results.csv");
    // acc@Mx: the task's accuracy on its scored positions at M times the training length.
    out << "model,task,seq_len,params,train_loss";
    for (int64_t m : o.eval_lengths) out << ",val_loss_x" << m << ",acc@" << m << "x";
    out << ",tokens_per_s,peak_mb,wall_s\n";
    for (const Result& r : results) {
      out << r.name << "," << o.task << "," << o.seq_len << "," << r.params << "," << r.train_loss;
      for (int64_t m : o.eval_lengths)
        out << "," << (r.val_loss.count(m) ? std::to_string(r.val_loss.at(m)) : "") << ","
            << (r.val_accuracy.count(m) ? std::to_string(r.val_accuracy.at(m)) : "");
      out << "," << r.tokens_per_s << "," << r.peak_mb << "," << r.wall_s << "\n";
    }
  }
  std::ofstream(fs::path(o.out_dir) / "table.md") << table;
  return table;
}

}  // namespace tz::arena
