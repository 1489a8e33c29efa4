// The arena's distillation mode: see distill.h.
#include "train/distill.h"

#include <chrono>
#include <cmath>
#include <set>

#include "autograd/ops.h"
#include "core/allocator.h"
#include "core/copy.h"
#include "core/parallel.h"
#include "data/grammar.h"
#include "data/text_dataset.h"
#include "models/zoo.h"
#include "nn/linear_rnn/feature_attention.h"
#include "train/fit.h"
#include "train/run_dir.h"

namespace tz::arena {

namespace {
void visit_feature_mixers(nn::Module& m, const std::function<void(nn::FeatureAttention&)>& fn) {
  if (auto* f = dynamic_cast<nn::FeatureAttention*>(&m)) fn(*f);
  for (auto& [name, child] : m.named_children()) visit_feature_mixers(*child, fn);
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The teacher tensor a student's q_proj/k_proj/v_proj/o_proj parameter comes from: the
// rows of layers.<i>.mixer.qkv (q | k | v, C each) or layers.<i>.mixer.out.
bool split_source(const std::string& name, const std::map<std::string, Tensor>& teacher, int64_t C, Tensor& out) {
  static const std::pair<const char*, int64_t> parts[] = {{"q_proj", 0}, {"k_proj", 1}, {"v_proj", 2}};
  const auto mixer = name.find(".mixer.");
  if (mixer == std::string::npos) return false;
  const std::string prefix = name.substr(0, mixer + 7), rest = name.substr(mixer + 7);
  const std::string kind = ends_with(rest, ".weight") ? "weight" : ends_with(rest, ".bias") ? "bias" : "";
  if (kind.empty()) return false;
  const std::string module = rest.substr(0, rest.size() - kind.size() - 1);
  if (module == "o_proj") {
    auto it = teacher.find(prefix + "out." + kind);
    if (it == teacher.end()) return false;
    out = it->second;
    return true;
  }
  for (const auto& [part, index] : parts) {
    if (module != part) continue;
    auto it = teacher.find(prefix + "qkv." + kind);
    if (it == teacher.end() || it->second.size(0) != 3 * C) return false;
    out = it->second.narrow(0, index * C, C);
    return true;
  }
  return false;
}

struct Data {
  std::unique_ptr<data::TextDataset> text;
};

Data teacher_data(const train::RunCheckpoint& run, int64_t seq_len) {
  const train::TrainOptions& t = run.options;
  data::TextDatasetOptions d{.val_fraction = 0.1, .seq_len = seq_len};
  Data out;
  out.text = std::make_unique<data::TextDataset>(
      t.data.empty()
          ? data::TextDataset::from_string(data::grammar_text(t.builtin_bytes, t.seed), d, "built-in grammar text")
          : data::TextDataset::from_file(t.data, d));
  return out;
}

// Mean validation loss (and attention KL, when the student's mixers record it) over
// `batches` held-out batches drawn from one seed.
std::pair<double, double> evaluate(models::LM& model, const data::TextDataset& text, const Options& o) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  Generator gen(o.seed + 1000003);
  double loss = 0, kl = 0;
  for (int64_t b = 0; b < o.eval_batches; ++b) {
    data::Batch batch = text.sample(data::Split::val, o.batch, o.seq_len, gen);
    nn::AuxLosses aux;
    Tensor logits = model.forward({batch.inputs}, nullptr, &aux);
    loss += cross_entropy(logits.reshape({-1, logits.size(-1)}), batch.targets.reshape({-1})).item();
    if (Tensor total = aux.total(); total.defined()) kl += total.item();
  }
  model.train(was_training);
  return {loss / double(o.eval_batches), kl / double(o.eval_batches)};
}
}  // namespace

Conversion convert_attention(models::LM& student, const models::LM& teacher) {
  const std::map<std::string, Tensor> from = teacher.state_dict();
  const int64_t C = teacher.dims().dim;
  Conversion c;
  NoGradGuard no_grad;
  for (const auto& [name, dst] : student.state_dict()) {
    Tensor src;
    bool cut = false;
    if (auto it = from.find(name); it != from.end()) {
      src = it->second;
    } else if (split_source(name, from, C, src)) {
      cut = true;
    } else {
      c.fresh.push_back(name);
      continue;
    }
    TZ_CHECK(src.shape() == dst.shape(), "arena --distill-from: ", name, " is ", dst.shape(), " in the student but ",
             src.shape(), " in the teacher");
    core::copy_(dst, src.to(dst.dtype()));
    ++(cut ? c.split : c.copied);
  }
  // A student mixer that found no teacher projections would start from noise: refuse.
  for (const std::string& n : c.fresh)
    TZ_CHECK(!ends_with(n, "q_proj.weight") && !ends_with(n, "k_proj.weight"), "arena --distill-from: ", n,
             " has no softmax attention in the teacher to come from (its layer's mixer must be the fused-qkv "
             "attention)");
  return c;
}

std::vector<Result> run_distillation(const Options& o, const std::function<void(const std::string&)>& progress) {
  TZ_CHECK(!o.models.empty(), "arena: no models");
  TZ_CHECK(o.steps >= 0 && o.distill_steps >= 0 && o.batch > 0 && o.seq_len > 1,
           "arena --distill-from: steps and distill_steps must be >= 0, batch and seq_len positive");
  if (o.threads > 0) set_num_threads(o.threads);
  train::RunCheckpoint run = train::read_run(o.distill_from);
  std::unique_ptr<models::LM> teacher = train::load_model(run);
  TZ_CHECK(o.seq_len <= teacher->context(), "arena --distill-from: seq_len ", o.seq_len,
           " is longer than the teacher's context ", teacher->context());
  Data data = teacher_data(run, o.seq_len);
  const double teacher_val = evaluate(*teacher, *data.text, o).first;
  if (progress) progress(cat_str("teacher ", o.distill_from, ": validation loss ", teacher_val));

  std::vector<Result> results;
  for (size_t i = 0; i < o.models.size(); ++i) {
    if (int64_t(i) % o.ranks != o.rank) continue;  // another rank's
    const Entry& e = o.models[i];
    Result r;
    r.name = e.name;
    r.teacher_val = teacher_val;
    nn::Config config = run.model;
    config.merge(nn::Config::parse(e.config, "arena model '" + e.name + "'"));
    r.config = config.dump();
    Generator init(o.seed * 7919 + 1);
    auto student = zoo::make_lm(config, init);
    r.params = student->num_parameters();
    Conversion conv = convert_attention(*student, *teacher);
    int64_t mixers = 0;
    visit_feature_mixers(*student, [&](nn::FeatureAttention& f) {
      f.distill = true;
      ++mixers;
    });
    TZ_CHECK(mixers > 0, "arena --distill-from: model '", e.name,
             "' has no feature-map mixer to distill into (e.g. {\"mixer\": \"hedgehog\"})");
    std::tie(r.converted_val, r.kl_before) = evaluate(*student, *data.text, o);
    if (progress)
      progress(cat_str("[", i + 1, "/", o.models.size(), "] ", e.name, ": ", conv.copied, " tensors copied, ",
                       conv.split, " cut from attention, ", conv.fresh.size(), " new; validation loss ",
                       r.converted_val, ", attention KL ", r.kl_before));
    reset_allocator_peak();
    auto t0 = std::chrono::steady_clock::now();
    Generator data_gen(o.seed);
    auto next_batch = [&] { return data.text->sample(data::Split::train, o.batch, o.seq_len, data_gen); };

    // Stage 2: the new parameters against the attention KL, the rest frozen.
    const std::set<std::string> fresh(conv.fresh.begin(), conv.fresh.end());
    nn::NamedTensors trainable;
    for (auto& [name, p] : student->named_parameters())
      if (fresh.count(name)) trainable.emplace_back(name, p);
    if (o.distill_steps > 0 && !trainable.empty()) {
      for (auto& [name, p] : student->named_parameters())
        if (!fresh.count(name)) p.requires_grad_(false);
      train::Fit fit(trainable, {.steps = o.distill_steps, .recipe = o.recipe()});
      fit.run(
          [&] {
            data::Batch b = next_batch();
            nn::AuxLosses aux;
            student->forward({b.inputs}, nullptr, &aux);
            return aux.total();
          },
          {.on_step = [&](const train::StepRecord& s) {
            if (progress && s.step % std::max<int64_t>(o.distill_steps / 5, 1) == 0)
              progress(cat_str("    distill ", s.step, "/", o.distill_steps, "  attention KL ", s.loss));
            return true;
          }});
      for (auto& [name, p] : student->named_parameters()) p.requires_grad_(true);
    }
    std::tie(r.distilled_val, r.kl_after) = evaluate(*student, *data.text, o);

    // Stage 3: everything, with the LM loss.
    visit_feature_mixers(*student, [](nn::FeatureAttention& f) { f.distill = false; });
    if (o.steps > 0) {
      train::Fit fit(student->named_parameters(), {.steps = o.steps, .recipe = o.recipe()});
      double recent = 0;
      int64_t recent_n = 0;
      fit.run(train::batch_loss(*student, next_batch), {.on_step = [&](const train::StepRecord& s) {
                if ((s.step - 1) % o.log_every == 0 || s.step == o.steps) r.curve.emplace_back(s.step, s.loss);
                if (s.step > o.steps - 10) recent += s.loss, ++recent_n;
                if (progress && s.step % std::max<int64_t>(o.steps / 5, 1) == 0)
                  progress(cat_str("    fine-tune ", s.step, "/", o.steps, "  loss ", s.loss));
                return true;
              }});
      r.train_loss = recent / double(std::max<int64_t>(recent_n, 1));
    }
    r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.tokens_per_s = double((o.steps + o.distill_steps) * o.batch * o.seq_len) / std::max(r.wall_s, 1e-9);
    r.peak_mb = double(allocator_stats().peak_bytes) / 1e6;
    r.val_loss[1] = evaluate(*student, *data.text, o).first;
    r.val_accuracy[1] = NAN;
    results.push_back(std::move(r));
  }
  return results;
}

}  // namespace tz::arena
