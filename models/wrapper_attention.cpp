// The wrappers' attention: the registry's mixer built with the sublayer's dims (wrapper_attention.h).
#include "models/wrapper_attention.h"

#include "nn/attention/attention.h"

namespace tz::models {

std::shared_ptr<nn::Mixer> make_wrapper_attention(const SublayerSpec& spec, const nn::Registry& registry,
                                                  const nn::Config& c, Generator& gen) {
  const nn::ModelDims& d = spec.dims;
  std::shared_ptr<nn::Mixer> m = registry.make_mixer(spec.id, d, c, gen);
  // A mixer that does not read ModelDims would build silently in the wrong form: a causal
  // encoder, or a self-attention that never reads the context.
  if (d.context_dim > 0) {
    auto* attn = dynamic_cast<nn::Attention*>(m.get());
    TZ_CHECK(attn && attn->cross(), c.source(), ": mixer '", spec.id,
             "' has no cross-attention form (ModelDims::context_dim), which this wrapper needs");
  } else if (!d.causal) {
    TZ_CHECK(!m->causal(), c.source(), ": mixer '", spec.id, "' has no bidirectional form, which an encoder needs");
  }
  return m;
}

}  // namespace tz::models
