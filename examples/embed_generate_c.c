/* Embedding a trained model in a C program (tensorzoo_c.h): load, tokenize, generate, free.
 *   build/examples/embed_generate_c model.safetensors "The dogs " */
#include <tensorzoo/tensorzoo_c.h>

#include <stdio.h>
#include <string.h>

static int print_text(const char* text, size_t length, void* user_data) {
  (void)user_data;
  fwrite(text, 1, length, stdout);
  fflush(stdout);
  return 0; /* go on */
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: embed_generate_c MODEL.safetensors [PROMPT]\n");
    return 2;
  }
  const char* prompt = argc > 2 ? argv[2] : "The ";
  tz_set_num_threads(2);
  tz_set_passive_wait(1);
  tz_model* model = NULL;
  tz_status status = tz_model_load(argv[1], &model);
  if (status != TZ_OK) {
    fprintf(stderr, "embed_generate_c: %s: %s\n", tz_status_name(status), tz_last_error());
    return 1;
  }
  int64_t ids[64];
  size_t count = 0;
  status = tz_tokenize(model, prompt, strlen(prompt), ids, 64, &count);
  printf("vocabulary %lld, context %lld, prompt of %zu tokens\n%s", (long long)tz_model_vocab_size(model),
         (long long)tz_model_context(model), count, prompt);
  tz_sample_options options = tz_sample_options_default();
  options.max_tokens = 120;
  options.temperature = 0.8;
  options.seed = 1;
  if (status == TZ_OK) status = tz_generate(model, prompt, strlen(prompt), &options, print_text, NULL);
  printf("\n");
  if (status != TZ_OK) fprintf(stderr, "embed_generate_c: %s: %s\n", tz_status_name(status), tz_last_error());
  tz_model_free(model);
  return status == TZ_OK ? 0 : 1;
}
