/* tensorzoo's C API: load a model file, tokenize, generate with a callback, free; for programs
 * in C and for other languages' foreign-function interfaces. `#include <tensorzoo/tensorzoo_c.h>`.
 *
 * Every function returns a status (TZ_OK or an error) and never lets an exception out; after
 * an error, tz_last_error() gives the message of the calling thread's last failure. A model
 * is used by one thread at a time, and different models may generate in different threads at
 * once. Strings are UTF-8 with an explicit length; generated text comes in pieces of whole
 * UTF-8 characters (a byte that can never complete one is passed on as it is). */
#ifndef TENSORZOO_C_H
#define TENSORZOO_C_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define TZ_C_API __attribute__((visibility("default")))
#else
#define TZ_C_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tz_status {
  TZ_OK = 0,
  TZ_ERROR_ARGUMENT = 1, /* a null pointer, an empty prompt, a sampling option out of range */
  TZ_ERROR_FILE = 2,     /* the model file is missing, unreadable or not a tensorzoo model */
  TZ_ERROR_CAPACITY = 3, /* the output array is too small; *count says how many are needed */
  TZ_ERROR_MEMORY = 4,   /* out of memory */
  TZ_ERROR_INTERNAL = 5  /* anything else; tz_last_error() says what */
} tz_status;

/* A loaded model (opaque). */
typedef struct tz_model tz_model;

/* Sampling, as `tensorzoo sample`: max_tokens new tokens, temperature (0 = greedy), the
 * top_k most likely (0 = all), the smallest set of probability >= top_p (1 = all), a seed. */
typedef struct tz_sample_options {
  int64_t max_tokens;
  double temperature;
  int64_t top_k;
  double top_p;
  uint64_t seed;
} tz_sample_options;

/* Called with each piece of generated text; return 0 to go on, anything else to stop. */
typedef int (*tz_text_callback)(const char* text, size_t length, void* user_data);

/* The defaults: 200 tokens, temperature 1, no top-k or top-p, seed 0. */
TZ_C_API tz_sample_options tz_sample_options_default(void);
/* "TZ_OK", "TZ_ERROR_FILE", ... */
TZ_C_API const char* tz_status_name(tz_status status);
/* The message of this thread's last failed call ("" before any); a call that succeeds leaves it
 * as it was. Valid until this thread's next failure. */
TZ_C_API const char* tz_last_error(void);

/* Loads a model file (an export, or a run's checkpoint.safetensors) into *model. */
TZ_C_API tz_status tz_model_load(const char* path, tz_model** model);
/* Frees a model (null is allowed). */
TZ_C_API void tz_model_free(tz_model* model);
/* The vocabulary size and the context length of a model (0 for null). */
TZ_C_API int64_t tz_model_vocab_size(const tz_model* model);
TZ_C_API int64_t tz_model_context(const tz_model* model);

/* Text -> token ids into tokens[0 .. capacity); *count receives the number of ids (also when
 * TZ_ERROR_CAPACITY says they did not fit; tokens may be null with capacity 0 to ask). */
TZ_C_API tz_status tz_tokenize(const tz_model* model, const char* text, size_t length, int64_t* tokens, size_t capacity,
                               size_t* count);

/* Generates after the prompt (not empty), calling on_text (may be null) as text comes.
 * options may be null for the defaults. */
TZ_C_API tz_status tz_generate(tz_model* model, const char* prompt, size_t length, const tz_sample_options* options,
                               tz_text_callback on_text, void* user_data);

/* The calling thread's number of threads for the work of one call (>= 1). */
TZ_C_API tz_status tz_set_num_threads(int threads);
/* Nonzero: idle threads sleep instead of spinning (kind to a busy machine); zero: they spin a
 * while first, as OpenMP's do by default. For the whole process. */
TZ_C_API tz_status tz_set_passive_wait(int passive);

#ifdef __cplusplus
}
#endif

#endif /* TENSORZOO_C_H */
