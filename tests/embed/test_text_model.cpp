// The embedding API (embed/text_model.h, models/weights.h): a run's checkpoint and its
// weights-only export (f32, bf16) load into the same model, generation streams whole UTF-8
// characters, and every bad file is refused with a message naming the path and the problem.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/creation.h"
#include "core/safetensors.h"
#include "data/bpe.h"
#include "embed/text_model.h"
#include "models/weights.h"
#include "models/zoo.h"
#include "tests/test_util.h"
#include "train/run_dir.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace tz;

namespace {
fs::path scratch() {
  fs::path dir = fs::temp_directory_path() / ("tz_test_embed_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

// A run of a few steps (once per process): its directory holds checkpoint.safetensors.
const std::string& tiny_run() {
  static const std::string dir = [] {
    train::TrainOptions o;
    o.model = nn::Config::parse(R"({"dim": 32, "depth": 1, "heads": 2, "context": 32})");
    o.builtin_bytes = 20000;
    o.steps = 3;
    o.batch = 2;
    o.seq_len = 32;
    o.eval_batches = 1;
    o.threads = 1;
    o.out_dir = (scratch() / "run").string();
    fs::remove_all(o.out_dir);
    train::Trainer t(o);
    t.run();
    return o.out_dir;
  }();
  return dir;
}

std::string checkpoint() { return tiny_run() + "/" + train::kCheckpointFile; }

// The run's model exported to `name` with `dtype`.
std::string exported(const std::string& name, models::WeightsDType dtype) {
  const std::string path = (scratch() / name).string();
  models::save_weights(path, *train::load_model(tiny_run()), dtype, {{"source", "test"}});
  return path;
}

Tensor logits_of(models::LM& lm) {
  return lm.forward(std::vector<Tensor>{from_vector(std::vector<int64_t>{84, 104, 101, 32, 100}, {1, 5})});
}
}  // namespace

TEST_CASE("embed: a checkpoint and its f32 export load into the same model, bf16 close at half the size") {
  const std::string f32 = exported("f32.safetensors", models::WeightsDType::f32);
  const std::string bf16 = exported("bf16.safetensors", models::WeightsDType::bf16);
  TextModel from_ckpt = TextModel::load(checkpoint()), from_f32 = TextModel::load(f32),
            from_bf16 = TextModel::load(bf16);
  const Tensor a = logits_of(from_ckpt.lm()), b = logits_of(from_f32.lm()), c = logits_of(from_bf16.lm());
  CHECK(testing::max_abs_diff(a, b) == 0);
  const double bf16_error = testing::rel_rms(c, a);
  MESSAGE("bf16 logits, relative RMS error ", bf16_error);
  CHECK(bf16_error > 0);  // rounded: not the same numbers
  CHECK(bf16_error < 2e-2);
  // Sizes: the checkpoint carries AdamW's two moments besides the weights.
  const double ckpt_mb = double(fs::file_size(checkpoint())) / 1e6, f32_mb = double(fs::file_size(f32)) / 1e6,
               bf16_mb = double(fs::file_size(bf16)) / 1e6;
  MESSAGE("checkpoint ", ckpt_mb, " MB, f32 export ", f32_mb, " MB, bf16 export ", bf16_mb, " MB");
  CHECK(f32_mb < ckpt_mb / 2.8);
  CHECK(bf16_mb < f32_mb * 0.55);
  // The exported file says what it is.
  TensorFile file = load_safetensors(bf16);
  CHECK(file.metadata.at("format") == "tensorzoo-weights");
  CHECK(file.metadata.at("dtype") == "bf16");
  CHECK(file.metadata.at("tokenizer") == "bytes");
  CHECK(file.tensors.count("tok_emb.weight") == 1);
  CHECK(file.file_dtypes.at("tok_emb.weight") == "BF16");
  // Generation: the same tokens from the checkpoint and the f32 export for a seed.
  const SampleOptions o{.max_new_tokens = 30, .temperature = 0.9, .seed = 5};
  CHECK(from_ckpt.generate("The ", o) == from_f32.generate("The ", o));
}

TEST_CASE("embed: generate streams whole UTF-8 characters that add up to what it returns") {
  TextModel model = TextModel::load(checkpoint());
  std::vector<std::string> pieces;
  const SampleOptions o{.max_new_tokens = 60, .temperature = 1.5, .seed = 3};
  const std::string text = model.generate("The ", o, [&](std::string_view piece) {
    pieces.emplace_back(piece);
    return true;
  });
  std::string joined;
  for (const std::string& p : pieces) joined += p;
  CHECK(joined == text);
  const std::vector<int64_t> tokens = model.generate_tokens(model.tokenizer().encode("The "), o);
  CHECK(text == model.tokenizer().decode(tokens));
  // Returning false stops at once.
  int calls = 0;
  const std::string first = model.generate("The ", o, [&](std::string_view) { return ++calls < 3; });
  CHECK(calls == 3);
  CHECK(first.size() < text.size());
}

TEST_CASE("embed: Utf8Pieces holds back a character until its last byte, passes invalid bytes on") {
  Utf8Pieces p;
  const std::string euro = "\xe2\x82\xac", smile = "\xf0\x9f\x98\x80";
  CHECK(p.push("a") == "a");
  CHECK(p.push(euro.substr(0, 1)) == "");
  CHECK(p.push(euro.substr(1, 1)) == "");
  CHECK(p.push(euro.substr(2, 1)) == euro);
  CHECK(p.push(smile.substr(0, 2)) == "");
  CHECK(p.push(smile.substr(2) + "b") == smile + "b");
  CHECK(p.push("\xff") == "\xff");  // never part of a character
  CHECK(p.push("\x80") == "\x80");  // a stray continuation byte
  CHECK(p.push("\xe2"
               "x") ==
        "\xe2"
        "x");  // a lead byte cut short
  CHECK(p.push("\xc3") == "");
  CHECK(p.finish() == "\xc3");  // what is left at the end
  // Any byte sequence comes out whole, in order, one byte at a time or all at once.
  Generator gen(1);
  std::string bytes;
  for (int i = 0; i < 2000; ++i) bytes += char(int(gen.uniform() * 256));
  std::string out;
  for (char c : bytes) out += p.push(std::string(1, c));
  out += p.finish();
  CHECK(out == bytes);
}

TEST_CASE("embed: missing, foreign and damaged model files are refused by name") {
  const fs::path dir = scratch() / "bad";
  fs::create_directories(dir);
  auto refused = [](const std::string& path, const std::string& says) {
    CAPTURE(path);
    CHECK_THROWS_WITH_AS(TextModel::load(path), doctest::Contains(says.c_str()), Error);
  };
  refused((dir / "none.safetensors").string(), "no file '");
  refused(dir.string(), "is a directory");
  std::ofstream(dir / "text.safetensors") << "this is a text file, not a model";
  refused((dir / "text.safetensors").string(), "is not a model file: safetensors:");
  save_safetensors((dir / "plain.safetensors").string(), {{"w", zeros({2})}});
  refused((dir / "plain.safetensors").string(), "not a tensorzoo model: its metadata has no 'format'");
  save_safetensors((dir / "other.safetensors").string(), {{"w", zeros({2})}}, {{"format", "pytorch"}});
  refused((dir / "other.safetensors").string(), "format 'pytorch' is not a model file");
  // A weights file from a later version, with another tokenizer, without its config.
  TensorFile good = load_safetensors(exported("good.safetensors", models::WeightsDType::f32));
  auto variant = [&](const std::string& name, const std::string& key, const std::string& value) {
    auto meta = good.metadata;
    if (value.empty())
      meta.erase(key);
    else
      meta[key] = value;
    const std::string path = (dir / name).string();
    save_safetensors(path, good.tensors, meta);
    return path;
  };
  refused(variant("v2.safetensors", "format_version", "2"), "weights format version '2' is not supported");
  refused(variant("sp.safetensors", "tokenizer", "sentencepiece"),
          "tokenizer 'sentencepiece' is not supported by this build (it reads: bytes, bpe)");
  refused(variant("bpe.safetensors", "tokenizer", "bpe"),
          "the bpe tokenizer is in neither 'tokenizer_json' nor 'tokenizer_file'");
  {  // a BPE whose definition is broken, or whose vocabulary is not the model's
    auto meta = good.metadata;
    meta["tokenizer"] = "bpe";
    meta["tokenizer_json"] = R"({"format": "tensorzoo-bpe", "version": 1})";
    save_safetensors((dir / "bpe_bad.safetensors").string(), good.tensors, meta);
    refused((dir / "bpe_bad.safetensors").string(), "no 'pre_split'");
    meta["tokenizer_json"] = data::BpeTokenizer({{97, 98}}).to_json();
    save_safetensors((dir / "bpe_vocab.safetensors").string(), good.tensors, meta);
    refused((dir / "bpe_vocab.safetensors").string(),
            "the model has a vocabulary of 256 but its tokenizer 'bpe' has 257");
  }
  refused(variant("noconfig.safetensors", "config", ""), "metadata has no 'config'");
  // A tensor missing, and one of the wrong shape: the strict load names them.
  auto tensors = good.tensors;
  tensors.erase("tok_emb.weight");
  save_safetensors((dir / "missing.safetensors").string(), tensors, good.metadata);
  refused((dir / "missing.safetensors").string(), "tok_emb.weight");
  tensors = good.tensors;
  tensors["tok_emb.weight"] = zeros({3, 3});
  save_safetensors((dir / "shape.safetensors").string(), tensors, good.metadata);
  refused((dir / "shape.safetensors").string(), "tok_emb.weight");
  // Bad dtype names, bad sampling options.
  CHECK_THROWS_WITH_AS(models::parse_weights_dtype("f16"), "weights dtype 'f16' is not one of: f32, bf16", Error);
  TextModel model = TextModel::load(checkpoint());
  CHECK_THROWS_WITH_AS(model.generate("The ", {.temperature = -1}), doctest::Contains("temperature must be >= 0"),
                       Error);
  CHECK_THROWS_WITH_AS(model.generate(""), doctest::Contains("prompt must not be empty"), Error);
}

TEST_CASE("embed: bf16 storage rounds to nearest even and keeps Inf and NaN") {
  CHECK(f32_to_bf16(1.0f) == 0x3f80);
  CHECK(bf16_to_f32(0x3f80) == 1.0f);
  CHECK(f32_to_bf16(1.0f + 1.0f / 256) == 0x3f80);                // a tie: to the even mantissa
  CHECK(f32_to_bf16(1.0f + 3.0f / 256) == 0x3f82);                // a tie: up to the even one
  CHECK(f32_to_bf16(1.0f + 1.0f / 256 + 1.0f / 1024) == 0x3f81);  // above the half: up
  CHECK(f32_to_bf16(1.0f + 1.0f / 512) == 0x3f80);                // below the half: down
  CHECK(f32_to_bf16(-2.5f) == 0xc020);
  CHECK(f32_to_bf16(INFINITY) == 0x7f80);
  CHECK(f32_to_bf16(3.4e38f) == 0x7f80);  // past bf16's largest: Inf
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  // Through a file: f64 and i64 stay as they are.
  const std::string path = (scratch() / "mixed.safetensors").string();
  save_safetensors(
      path,
      {{"a", tensor({1.0f, 1.0f / 3, -1e-20f})}, {"b", tensor({1.0 / 3}, DType::f64)}, {"c", tensor({7}, DType::i64)}},
      {}, StoreF32::bf16);
  TensorFile f = load_safetensors(path);
  CHECK(f.file_dtypes.size() == 1);
  CHECK(f.tensors.at("a").dtype() == DType::f32);
  CHECK(f.tensors.at("a").to_vector<float>() ==
        std::vector<float>{1.0f, bf16_to_f32(f32_to_bf16(1.0f / 3)), bf16_to_f32(f32_to_bf16(-1e-20f))});
  CHECK(f.tensors.at("b").to_vector<double>()[0] == 1.0 / 3);
  CHECK(f.tensors.at("c").to_vector<int64_t>()[0] == 7);
}
