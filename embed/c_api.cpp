// The C API (tensorzoo_c.h) over TextModel: every call catches what the C++ side throws and
// turns it into a status and this thread's last error message.
#include "tensorzoo_c.h"

#include <cstring>
#include <new>
#include <string>

#include "core/parallel.h"
#include "embed/text_model.h"

struct tz_model {
  tz::TextModel model;
};

namespace {

thread_local std::string t_last_error;

tz_status fail(tz_status status, const std::string& message) {
  t_last_error = message;
  return status;
}

// Runs fn, mapping exceptions to statuses: tz::Error to `on_error`, the rest by kind.
template <class Fn>
tz_status guarded(tz_status on_error, Fn&& fn) {
  try {
    return fn();
  } catch (const tz::Error& e) {
    return fail(on_error, e.what());
  } catch (const std::bad_alloc&) {
    return fail(TZ_ERROR_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(TZ_ERROR_INTERNAL, e.what());
  } catch (...) {
    return fail(TZ_ERROR_INTERNAL, "unknown error");
  }
}

}  // namespace

extern "C" {

tz_sample_options tz_sample_options_default(void) {
  const tz::SampleOptions o;
  return {o.max_new_tokens, o.temperature, o.top_k, o.top_p, o.seed};
}

const char* tz_status_name(tz_status status) {
  switch (status) {
    case TZ_OK:
      return "TZ_OK";
    case TZ_ERROR_ARGUMENT:
      return "TZ_ERROR_ARGUMENT";
    case TZ_ERROR_FILE:
      return "TZ_ERROR_FILE";
    case TZ_ERROR_CAPACITY:
      return "TZ_ERROR_CAPACITY";
    case TZ_ERROR_MEMORY:
      return "TZ_ERROR_MEMORY";
    case TZ_ERROR_INTERNAL:
      return "TZ_ERROR_INTERNAL";
  }
  return "unknown status";
}

const char* tz_last_error(void) { return t_last_error.c_str(); }

tz_status tz_model_load(const char* path, tz_model** model) {
  if (!model) return fail(TZ_ERROR_ARGUMENT, "tz_model_load: model (the result) is null");
  *model = nullptr;
  if (!path) return fail(TZ_ERROR_ARGUMENT, "tz_model_load: path is null");
  return guarded(TZ_ERROR_FILE, [&] {
    *model = new tz_model{tz::TextModel::load(path)};
    return TZ_OK;
  });
}

void tz_model_free(tz_model* model) { delete model; }

int64_t tz_model_vocab_size(const tz_model* model) { return model ? model->model.tokenizer().vocab_size() : 0; }

int64_t tz_model_context(const tz_model* model) { return model ? model->model.context() : 0; }

tz_status tz_tokenize(const tz_model* model, const char* text, size_t length, int64_t* tokens, size_t capacity,
                      size_t* count) {
  if (!model || !count || (!text && length > 0) || (!tokens && capacity > 0))
    return fail(TZ_ERROR_ARGUMENT,
                "tz_tokenize: model, count, text (when length > 0) or tokens (when capacity > 0) "
                "is null");
  return guarded(TZ_ERROR_ARGUMENT, [&] {
    const std::vector<int64_t> ids = model->model.tokenizer().encode(std::string_view(text ? text : "", length));
    *count = ids.size();
    if (ids.size() > capacity)
      return fail(TZ_ERROR_CAPACITY, tz::cat_str("tz_tokenize: ", ids.size(), " tokens do not fit in ", capacity));
    if (!ids.empty()) std::memcpy(tokens, ids.data(), ids.size() * sizeof(int64_t));
    return TZ_OK;
  });
}

tz_status tz_generate(tz_model* model, const char* prompt, size_t length, const tz_sample_options* options,
                      tz_text_callback on_text, void* user_data) {
  if (!model || !prompt) return fail(TZ_ERROR_ARGUMENT, "tz_generate: model or prompt is null");
  if (length == 0) return fail(TZ_ERROR_ARGUMENT, "tz_generate: the prompt is empty");
  const tz_sample_options c = options ? *options : tz_sample_options_default();
  const tz::SampleOptions o{
      .max_new_tokens = c.max_tokens, .temperature = c.temperature, .top_k = c.top_k, .top_p = c.top_p, .seed = c.seed};
  const tz_status valid = guarded(TZ_ERROR_ARGUMENT, [&] {
    o.validate();
    return TZ_OK;
  });
  if (valid != TZ_OK) return valid;
  return guarded(TZ_ERROR_INTERNAL, [&] {
    model->model.generate(std::string_view(prompt, length), o, [&](std::string_view text) {
      return !on_text || on_text(text.data(), text.size(), user_data) == 0;
    });
    return TZ_OK;
  });
}

tz_status tz_set_num_threads(int threads) {
  if (threads < 1)
    return fail(TZ_ERROR_ARGUMENT, tz::cat_str("tz_set_num_threads: threads must be >= 1, got ", threads));
  tz::set_num_threads(threads);
  return TZ_OK;
}

tz_status tz_set_passive_wait(int passive) {
  tz::set_wait_policy(passive ? tz::WaitPolicy::passive : tz::WaitPolicy::spin);
  return TZ_OK;
}

}  // extern "C"
