// Quantized model files (models/quantize.h): what `tensorzoo quantize` writes, that the
// loaders keep the linear weights in int8 / bf16 (no f32 copy), that the quantized model
// computes what its dequantized weights say, decodes as it prefills, refuses training, and
// loads through sample, eval, tz::TextModel and the C API.
#include <unistd.h>

#include <filesystem>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/safetensors.h"
#include "embed/text_model.h"
#include "models/block.h"
#include "models/decode_plan.h"
#include "models/generate.h"
#include "models/quantize.h"
#include "models/weights.h"
#include "nn/ffn/kv_memory.h"
#include "tensorzoo_c.h"
#include "tests/test_util.h"
#include "tests/train/cli_run.h"
#include "train/run_dir.h"

namespace fs = std::filesystem;
using namespace tz;
using testing::CliRun;
using testing::fresh_dir;
using testing::run_cli;

namespace {

// A run of a few steps (once per process), through the tool.
const std::string& tiny_run() {
  static const std::string dir = [] {
    const std::string d = fresh_dir("quant_run");
    CliRun r = run_cli(
        "train --dim 64 --depth 2 --heads 2 --context 48 --seq-len 48 --batch 2 --steps 4 "
        "--builtin-bytes 20000 --sample 0 --threads 1 --out " +
        d);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    return d;
  }();
  return dir;
}

std::string quantized_file(QuantScheme scheme) {
  const std::string path =
      (testing::cli_scratch() / cat_str("model-", quant_scheme_name(scheme), ".safetensors")).string();
  models::save_quantized(path, *train::load_model(tiny_run()), scheme, {{"source", "test"}});
  return path;
}

Tensor ids_of(const std::vector<int64_t>& v) { return from_vector(v, {1, int64_t(v.size())}); }
const std::vector<int64_t> kText = {84, 104, 101, 32, 100, 111, 103, 115, 32, 114, 117, 110};

}  // namespace

TEST_CASE("quantize: the file holds int8 or bf16 linear weights, the model keeps them so") {
  std::unique_ptr<models::LM> f32 = train::load_model(tiny_run());
  const int64_t linears = int64_t(models::linear_layers(*f32).size());
  REQUIRE(linears == 2 * 4);  // per block: qkv, out, fc, proj; the head is tied
  for (QuantScheme scheme : {QuantScheme::q8_0, QuantScheme::bf16}) {
    const bool q8 = scheme == QuantScheme::q8_0;
    CAPTURE(q8);
    const std::string path = quantized_file(scheme);
    TensorFile f = load_safetensors(path, /*keep_raw=*/true);
    CHECK(f.metadata.at("quantization") == quant_scheme_name(scheme));
    CHECK(f.metadata.at("format") == "tensorzoo-weights");
    CHECK(f.metadata.count("config") == 1);
    CHECK(f.raw.size() == size_t(linears));
    const RawTensor& qkv = f.raw.at("layers.0.mixer.qkv.weight");
    CHECK(qkv.dtype == (q8 ? "I8" : "BF16"));
    CHECK(qkv.shape == Shape{192, 64});
    CHECK(f.tensors.count("layers.0.mixer.qkv.weight_scales") == size_t(q8));
    if (q8) CHECK(f.tensors.at("layers.0.ffn.proj.weight_scales").shape() == Shape{64, 256 / 32});
    CHECK(f.tensors.at("tok_emb.weight").dtype() == DType::f32);  // embeddings stay f32

    // Loaded: every Linear holds its quantized weight and no f32 one, and the parameters
    // (the resident f32 tensors) lost exactly those weights.
    std::unique_ptr<models::LM> q = models::load_lm(path);
    int64_t quantized = 0;
    for (auto& [name, lin] : models::linear_layers(*q)) {
      CHECK(!lin->weight.defined());
      REQUIRE(lin->quantized());
      CHECK(lin->quantized()->scheme() == scheme);
      ++quantized;
    }
    CHECK(quantized == linears);
    int64_t lin_params = 0;
    for (auto& [name, lin] : models::linear_layers(*f32)) lin_params += lin->weight.numel();
    CHECK(q->num_parameters() == f32->num_parameters() - lin_params);
  }
}

TEST_CASE("quantize: the model computes with its dequantized weights, and decodes as it prefills") {
  std::unique_ptr<models::LM> f32 = train::load_model(tiny_run());
  NoGradGuard no_grad;
  const Tensor ref = f32->forward({ids_of(kText)});
  for (QuantScheme scheme : {QuantScheme::q8_0, QuantScheme::bf16}) {
    const bool q8 = scheme == QuantScheme::q8_0;
    CAPTURE(q8);
    std::unique_ptr<models::LM> q = models::load_lm(quantized_file(scheme));
    // The same model with f32 weights set to the dequantized ones: a batch of 2 x 30 = 60
    // rows runs the GEMM on dequantized tiles, so the two agree to f32 rounding.
    std::unique_ptr<models::LM> deq = train::load_model(tiny_run());
    for (auto& [name, lin] : models::linear_layers(*q)) {
      for (auto& [n2, l2] : models::linear_layers(*deq))
        if (n2 == name) core::copy_(l2->weight, lin->quantized()->dequantize());
    }
    Generator gen(5);
    const Tensor batch = randint(0, 256, {2, 30}, gen);
    CHECK(testing::rel_rms(q->forward({batch}), deq->forward({batch})) < 1e-5);
    // A prompt of 12 rows runs the GEMV kernel 4 rows at a time: for q8_0 it rounds x too.
    const Tensor a = q->forward({ids_of(kText)}), b = deq->forward({ids_of(kText)});
    CHECK(testing::rel_rms(a, b) < (q8 ? 2e-2 : 1e-5));
    const double err = testing::rel_rms(a, ref);
    MESSAGE(std::string(quant_scheme_name(scheme)), " logits against f32: relative RMS ", err);
    CHECK(err > 0);
    CHECK(err < (q8 ? 2e-2 : 5e-3));

    // Decoding one token at a time (M = 1: the GEMV kernels; q8_0 quantizes x too) follows
    // the prefill's logits.
    models::Model::State st = q->make_state(1, int64_t(kText.size()));
    std::vector<Tensor> steps;
    for (int64_t t : kText) steps.push_back(q->forward({ids_of({t})}, &st));
    const Tensor stepped = cat(steps, 1);
    CHECK(testing::rel_rms(stepped, a) < (q8 ? 2e-2 : 1e-5));
    // The decode plan reads the quantized weights as the step form does: the same tokens.
    CHECK(models::DecodePlan::why_not(*q) == "");
    models::SampleOptions o{.max_new_tokens = 8, .temperature = 0.0};
    const std::vector<int64_t> planned = models::generate(*q, {84, 104}, o);
    o.decode_plan = false;
    CHECK(planned.size() == 8);
    CHECK(models::generate(*q, {84, 104}, o) == planned);
  }
}

TEST_CASE("quantize: a quantized model refuses training and gradients, by name") {
  std::unique_ptr<models::LM> q = models::load_lm(quantized_file(QuantScheme::q8_0));
  // With gradients on, the embedding's output requires grad: no gradient can flow on.
  CHECK_THROWS_WITH_AS(q->forward({ids_of(kText)}),
                       doctest::Contains("no gradient flows through weights stored quantized"), Error);
  q->train();
  NoGradGuard no_grad;
  CHECK_THROWS_WITH_AS(q->forward({ids_of(kText)}), doctest::Contains("for inference only"), Error);
  // Code that reads a weight other than through forward (here the FFN memory probe) names
  // itself and the layer instead of meeting an empty tensor.
  q->eval();
  const auto* mlp = dynamic_cast<const nn::MLP*>(q->layers->at<models::Block>(0)->ffn.get());
  REQUIRE(mlp);
  CHECK_THROWS_WITH_AS(nn::memory_keys(*mlp),
                       doctest::Contains("memory_keys reads the weight of Linear(64 -> 256, bias, q8_0) directly"),
                       Error);
}

TEST_CASE("quantize: damaged quantized files are refused by name") {
  const std::string good = quantized_file(QuantScheme::q8_0);
  TensorFile f = load_safetensors(good, true);
  const std::string bad = (testing::cli_scratch() / "bad.safetensors").string();
  auto refused = [&](const std::string& what) {
    CHECK_THROWS_WITH_AS(models::load_lm(bad), doctest::Contains(what.c_str()), Error);
  };
  {  // scales of the wrong shape
    std::map<std::string, Tensor> t = f.tensors;
    t["layers.1.ffn.fc.weight_scales"] = zeros({3, 2});
    save_safetensors(bad, t, f.metadata, StoreF32::f32, f.raw);
    refused("q8_0 scales must be f32 [256, 2], got f32 [3, 2]");
  }
  {  // scales missing
    std::map<std::string, Tensor> t = f.tensors;
    t.erase("layers.1.ffn.fc.weight_scales");
    save_safetensors(bad, t, f.metadata, StoreF32::f32, f.raw);
    refused("'layers.1.ffn.fc.weight' has no scales");
  }
  {  // int8 weights without the quantization metadata
    std::map<std::string, std::string> meta = f.metadata;
    meta.erase("quantization");
    save_safetensors(bad, f.tensors, meta, StoreF32::f32, f.raw);
    refused("only a quantized model file holds");
  }
  {  // an unknown scheme
    std::map<std::string, std::string> meta = f.metadata;
    meta["quantization"] = "q4_k";
    save_safetensors(bad, f.tensors, meta, StoreF32::f32, f.raw);
    refused("'q4_k' is not one of: q8_0 (int8), bf16");
  }
  {  // a quantized tensor that is no Linear's weight
    std::map<std::string, RawTensor> raw = f.raw;
    raw["tok_emb.weight"] = raw.at("layers.0.mixer.out.weight");
    std::map<std::string, Tensor> t = f.tensors;
    t["tok_emb.weight_scales"] = t.at("layers.0.mixer.out.weight_scales");
    t.erase("tok_emb.weight");
    save_safetensors(bad, t, f.metadata, StoreF32::f32, raw);
    refused("'tok_emb.weight' is not the weight of a Linear layer");
  }
}

TEST_CASE("quantize command: int8 and bf16 files for sample, eval, TextModel and the C API") {
  const std::string run = tiny_run();
  const std::string q8 = run + "/model-int8.safetensors", bf16 = (testing::cli_scratch() / "b.safetensors").string();
  CliRun a = run_cli("quantize --run " + run + " --to int8");
  REQUIRE_MESSAGE(a.status == 0, a.err);
  CHECK(a.out.find("quantized:  " + q8) != std::string::npos);
  CHECK(a.out.find("8 linear weights in q8_0") != std::string::npos);
  CHECK(a.out.find("validation loss on 8 of ") != std::string::npos);
  CHECK(a.out.find("logits differ from f32 by") != std::string::npos);
  CliRun b = run_cli("quantize --run " + run + " --to bf16 --out " + bf16);
  REQUIRE_MESSAGE(b.status == 0, b.err);
  CHECK(fs::file_size(q8) < fs::file_size(bf16));

  CliRun s = run_cli("sample --model " + q8 + " --tokens 20 --seed 2");
  CHECK(s.status == 0);
  CHECK(s.out.size() == std::string("The ").size() + 20 + 1);
  CliRun e = run_cli("eval --run " + run + " --model " + q8 + " --seq-len 32");
  CHECK_MESSAGE(e.status == 0, e.err);
  CHECK(e.out.find("eval: " + q8) != std::string::npos);
  CHECK(e.out.find("| perplexity") != std::string::npos);

  TextModel m = TextModel::load(bf16);
  CHECK(m.generate("The ", {.max_new_tokens = 10, .seed = 1}).size() >= 10);
  tz_model* cm = nullptr;
  REQUIRE(tz_model_load(q8.c_str(), &cm) == TZ_OK);
  tz_model_free(cm);

  CliRun bad = run_cli("quantize --run " + run + " --to q4");
  CHECK(bad.status == 2);
  CHECK(bad.err.find("q4 not in {int8,q8_0,bf16}") != std::string::npos);
  CliRun itself = run_cli("quantize --run " + run + " --to int8 --out " + run + "/checkpoint.safetensors");
  CHECK(itself.status == 1);
  CHECK(itself.err.find("is the run's checkpoint itself") != std::string::npos);
}
