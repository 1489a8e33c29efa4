#include "models/wrapper_attention.h"

#include "core/text.h"
#include "models/keys.h"
#include "nn/attention/attention.h"
#include "nn/attention/cross_attention.h"

namespace tz::models {

namespace {
// nn::CrossAttention as a mixer: self-attention over x with ctx.key_padding, or cross-attention
// to *ctx.context with ctx.context_padding. Its q, kv and out are its own children, so the
// parameters keep the names they had in the wrappers' layers.
class LegacyAttention : public nn::Mixer {
 public:
  LegacyAttention(const nn::CrossAttentionOptions& o, Generator& gen) : attn_(o, gen), cross_(o.context_dim > 0) {
    register_module("q", attn_.q);
    register_module("kv", attn_.kv);
    register_module("out", attn_.out);
  }
  Tensor forward(const Tensor& x, const nn::MixerContext& ctx, nn::MixerState* state) override {
    TZ_CHECK(!state, describe(), ": no step form (", why_no_step(), ")");
    if (!cross_) return attn_.forward(x, x, ctx.key_padding);
    TZ_CHECK(ctx.context, describe(), ": cross-attention needs MixerContext::context");
    return attn_.forward(x, *ctx.context, ctx.context_padding);
  }
  bool causal() const override { return attn_.options.causal; }
  std::string why_no_step() const override { return "the wrappers' attention keeps no cache"; }
  std::string describe() const override { return attn_.describe(); }

 private:
  nn::CrossAttention attn_;
  bool cross_;
};
}  // namespace

bool wants_registry_attention(const nn::Config& c, const nn::Registry& registry) {
  if (c.has(kMixer.name) || c.has(kPos.name)) return true;
  for (const nn::ConfigKey& k : registry.get("vanilla_mha").keys)
    if (c.has(k.key)) return true;
  return false;
}

std::shared_ptr<nn::Mixer> make_wrapper_attention(const SublayerSpec& spec, const nn::Registry& registry,
                                                  const nn::Config& c, Generator& gen) {
  const nn::ModelDims& d = spec.dims;
  if (d.context_dim > 0 || !wants_registry_attention(c, registry))
    return std::make_shared<LegacyAttention>(
        nn::CrossAttentionOptions{
            .dim = d.dim, .heads = d.heads, .context_dim = d.context_dim, .causal = d.causal, .bias = d.bias},
        gen);
  std::shared_ptr<nn::Mixer> m = registry.make_mixer(spec.id, d, c, gen);
  if (!d.causal) {
    auto* attn = dynamic_cast<nn::Attention*>(m.get());
    TZ_CHECK(attn, c.source(), ": mixer '", spec.id, "' has no bidirectional form, which an encoder needs");
    attn->options.causal = false;
  }
  return m;
}

}  // namespace tz::models
