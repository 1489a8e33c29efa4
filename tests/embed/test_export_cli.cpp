// `tensorzoo export` and `tensorzoo sample --model` in new processes: the weights-only file
// and its sizes, bf16, and one clear line for each bad argument.
#include <filesystem>

#include "core/safetensors.h"
#include "tests/test_util.h"
#include "tests/train/cli_run.h"

namespace fs = std::filesystem;
using namespace tz;
using testing::CliRun;
using testing::fresh_dir;
using testing::run_cli;

TEST_CASE("export: weights and config alone, f32 or bf16, loaded by sample --model") {
  const std::string run = fresh_dir("export_run");
  REQUIRE(run_cli("train --dim 32 --depth 1 --heads 2 --context 32 --seq-len 32 --batch 2 --steps 3 "
                  "--builtin-bytes 20000 --sample 0 --threads 1 --out " +
                  run)
              .status == 0);
  const std::string f32 = run + "/model.safetensors", bf16 = run + "/model_bf16.safetensors";
  CliRun a = run_cli("export --run " + run + " --out " + f32);
  REQUIRE_MESSAGE(a.status == 0, a.err);
  CHECK(a.out.find("checkpoint: " + run + "/checkpoint.safetensors (step 3") != std::string::npos);
  CHECK(a.out.find("weights:    " + f32) != std::string::npos);
  CliRun b = run_cli("export --run " + run + " --out " + bf16 + " --dtype bf16");
  REQUIRE_MESSAGE(b.status == 0, b.err);
  const auto ckpt = fs::file_size(run + "/checkpoint.safetensors");
  CHECK(fs::file_size(f32) * 28 < ckpt * 10);                  // under 1/2.8 of the checkpoint: no moments
  CHECK(fs::file_size(bf16) * 100 < fs::file_size(f32) * 55);  // about half again
  TensorFile f = load_safetensors(f32);
  for (const auto& [name, t] : f.tensors) CHECK(name.rfind("optim.", 0) != 0);
  // The run and both files sample; the run and the f32 file give the same text for a seed.
  CliRun from_run = run_cli("sample --run " + run + " --tokens 20 --seed 2");
  CliRun from_f32 = run_cli("sample --model " + f32 + " --tokens 20 --seed 2");
  CliRun from_bf16 = run_cli("sample --model " + bf16 + " --tokens 20 --seed 2");
  CHECK(from_run.status == 0);
  CHECK(from_f32.out == from_run.out);
  CHECK(from_bf16.status == 0);
  CHECK(from_bf16.out.size() == std::string("The ").size() + 20 + 1);
  // A run's checkpoint is a model file too.
  CHECK(run_cli("sample --model " + run + "/checkpoint.safetensors --tokens 20 --seed 2").out == from_run.out);
  CliRun shown = run_cli("inspect " + bf16 + " --filter tok_emb");
  CHECK(shown.out.find("| tok_emb.weight | bf16 | [256, 32] | 8192 | 0.016 |") != std::string::npos);

  // Bad arguments: one line each, naming the problem.
  CliRun dtype = run_cli("export --run " + run + " --out x.safetensors --dtype f16");
  CHECK(dtype.status == 2);
  CHECK(dtype.err.find("f16 not in {f32,bf16}") != std::string::npos);
  CliRun no_run = run_cli("export --run /nonexistent/run --out x.safetensors");
  CHECK(no_run.status == 2);
  CHECK(no_run.err.find("/nonexistent/run") != std::string::npos);
  CliRun itself = run_cli("export --run " + run + " --out " + run + "/checkpoint.safetensors");
  CHECK(itself.status == 1);
  CHECK(itself.err.find("is the run's checkpoint itself") != std::string::npos);
  CliRun empty_dir = run_cli("export --run " + fresh_dir("export_empty") + " --out x.safetensors");
  CHECK(empty_dir.status != 0);
  CliRun neither = run_cli("sample --tokens 5");
  CHECK(neither.status == 2);
  CHECK(neither.err.find("give --run DIR or --model FILE") != std::string::npos);
  CliRun both = run_cli("sample --run " + run + " --model " + f32);
  CHECK(both.status == 2);
  CliRun missing = run_cli("sample --model /nonexistent/model.safetensors");
  CHECK(missing.status == 1);
  CHECK(missing.err.find("no file '/nonexistent/model.safetensors'") != std::string::npos);
}
