// The training loop through the command-line tool, in separate processes: exact resume,
// determinism, checkpoint checks, and one clear line for every bad argument.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/creation.h"
#include "core/safetensors.h"
#include "data/bpe.h"
#include "embed/text_model.h"
#include "tests/test_util.h"
#include "tests/train/cli_run.h"
#include "train/run_dir.h"

namespace fs = std::filesystem;
using namespace tz;
using testing::CliRun;
using testing::fresh_dir;
using testing::read_file;
using testing::run_cli;

namespace {
const std::string kTiny =
    " --dim 32 --depth 1 --heads 2 --context 32 --seq-len 32 --batch 4 --builtin-bytes 60000"
    " --eval-every 4 --log-every 1 --warmup 2 --sample 0 --threads 1";

// The (step, loss, val_loss) columns of a run's log.csv.
std::vector<std::string> losses(const std::string& dir) {
  std::vector<std::string> rows;
  std::istringstream in(read_file(dir + "/log.csv"));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    size_t third = line.find(',', line.find(',', line.find(',') + 1) + 1);
    rows.push_back(line.substr(0, third));
  }
  return rows;
}
}  // namespace

TEST_CASE("resuming in a new process continues bit for bit") {
  std::string whole = fresh_dir("whole"), split = fresh_dir("split");
  CliRun a = run_cli("train" + kTiny + " --steps 8 --out " + whole);
  REQUIRE_MESSAGE(a.status == 0, a.err);
  CliRun b = run_cli("train" + kTiny + " --steps 8 --stop-after 4 --out " + split);
  REQUIRE_MESSAGE(b.status == 0, b.err);
  CHECK(b.out.find("stopping at step 4 of 8") != std::string::npos);
  CliRun c = run_cli("train --resume " + split + " --sample 0");
  REQUIRE_MESSAGE(c.status == 0, c.err);
  CHECK(c.out.find("resuming " + split + " at step 4 of 8") != std::string::npos);
  std::vector<std::string> la = losses(whole), lb = losses(split);
  REQUIRE(la.size() == 8);
  for (size_t i = 0; i < la.size(); ++i) CHECK(la[i] == lb[i]);
  // A new process with the same seed and threads gives identical losses.
  std::string again = fresh_dir("again");
  REQUIRE(run_cli("train" + kTiny + " --steps 8 --out " + again).status == 0);
  CHECK(losses(again) == la);
  // A different seed gives different losses.
  std::string other = fresh_dir("other");
  REQUIRE(run_cli("train" + kTiny + " --steps 8 --seed 2 --out " + other).status == 0);
  CHECK(losses(other) != la);
  // The trained model samples from its checkpoint, reproducibly for a seed.
  CliRun s1 = run_cli("sample --run " + whole + " --tokens 20 --seed 3");
  CliRun s2 = run_cli("sample --run " + whole + " --tokens 20 --seed 3");
  CHECK(s1.status == 0);
  CHECK(s1.out == s2.out);
  CHECK(s1.out.size() == std::string("The ").size() + 20 + 1);
}

TEST_CASE("segment memory trains across segments, evaluates with memory and resumes bit for bit") {
  const std::string memory = R"( --config '{"pos": "rope", "mem_len": 32}')";
  std::string whole = fresh_dir("mem_whole"), split = fresh_dir("mem_split");
  CliRun a = run_cli("train" + kTiny + memory + " --steps 8 --out " + whole);
  REQUIRE_MESSAGE(a.status == 0, a.err);
  REQUIRE(run_cli("train" + kTiny + memory + " --steps 8 --stop-after 4 --out " + split).status == 0);
  CliRun c = run_cli("train --resume " + split + " --sample 0");
  REQUIRE_MESSAGE(c.status == 0, c.err);
  std::vector<std::string> la = losses(whole), lb = losses(split);
  REQUIRE(la.size() == 8);
  CHECK(la == lb);
  CHECK(la[3].back() != ',');  // step 4 has a validation loss
  // The checkpoint holds the memory and where each stream stands.
  TensorFile f = load_safetensors(whole + "/checkpoint.safetensors");
  CHECK(f.tensors.count("data.cursors") == 1);
  CHECK(f.tensors.at("state.memory.mem0").shape() == Shape{4, 32, 32});
  // Decoding from the trained model runs past its context through the memory.
  CliRun s = run_cli("sample --run " + whole + " --tokens 80 --seed 3");
  CHECK(s.status == 0);
  CHECK(s.out.size() == std::string("The ").size() + 80 + 1);
  // mem_len 0 is the plain model: the same losses as without the key.
  std::string plain = fresh_dir("mem_plain"), zero = fresh_dir("mem_zero");
  REQUIRE(run_cli("train" + kTiny + " --steps 4 --out " + plain).status == 0);
  REQUIRE(run_cli("train" + kTiny + R"( --config '{"mem_len": 0}' --steps 4 --out )" + zero).status == 0);
  CHECK(losses(plain) == losses(zero));
}

TEST_CASE("checkpoints carry a format version, and other versions and foreign files are refused") {
  std::string dir = fresh_dir("version");
  REQUIRE(run_cli("train" + kTiny + " --steps 2 --out " + dir).status == 0);
  std::string path = dir + "/checkpoint.safetensors";
  TensorFile f = load_safetensors(path);
  CHECK(f.metadata.at("format_version") == "1");
  CHECK(f.tensors.count("model.tok_emb.weight"));
  CHECK(f.tensors.count("optim.exp_avg.tok_emb.weight"));
  f.metadata["format_version"] = "2";
  save_safetensors(path, f.tensors, f.metadata);
  CHECK_THROWS_WITH_AS(train::Trainer::resume(dir), doctest::Contains("format version 2 is not supported"), Error);
  CliRun r = run_cli("sample --run " + dir);
  CHECK(r.status == 1);
  CHECK(r.err.find("format version 2 is not supported") != std::string::npos);
  // A safetensors file that is not a training checkpoint.
  save_safetensors(path, {{"w", zeros({2})}});
  CHECK_THROWS_WITH_AS(train::load_model(dir), doctest::Contains("metadata has no 'format'"), Error);
  // A truncated file.
  std::string bytes = read_file(path);
  std::ofstream(path, std::ios::binary) << bytes.substr(0, 5);
  CHECK_THROWS_WITH_AS(train::load_model(dir), doctest::Contains("checkpoint.safetensors"), Error);
}

TEST_CASE("bad arguments give one clear line and a non-zero exit") {
  auto one_line = [](const CliRun& r) {
    return !r.err.empty() && r.err.find('\n') == r.err.size() - 1 && r.out.empty();
  };
  CliRun unknown = run_cli("train --stepz 3");
  CHECK(unknown.status == 2);
  CHECK(one_line(unknown));
  CHECK(unknown.err.find("--stepz") != std::string::npos);
  CliRun missing = run_cli("train --data /nonexistent/file.txt");
  CHECK(missing.status == 2);
  CHECK(missing.err.find("/nonexistent/file.txt") != std::string::npos);
  CliRun bad_value = run_cli("train --steps many");
  CHECK(bad_value.status == 2);
  CHECK(one_line(bad_value));
  CliRun no_cmd = run_cli("");
  CHECK(no_cmd.status == 2);
  CliRun bad_config = run_cli("train --config '{\"dimm\": 3}' --steps 1");
  CHECK(bad_config.status == 1);
  CHECK(bad_config.err.find("unknown key 'dimm'") != std::string::npos);
  std::string dir = fresh_dir("conflict");
  REQUIRE(run_cli("train" + kTiny + " --steps 1 --out " + dir).status == 0);
  CliRun conflict = run_cli("train --resume " + dir + " --dim 64");
  CHECK(conflict.status == 2);
  CHECK(conflict.err.find("--dim cannot change a resumed run") != std::string::npos);
  CliRun no_ckpt = run_cli("sample --run " + fs::temp_directory_path().string());
  CHECK(no_ckpt.status == 1);
  CHECK(no_ckpt.err.find("no checkpoint.safetensors in") != std::string::npos);
  CliRun bad_sample = run_cli("sample --run " + dir + " --top-p 0");
  CHECK(bad_sample.status == 1);
  CHECK(bad_sample.err.find("top_p must be in (0, 1]") != std::string::npos);
  CliRun unknown_id = run_cli("check rmsnorm rmsnrom");  // refused before any check runs
  CHECK(unknown_id.status == 1);
  CHECK(one_line(unknown_id));
  CHECK(unknown_id.err.find("unknown variant id 'rmsnrom'") != std::string::npos);
}

TEST_CASE("train keeps an existing run unless --force, SIGTERM stops with a checkpoint, --version, typos") {
  std::string dir = fresh_dir("kept");
  REQUIRE(run_cli("train" + kTiny + " --steps 2 --out " + dir).status == 0);
  const std::string log = read_file(dir + "/log.csv");
  CliRun again = run_cli("train" + kTiny + " --steps 3 --out " + dir);
  CHECK(again.status == 2);
  CHECK(again.err.find("already holds files") != std::string::npos);
  CHECK(again.err.find("--resume " + dir) != std::string::npos);
  CHECK(again.err.find("--force") != std::string::npos);
  CHECK(read_file(dir + "/log.csv") == log);  // nothing touched
  CliRun forced = run_cli("train" + kTiny + " --steps 3 --force --out " + dir);
  REQUIRE(forced.status == 0);
  CHECK(losses(dir).size() == 3);                                    // a new log, not the old one continued
  CHECK(run_cli("train --resume " + dir + " --force").status == 2);  // --force is not a resume flag

  // SIGTERM mid-run: the step ends, the checkpoint is written and loads.
  std::string term = fresh_dir("term");
  const std::string out = term + ".out";
  const int rc = std::system(("(" + std::string(TZ_BINARY_DIR) + "/tensorzoo train" + kTiny + " --steps 100000 --out " +
                              term + " > " + out + " 2>&1 & pid=$!; " +
                              // once a step is logged (the handler is set by then), at most 60 s
                              "for i in $(seq 600); do [ \"$(wc -l < " + term +
                              "/log.csv 2>/dev/null || echo 0)\" -ge 2 ] && break; sleep 0.1; done; " +
                              "kill -TERM $pid; wait $pid)")
                                 .c_str());
  CHECK(WIFEXITED(rc));
  CHECK(WEXITSTATUS(rc) == 0);
  CHECK(read_file(out).find("stopping at step") != std::string::npos);
  CHECK(run_cli("sample --run " + term + " --tokens 5").status == 0);

  CliRun version = run_cli("--version");
  CHECK(version.status == 0);
  CHECK(version.out.rfind("tensorzoo ", 0) == 0);
  CliRun typo = run_cli("trian --steps 3");
  CHECK(typo.status == 2);
  CHECK(typo.err.find("unknown command 'trian'; did you mean 'train'?") != std::string::npos);
}

TEST_CASE("--save-every: a run killed outright keeps its last periodic checkpoint, which resumes") {
  const std::string dir = fresh_dir("save_every");
  // SIGKILL (an out-of-memory kill) gives no chance to save: only the periodic checkpoints
  // remain. Killed once step 7 is logged: steps 3 and 6 were saved by then.
  std::string flags = kTiny;
  flags.replace(flags.find(" --eval-every 4"), 15, " --eval-every 100000");  // no saves with evaluations
  // Appended piece by piece: one long chain of + trips GCC 12's -Wrestrict (a false positive).
  std::string command = "(";
  command += TZ_BINARY_DIR;
  command += "/tensorzoo train" + flags + " --steps 100000 --save-every 3 --out " + dir;
  command += " > /dev/null 2>&1 & pid=$!; for i in $(seq 600); do [ \"$(wc -l < " + dir;
  command += "/log.csv 2>/dev/null || echo 0)\" -ge 8 ] && break; sleep 0.1; done; kill -KILL $pid; wait $pid; true)";
  const int rc = std::system(command.c_str());
  REQUIRE(WIFEXITED(rc));
  const TensorFile f = load_safetensors(dir + "/checkpoint.safetensors");
  const int64_t step = std::stoll(f.metadata.at("step"));
  CAPTURE(step);
  CHECK(step >= 6);
  CHECK(step % 3 == 0);
  CHECK(losses(dir).size() >= 7);
  // It loads and resumes (the log cut back to the checkpoint), and the option is kept.
  CHECK(run_cli("sample --run " + dir + " --tokens 5").status == 0);
  CliRun resumed = run_cli("train --resume " + dir + " --steps " + std::to_string(step + 2) + " --sample 0");
  REQUIRE_MESSAGE(resumed.status == 0, resumed.err);
  CHECK(losses(dir).size() == size_t(step + 2));
  CHECK(train::read_run(dir).options.save_every == 3);
  // Out of range: one line naming the flag.
  CliRun bad = run_cli("train --save-every -1");
  CHECK(bad.status == 2);
  CHECK(bad.err.find("--save-every") != std::string::npos);
}

TEST_CASE("resuming with more steps continues on the schedule's tail, or re-plans it with --replan") {
  // The lr column of log.csv by step.
  auto lrs = [](const std::string& dir) {
    std::map<int64_t, double> out;
    std::istringstream in(read_file(dir + "/log.csv"));
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::vector<std::string> f;
      std::stringstream ss(line);
      for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
      out[std::stoll(f[0])] = std::stod(f[3]);
    }
    return out;
  };
  const std::string tail = fresh_dir("tail"), replan = fresh_dir("replan");
  for (const std::string& d : {tail, replan}) REQUIRE(run_cli("train" + kTiny + " --steps 8 --out " + d).status == 0);
  CliRun kept = run_cli("train --resume " + tail + " --steps 16");
  REQUIRE(kept.status == 0);
  CHECK(kept.out.find("the schedule as planned for 8 steps, then its final lr") != std::string::npos);
  REQUIRE(run_cli("train --resume " + replan + " --steps 16 --replan").status == 0);
  const auto a = lrs(tail), b = lrs(replan);
  REQUIRE((a.count(8) && a.count(9) && a.count(16) && b.count(9)));
  CHECK(a.at(9) == doctest::Approx(a.at(8)).epsilon(1e-6));  // no jump: the final rate goes on
  CHECK(a.at(16) == doctest::Approx(a.at(8)).epsilon(1e-6));
  CHECK(b.at(9) > 1.5 * a.at(8));  // re-planned: back up the cosine
  CHECK(run_cli("train" + kTiny + " --steps 2 --replan --out " + fresh_dir("replan_new")).status == 2);
}

TEST_CASE("eval scores every window of a text: loss, perplexity and bits per byte agree, bad input is named") {
  const std::string dir = fresh_dir("eval_run");
  REQUIRE(run_cli("train" + kTiny + " --steps 4 --out " + dir).status == 0);
  CliRun own = run_cli("eval --run " + dir);
  REQUIRE_MESSAGE(own.status == 0, own.err);
  CHECK(own.out.find("the run's validation split") != std::string::npos);
  CHECK(own.out.find("100%") != std::string::npos);
  double loss = 0, ppl = 0, bits = 0;
  long long tokens = 0, bytes = 0;
  const size_t at = own.out.find("tokens ", own.out.rfind("\ntokens") + 1);
  REQUIRE(std::sscanf(own.out.c_str() + at,
                      "tokens %lld | bytes %lld | loss %lf nats/token | perplexity %lf | %lf bits/byte", &tokens,
                      &bytes, &loss, &ppl, &bits) == 5);
  CHECK(tokens % 32 == 0);  // whole windows of the run's seq_len
  CHECK(bytes == tokens);   // a byte-level run
  CHECK(ppl == doctest::Approx(std::exp(loss)).epsilon(1e-3));
  CHECK(bits == doctest::Approx(loss / std::log(2.0)).epsilon(1e-3));
  const std::string text = dir + "/short.txt";
  std::ofstream(text) << "far too short";
  CliRun too_short = run_cli("eval --run " + dir + " --data " + text);
  CHECK(too_short.status == 1);
  CHECK(too_short.err.find("a window of --seq-len 32 needs 33") != std::string::npos);
  CHECK(run_cli("eval --run " + dir + " --seq-len 33").status == 2);  // beyond the context
}

TEST_CASE("train --tokenizer bpe: saved with the run, used by sample, eval, resume, export and TextModel") {
  const std::string dir = fresh_dir("bpe_run"), text = dir + ".txt";
  {
    std::ofstream out(text);
    const char* words[] = {"dog",    "runs",  "to",     "the",   "river", "and",  "cat",    "sleeps", "by",    "fire",
                           "old",    "green", "house",  "under", "quiet", "moon", "bright", "water",  "stone", "sings",
                           "across", "field", "slowly", "over",  "hills", "with", "friend", "bread",  "lamp",  "wind"};
    uint32_t r = 1;
    for (int i = 0; i < 400; ++i) {
      out << "The";
      for (int k = 0; k < 9; ++k) out << ' ' << words[((r = r * 1103515245u + 12345u) >> 16) % 30];
      out << ' ' << i * 37 << ".\n";
    }
  }
  const std::string tiny_bpe = kTiny + " --tokenizer bpe --vocab 320 --data " + text;
  CliRun trained = run_cli("train" + tiny_bpe + " --steps 4 --out " + dir);
  REQUIRE_MESSAGE(trained.status == 0, trained.err);
  CHECK(trained.out.find("tokenizer: bpe 64/64 merges") != std::string::npos);
  CHECK(trained.out.find("vocab=320") != std::string::npos);  // the model follows the tokenizer
  CHECK(trained.out.find("bits/byte") != std::string::npos);
  REQUIRE(fs::exists(dir + "/tokenizer.json"));
  const train::RunCheckpoint run = train::read_run(dir);
  CHECK(run.tokenizer->kind() == "bpe");
  CHECK(run.tokenizer->vocab_size() == 320);
  CHECK(run.file.metadata.at("tokenizer_file") == "tokenizer.json");
  // The run's tokenizer is the BPE learned from the training split of the text.
  const std::string all = read_file(text);
  const auto learned = data::BpeTokenizer::train(
      std::string_view(all).substr(0, size_t(data::TextDataset::train_bytes(int64_t(all.size()), 0.1))),
      {.vocab_size = 320});
  CHECK(run.tokenizer->to_json() == learned.to_json());

  CliRun sampled = run_cli("sample --run " + dir + " --prompt 'The dog' --tokens 5 --temperature 0");
  REQUIRE_MESSAGE(sampled.status == 0, sampled.err);
  CHECK(sampled.out.rfind("The dog", 0) == 0);
  // eval: bits per byte are the total loss over the bytes the scored tokens cover.
  CliRun ev = run_cli("eval --run " + dir);
  REQUIRE_MESSAGE(ev.status == 0, ev.err);
  double loss = 0, ppl = 0, bits = 0;
  long long tokens = 0, bytes = 0;
  const size_t at = ev.out.find("tokens ", ev.out.rfind("\ntokens") + 1);
  REQUIRE(std::sscanf(ev.out.c_str() + at,
                      "tokens %lld | bytes %lld | loss %lf nats/token | perplexity %lf | %lf bits/byte", &tokens,
                      &bytes, &loss, &ppl, &bits) == 5);
  CHECK(bytes > 2 * tokens);  // BPE tokens hold several bytes
  CHECK(bits == doctest::Approx(loss * double(tokens) / double(bytes) / std::log(2.0)).epsilon(1e-3));
  // Resume reads the saved tokenizer; the tokenizer cannot change.
  REQUIRE(run_cli("train --resume " + dir + " --steps 6").status == 0);
  CHECK(run_cli("train --resume " + dir + " --steps 8 --vocab 400").status == 2);
  // Export carries the tokenizer inside the weights file; TextModel and sample --model read it.
  const std::string model = dir + "/model.safetensors";
  REQUIRE(run_cli("export --run " + dir + " --out " + model).status == 0);
  const TensorFile exported = load_safetensors(model);
  CHECK(exported.metadata.at("tokenizer") == "bpe");
  CHECK(exported.metadata.at("tokenizer_json") == run.tokenizer->to_json());
  TextModel m = TextModel::load(model);
  CHECK(m.tokenizer().kind() == "bpe");
  CHECK(m.tokenizer().encode("The dog runs") == run.tokenizer->encode("The dog runs"));
  const SampleOptions greedy{.max_new_tokens = 6, .temperature = 0};
  CHECK(m.generate("The dog", greedy) == TextModel::load(dir + "/checkpoint.safetensors").generate("The dog", greedy));
  CHECK(run_cli("sample --model " + model + " --prompt 'The cat' --tokens 3").status == 0);

  // A run whose tokenizer file is missing or replaced is refused, naming the file.
  const std::string broken = fresh_dir("bpe_broken");
  fs::copy(dir, broken);
  fs::remove(broken + "/tokenizer.json");
  CliRun missing = run_cli("eval --run " + broken);
  CHECK(missing.status == 1);
  CHECK(missing.err.find(broken + "/tokenizer.json, which is missing") != std::string::npos);
  std::ofstream(broken + "/tokenizer.json") << data::BpeTokenizer({{97, 98}}).to_json();
  CliRun replaced = run_cli("sample --run " + broken);
  CHECK(replaced.status == 1);
  CHECK(replaced.err.find("tokenizer.json is not the tokenizer") != std::string::npos);
  CHECK(run_cli("train --resume " + broken + " --steps 8").status == 1);
}

TEST_CASE("train refuses an unknown tokenizer, naming the nearest, and a vocabulary out of range") {
  const std::string dir = fresh_dir("bad_tokenizer");
  CliRun typo = run_cli("train" + kTiny + " --tokenizer bep --out " + dir);
  CHECK(typo.status == 2);
  CHECK(typo.err.find("tokenizer 'bep' is not one of: bytes, bpe (did you mean 'bpe'?)") != std::string::npos);
  CliRun small = run_cli("train" + kTiny + " --tokenizer bpe --vocab 100 --out " + dir);
  CHECK(small.status == 1);
  CHECK(small.err.find("vocab must be in [256, 262144] for tokenizer bpe") != std::string::npos);
  CHECK(run_cli("train" + kTiny + " --tokenizer bpe --vocab 100000000 --out " + dir).status == 1);
  CliRun bytes = run_cli("train" + kTiny + " --vocab 1000 --out " + dir);
  CHECK(bytes.status == 1);
  CHECK(bytes.err.find("a larger vocabulary needs tokenizer bpe") != std::string::npos);
  CHECK(!fs::exists(dir + "/checkpoint.safetensors"));
}

TEST_CASE("inspect shows a checkpoint's tensors and metadata, runs lists a directory's runs") {
  const std::string root = fresh_dir("runs_root"), dir = root + "/tiny";
  REQUIRE(run_cli("train" + kTiny + " --steps 4 --out " + dir).status == 0);
  CliRun inspect = run_cli("inspect " + dir + "/checkpoint.safetensors --filter tok_emb");
  REQUIRE(inspect.status == 0);
  CHECK(inspect.out.find("| model.tok_emb.weight | f32 | [256, 32] | 8192 |") != std::string::npos);
  CHECK(inspect.out.find("format: tensorzoo-train-checkpoint") != std::string::npos);
  CliRun not_st = run_cli("inspect " + dir + "/log.csv");
  CHECK(not_st.status == 1);
  CHECK(not_st.err.find("log.csv") != std::string::npos);
  CliRun runs = run_cli("runs " + root);
  REQUIRE(runs.status == 0);
  CHECK(runs.out.find("| tiny | 4/4 | dim 32, depth 1, heads 2, vanilla_mha |") != std::string::npos);
  CHECK(run_cli("runs " + root + "/nothing").status == 1);
}

TEST_CASE("docs/variants.md is the registry's current list (regenerate: tensorzoo docs --out docs/variants.md)") {
  CliRun r = run_cli("docs");
  REQUIRE(r.status == 0);
  CHECK_MESSAGE(r.out == read_file(std::string(TZ_SOURCE_DIR) + "/docs/variants.md"),
                "docs/variants.md is stale: run `build/tensorzoo docs --out docs/variants.md`");
}
