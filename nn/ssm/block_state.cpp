// The Block-State Transformer layer (equations in block_state.h).
#include "nn/ssm/block_state.h"

#include <algorithm>
#include <cstring>

#include "autograd/ops.h"
#include "core/attention.h"
#include "core/copy.h"
#include "core/creation.h"
#include "nn/ssm/mamba.h"  // the shared SSM keys

namespace tz::nn {

// The union of what the tile's queries p0..p1 see: context keys [b0 W - W, b1 W), token keys
// [L + b0 W, L + p1]; a tile outside both is hidden, anything else is filled (conservative).
kernels::Tile BlockStateMask::classify(int64_t, int64_t, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                                       int64_t q_offset) const {
  const int64_t p0 = q_offset + i0, p1 = q_offset + i1 - 1, s0 = p0 / W * W, s1 = p1 / W * W;
  const bool ctx = j0 < s1 && j1 > s0 - W && j0 < L;
  const bool tok = j1 > L + s0 && j0 <= L + p1;
  return ctx || tok ? kernels::Tile::partial : kernels::Tile::hidden;
}

void BlockStateMask::fill(int64_t, int64_t, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset,
                          uint8_t* out, int64_t ld) const {
  for (int64_t r = 0; r < ni; ++r) {
    const int64_t p = q_offset + i0 + r, s = p / W * W;
    for (int64_t c = 0; c < nj; ++c) {
      const int64_t j = j0 + c;
      out[r * ld + c] = j < L ? (j >= s - W && j < s) : (j - L >= s && j - L <= p);
    }
  }
}

std::string BlockStateMask::describe() const { return cat_str("block_state(W=", W, ", L=", L, ")"); }

void BlockStateMask::check(int64_t, int64_t, int64_t S) const {
  TZ_CHECK(S == 2 * L, "BlockStateMask: expected 2 L = ", 2 * L, " keys (context states, then tokens), got ", S);
}

BlockStateOptions block_state_options(const ModelDims& dims, const Config& c) {
  BlockStateOptions o{.dim = dims.dim, .heads = dims.heads, .block = c.get(kBstBlock), .ssm = s4d_options(dims, c)};
  const std::string src = c.source();
  TZ_CHECK(o.block >= 1, src, ": bst_block must be >= 1, got ", o.block);
  TZ_CHECK(o.heads >= 1 && o.dim % o.heads == 0, src, ": heads ", o.heads, " must divide dim ", o.dim);
  return o;
}

BlockState::BlockState(const BlockStateOptions& o, Generator& gen) : options(o) {
  const int64_t C = o.dim;
  ssm = register_module("ssm", std::make_shared<S4d>(o.ssm, gen));
  qkv_proj = register_module("qkv_proj", std::make_shared<Linear>(LinearOptions{.in = C, .out = 3 * C}, gen));
  kv_proj = register_module("kv_proj", std::make_shared<Linear>(LinearOptions{.in = C, .out = 2 * C}, gen));
  out_proj = register_module("out_proj", std::make_shared<Linear>(LinearOptions{.in = C, .out = C}, gen));
}

Tensor BlockState::attend(const Tensor& x, const Tensor& states, BlockStateState* s) const {
  const int64_t B = x.size(0), T = x.size(1), C = options.dim, H = options.heads, D = C / H;
  const int64_t start = s ? s->length : 0, L = start + T;
  auto heads = [&](const Tensor& t) { return t.reshape({B, T, H, D}).transpose(1, 2); };  // [B, H, T, D]
  Tensor qkv = qkv_proj->forward(x), kv = kv_proj->forward(states);
  Tensor q = heads(qkv.narrow(2, 0, C));
  std::vector<Tensor> kvs{heads(kv.narrow(2, 0, C)), heads(kv.narrow(2, C, C)), heads(qkv.narrow(2, C, C)),
                          heads(qkv.narrow(2, 2 * C, C))};  // k_s, v_s, k_x, v_x
  if (s) {                                                  // the cached positions before this chunk, then this chunk's
    Tensor* cache[4] = {&s->ks, &s->vs, &s->kx, &s->vx};
    for (size_t i = 0; i < 4; ++i) {
      {
        NoGradGuard no_grad;
        core::copy_(cache[i]->narrow(2, start, T), kvs[i].detach());
      }
      if (start > 0) kvs[i] = cat({cache[i]->narrow(2, 0, start), kvs[i]}, 2);
    }
  }
  auto mask = std::make_shared<kernels::AttentionMask>();
  mask->terms.push_back(std::make_shared<BlockStateMask>(options.block, L));
  AttentionSpec spec{.causal = false, .q_offset = start, .mask = mask};
  Tensor o = attention(q, cat({kvs[0], kvs[2]}, 2), cat({kvs[1], kvs[3]}, 2), spec);  // [B, H, T, D]
  return out_proj->forward(o.transpose(1, 2).reshape({B, T, C}));
}

Tensor BlockState::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": takes no key padding, forgotten keys or segment memory");
  BlockStateState* s = state ? &own_state<BlockStateState>(state, ctx) : nullptr;
  if (s)
    TZ_CHECK(s->length + x.size(1) <= s->kx.size(2), describe(), ": cache full (", s->length, " + ", x.size(1),
             " > capacity ", s->kx.size(2), ")");
  Tensor states = s ? ssm->forward(x, MixerContext{.start = s->length}, s->ssm.get()) : ssm->forward(x, {});
  Tensor y = attend(x, states, s);
  if (s) s->length += x.size(1);
  return y;
}

std::unique_ptr<MixerState> BlockState::make_state(int64_t batch, int64_t capacity, DType dtype) const {
  auto s = std::make_unique<BlockStateState>();
  s->ssm = ssm->make_state(batch, capacity, dtype);
  const int64_t H = options.heads, D = options.dim / H;
  for (Tensor* t : {&s->ks, &s->vs, &s->kx, &s->vx}) *t = zeros({batch, H, capacity, D}, dtype);
  return s;
}

std::string BlockState::describe() const {
  return "BlockStateTransformer(dim " + std::to_string(options.dim) + ", heads " + std::to_string(options.heads) +
         ", block " + std::to_string(options.block) + ", SH, " + ssm->describe() + ")";
}

}  // namespace tz::nn

namespace tz::zoo {

void register_block_state_transformer(nn::Registry& r) {
  r.add(
      {.id = "block_state_transformer",
       .summary = "Block-State Transformer (SH): S4D context states as extra keys of causal block attention",
       .keys = {nn::kBstBlock, nn::kSsmState, nn::kSsmDtMin, nn::kSsmDtMax, nn::kS4dInit},
       .test_config = R"({"mixer": "block_state_transformer", "bst_block": 8, "ssm_state": 8})",
       .example = R"({"dim": 256, "heads": 4, "mixer": "block_state_transformer", "bst_block": 128, "ssm_state": 64})",
       .mixer = [](const nn::ModelDims& d, const nn::Config& c,
                   Generator& gen) { return std::make_shared<nn::BlockState>(nn::block_state_options(d, c), gen); },
       .chunk = 8});
}

}  // namespace tz::zoo
