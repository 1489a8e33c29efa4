// Embedding a trained model in a C++ program: load a model file, generate, stream the text.
//   build/tensorzoo export --run runs/gpt --out model.safetensors
//   build/examples/embed_generate model.safetensors "The dogs "
#include <tensorzoo/tensorzoo.h>

#include <iostream>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: embed_generate MODEL.safetensors [PROMPT]\n";
    return 2;
  }
  tz::set_num_threads(2);
  tz::set_wait_policy(tz::WaitPolicy::passive);  // idle threads sleep: kind to a busy host
  try {
    tz::TextModel model = tz::TextModel::load(argv[1]);
    const std::string prompt = argc > 2 ? argv[2] : "The ";
    std::cout << model.describe() << "\n" << prompt;
    model.generate(prompt, {.max_new_tokens = 120, .temperature = 0.8, .top_k = 40, .seed = 1},
                   [](std::string_view text) {
                     std::cout << text << std::flush;
                     return true;  // false stops
                   });
    std::cout << "\n";
  } catch (const tz::Error& e) {
    std::cerr << "embed_generate: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
