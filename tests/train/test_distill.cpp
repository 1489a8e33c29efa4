// The arena's distillation mode (train/distill.h): a tiny GPT trained by the tool is the
// teacher. The conversion copies every shared tensor and cuts q, k, v and the output
// projection out of the teacher's attention exactly; distillation lowers the attention KL of
// Hedgehog's learned map and the validation loss with it; the command line reports the
// stages; a student without a feature-map mixer and a missing run are refused by name.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "models/zoo.h"
#include "tests/test_util.h"
#include "tests/train/cli_run.h"
#include "train/distill.h"
#include "train/run_dir.h"

using namespace tz;
using testing::fresh_dir;
using testing::read_file;
using testing::run_cli;

namespace {
// A GPT (dim 32, 2 heads, 1 layer) trained 300 steps on the built-in text (validation loss
// about 2.2 against a unigram entropy of 2.96): the teacher.
const std::string& teacher_dir() {
  static const std::string dir = [] {
    std::string d = fresh_dir("teacher");
    testing::CliRun r = run_cli(
        "train --dim 32 --depth 1 --heads 2 --context 32 --seq-len 32 --batch 16 --builtin-bytes 60000 --steps 300 "
        "--lr 0.003 --warmup 20 --sample 0 --threads 1 --out " +
        d);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    return d;
  }();
  return dir;
}

arena::Options options(const std::string& models) {
  arena::Options o;
  o.distill_from = teacher_dir();
  o.models = arena::mixer_entries(models);
  o.seq_len = 32;
  o.batch = 8;
  o.eval_batches = 4;
  o.warmup = 2;
  o.lr = 0.01;
  o.threads = 1;
  return o;
}
}  // namespace

TEST_CASE("distill: the conversion copies the shared tensors and cuts q, k, v, out from the attention") {
  auto run = train::read_run(teacher_dir());
  auto teacher = train::load_model(run);
  nn::Config c = run.model;
  c.merge(nn::Config::parse(R"({"mixer": "hedgehog"})"));
  Generator gen(9);
  auto student = zoo::make_lm(c, gen);
  arena::Conversion conv = arena::convert_attention(*student, *teacher);
  const auto t = teacher->state_dict(), s = student->state_dict();
  const Tensor& qkv = t.at("layers.0.mixer.qkv.weight");
  CHECK(testing::rel_max(s.at("layers.0.mixer.q_proj.weight"), qkv.narrow(0, 0, 32)) == 0.0);
  CHECK(testing::rel_max(s.at("layers.0.mixer.k_proj.weight"), qkv.narrow(0, 32, 32)) == 0.0);
  CHECK(testing::rel_max(s.at("layers.0.mixer.v_proj.weight"), qkv.narrow(0, 64, 32)) == 0.0);
  CHECK(testing::rel_max(s.at("layers.0.mixer.o_proj.weight"), t.at("layers.0.mixer.out.weight")) == 0.0);
  CHECK(testing::rel_max(s.at("tok_emb.weight"), t.at("tok_emb.weight")) == 0.0);
  // Hedgehog's map (W, b) and PermuteFormer's permutation buffer are all that is new.
  CHECK(conv.split == 8);  // q, k, v, o: weight and bias
  for (const std::string& n : conv.fresh) {
    INFO(n);
    CHECK((n.find("map_weight") != std::string::npos || n.find("map_bias") != std::string::npos ||
           n.find("permutations") != std::string::npos));
  }
  CHECK(conv.copied + conv.split + int64_t(conv.fresh.size()) == int64_t(s.size()));
}

TEST_CASE("distill: Hedgehog's map learns the teacher's attention rows, loss follows") {
  arena::Options o = options("hedgehog");
  o.distill_steps = 60;
  o.steps = 0;
  auto results = arena::run(o);
  REQUIRE(results.size() == 1);
  const arena::Result& r = results[0];
  MESSAGE("teacher val ", r.teacher_val, "; converted ", r.converted_val, " (attention KL ", r.kl_before,
          "); distilled ", r.distilled_val, " (attention KL ", r.kl_after, ")");
  CHECK(r.kl_after < 0.6 * r.kl_before);
  CHECK(r.distilled_val - r.teacher_val < 0.5 * (r.converted_val - r.teacher_val));  // half the gap closed
  CHECK(r.converted_val > r.teacher_val);  // the untrained map is a worse attention than softmax
}

TEST_CASE("distill: the command line prints each stage, wrong students and runs are refused by name") {
  const std::string out = fresh_dir("distill_out");
  testing::CliRun ok = run_cli("arena --distill-from " + teacher_dir() +
                               " --models dijiang --distill-steps 4 --steps 4 --batch 4 --seq-len 32 --threads 1 "
                               "--out " +
                               out);
  REQUIRE_MESSAGE(ok.status == 0, ok.err);
  CHECK(ok.out.find("| teacher val | converted val | attention KL | distilled val |") != std::string::npos);
  CHECK(ok.out.find("| dijiang | ") != std::string::npos);
  CHECK(read_file(out + "/table.md").find("| dijiang | ") != std::string::npos);

  testing::CliRun no_map =
      run_cli("arena --distill-from " + teacher_dir() + " --models retnet --steps 1 --seq-len 32 --threads 1 --out " +
              fresh_dir("distill_bad"));
  CHECK(no_map.status == 1);
  CHECK(no_map.err.find("no feature-map mixer to distill into") != std::string::npos);

  testing::CliRun missing = run_cli("arena --distill-from /nonexistent/run --models hedgehog");
  CHECK(missing.status == 2);
  CHECK(missing.err.find("--distill-from") != std::string::npos);
}
