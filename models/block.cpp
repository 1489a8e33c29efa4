#include "models/block.h"

#include "autograd/ops.h"
#include "core/text.h"
#include "models/token_shift.h"
#include "nn/residual/mixer_scope.h"

namespace tz::models {

Block::Block(const std::vector<SublayerSpec>& specs, const BlockPieces& pieces, Generator& gen) {
  TZ_CHECK(!specs.empty(), "Block: a block needs at least one sublayer");
  for (const SublayerSpec& spec : specs) {
    Sublayer s{.spec = spec};
    // Built in the order norm, function, residual: the order of the draws from gen.
    const nn::MixerSublayer scope(spec.kind == SublayerSpec::Kind::mixer);
    s.residual = nn::make_residual(spec.dims, pieces.config);
    if (s.residual->has_norm())
      s.norm = register_module(spec.norm_name, pieces.registry.make_norm(pieces.norm, spec.dims, pieces.config, gen));
    if (spec.kind == SublayerSpec::Kind::mixer) {
      s.mixer =
          register_module(spec.name, pieces.mixer ? pieces.mixer(spec, gen)
                                                  : pieces.registry.make_mixer(spec.id, spec.dims, pieces.config, gen));
      mixer = s.mixer;
    } else {
      s.ffn = register_module(spec.name, pieces.registry.make_ffn(spec.id, spec.dims, pieces.config, gen));
      ffn = s.ffn;
    }
    s.residual->build(gen);
    for (auto& [name, t] : s.residual->parameters) register_parameter(name + spec.tag, t);
    for (auto& [name, m] : s.residual->modules) register_module(name + spec.tag, m);
    sublayers.push_back(std::move(s));
  }
  ff_drop = register_module("ff_drop", std::make_shared<nn::Dropout>(pieces.ff_dropout));
}

Tensor Block::forward(const Tensor& x, const nn::MixerContext& ctx, nn::MixerState* state, BlockMemory* memory) {
  if (memory) {
    const std::string why = why_no_memory();
    TZ_CHECK(why.empty(), "Block: ", why);
  }
  BlockState* st = nullptr;
  if (state) {
    st = dynamic_cast<BlockState*>(state);
    TZ_CHECK(st, "Block: forward() was given a state not made by its make_state()");
    TZ_CHECK(ctx.start == st->length, "Block: the input starts at position ", ctx.start, " but the state holds ",
             st->length, " positions");
  }
  Tensor h = x;
  for (size_t i = 0; i < sublayers.size(); ++i) {
    const Sublayer& s = sublayers[i];
    auto branch = [&](const Tensor& u) -> Tensor {
      Tensor v = token_shift(u, s.spec.shift, st ? &st->hist[i] : nullptr);
      if (s.mixer && memory) {  // the mixer sees its earlier inputs as extra keys
        memory->seen = v;
        nn::MixerContext with = ctx;
        with.memory = memory->memory;
        with.memory_valid = memory->memory_valid;
        return s.mixer->forward(v, with, st ? st->mixers[i].get() : nullptr);
      }
      if (s.mixer) return s.mixer->forward(v, ctx, st ? st->mixers[i].get() : nullptr);
      Tensor y = ff_drop->forward(s.ffn->forward(v));
      return s.spec.scale != 1.0 ? y * s.spec.scale : y;
    };
    h = s.residual->forward_in_block(h, s.norm.get(), branch, x, i + 1 == sublayers.size());
  }
  if (st) st->length += x.size(1);
  return h;
}

std::unique_ptr<nn::MixerState> Block::make_state(int64_t batch, int64_t capacity, DType dtype) const {
  auto s = std::make_unique<BlockState>();
  for (const Sublayer& sl : sublayers) {
    s->mixers.push_back(sl.mixer ? sl.mixer->make_state(batch, capacity, dtype) : nullptr);
    s->hist.emplace_back();  // token-shift histories start as zeros (undefined = zeros)
  }
  return s;
}

bool Block::causal() const {
  for (const Sublayer& s : sublayers)
    if (s.mixer && !s.mixer->causal()) return false;
  return true;
}

std::string Block::why_no_step() const {
  for (const Sublayer& s : sublayers)
    if (s.mixer && !s.mixer->has_step()) return cat_str("(", s.mixer->describe(), "): ", s.mixer->why_no_step());
  return "";
}

std::string Block::why_no_memory() const {
  int mixers = 0;
  for (const Sublayer& s : sublayers) {
    if (!s.mixer) continue;
    ++mixers;
    if (!s.mixer->takes_memory()) return cat_str(s.mixer->describe(), " takes no segment memory");
    if (s.spec.shift) return "token shift and segment memory do not combine";
  }
  return mixers == 1 ? "" : cat_str("segment memory needs one mixer sublayer per block, this one has ", mixers);
}

const Sublayer& Block::sublayer(const std::string& name) const {
  std::vector<std::string> names;
  for (const Sublayer& s : sublayers) {
    if (s.spec.name == name) return s;
    names.push_back(s.spec.name);
  }
  throw Error(cat_str("Block: no sublayer '", name, "' (it has ", join(names), ")"));
}

std::string Block::describe() const {
  std::string parts;
  for (const Sublayer& s : sublayers) {
    parts += parts.empty() ? "" : ", ";
    parts += s.spec.name + (s.mixer ? "=" + s.spec.id : "");
    if (s.spec.scale != 1.0) parts += cat_str(" x", s.spec.scale);
    if (s.spec.shift) parts += cat_str(" shift ", s.spec.shift);
  }
  return cat_str("Block(", parts, "; residual ", sublayers.front().residual->describe(), ")");
}

}  // namespace tz::models
