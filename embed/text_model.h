// The embedding API: a trained language model as an application uses it. Load a model file,
// turn text into tokens and back, generate with the output streamed as it comes:
//
//   tz::set_num_threads(2);
//   tz::set_wait_policy(tz::WaitPolicy::passive);  // idle threads sleep (core/parallel.h)
//   tz::TextModel model = tz::TextModel::load("model.safetensors");
//   model.generate("The ", {.max_new_tokens = 100, .temperature = 0.8, .seed = 1},
//                  [](std::string_view text) { std::cout << text << std::flush; return true; });
//
// A model file is either what `tensorzoo export --run DIR --out model.safetensors` writes (the
// weights alone, f32 or bf16) or a run's full checkpoint.safetensors (models/weights.h).
// Threads: a TextModel is used by one thread at a time, and different models may generate in
// different threads at once (the thread count and random generator are each thread's own).
// The same from C: tensorzoo_c.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer.h"
#include "models/generate.h"
#include "models/lm.h"

namespace tz {

// max_new_tokens, temperature (0 = greedy), top_k, top_p, seed: as `tensorzoo sample`.
using SampleOptions = models::SampleOptions;

// Text <-> token ids, as the model was trained (data/tokenizer.h): bytes (one token per byte,
// vocabulary 256) or a BPE learned from the run's text (data/bpe.h), as its file names it.
// encode and decode are safe from several threads at once.
using Tokenizer = data::Tokenizer;

class TextModel {
 public:
  // Reads a model file and builds the model, ready to generate. Errors (tz::Error) name the
  // path and what is wrong: no such file, a directory, not a safetensors file, not a model,
  // an unsupported format, tokenizer or config, missing or misshapen weights.
  static TextModel load(const std::string& path);

  // Generates after `prompt` (at least one token), calling on_text with the text as it comes,
  // in pieces of whole UTF-8 characters (a byte that can never complete one is passed on as
  // it is); on_text returning false stops. Returns all the generated text.
  std::string generate(std::string_view prompt, const SampleOptions& options = {},
                       const std::function<bool(std::string_view text)>& on_text = nullptr);
  // The same in tokens: on_token(id) as each comes; returns the new tokens.
  std::vector<int64_t> generate_tokens(const std::vector<int64_t>& prompt, const SampleOptions& options = {},
                                       const std::function<bool(int64_t)>& on_token = nullptr);

  const Tokenizer& tokenizer() const { return *tokenizer_; }
  models::LM& lm() { return *lm_; }
  int64_t context() const { return lm_->context(); }
  std::string describe() const { return lm_->describe(); }
  const std::string& path() const { return path_; }

 private:
  TextModel(std::unique_ptr<models::LM> lm, std::shared_ptr<const Tokenizer> tokenizer, std::string path);
  std::unique_ptr<models::LM> lm_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::string path_;
};

// Cuts a byte stream into whole UTF-8 characters: push() appends bytes and returns what can be
// shown now, holding back the start of a character whose other bytes have not come yet;
// finish() returns what is left.
class Utf8Pieces {
 public:
  std::string push(std::string_view bytes);
  std::string finish();

 private:
  std::string pending_;
};

}  // namespace tz
