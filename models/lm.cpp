#include "models/lm.h"

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/text.h"
#include "models/fcm.h"
#include "models/keys.h"
#include "models/layout.h"
#include "models/low_rank.h"
#include "models/memory_tokens.h"
#include "models/mobilellm.h"
#include "models/token_shift.h"
#include "models/weight_init.h"
#include "nn/low_rank.h"
#include "nn/residual/residual.h"

namespace tz::models {

std::vector<nn::ConfigKey> lm_config_keys() {
  std::vector<nn::ConfigKey> keys = model_keys();
  for (const auto& part : {layout_keys(), std::vector<nn::ConfigKey>{kTokenShift}, recurrence_keys(), act_keys(),
                           std::vector<nn::ConfigKey>{kFcmMaxRatio, kNumMemoryTokens}, nn::residual_config_keys(),
                           memory_keys(), weight_init_keys(), std::vector<nn::ConfigKey>{kLinearRank}})
    keys.insert(keys.end(), part.begin(), part.end());
  return keys;
}

LM::LM(const nn::Config& config, const nn::Registry& registry, Generator& gen) : Model(config) {
  const nn::Config& c = config_;
  const std::string src = c.source();
  const std::string model = c.get(kModel);
  TZ_CHECK(model == kModel.fallback, src, ": the language model is model '", kModel.fallback, "', got '", model,
           "' (build wrappers with zoo::make_model)");
  vocab_ = c.get(kVocab);
  dims_.dim = c.get(kDim);
  dims_.depth = c.get(kDepth);
  dims_.heads = c.get(kHeads);
  dims_.context = c.get(kContext);
  dims_.bias = c.get(kBias);
  dims_.dropout = c.get(kDropout);
  TZ_CHECK(vocab_ > 0 && dims_.dim > 0 && dims_.depth > 0 && dims_.heads > 0 && dims_.context > 0, src,
           ": vocab, dim, depth, heads and context must be positive");
  TZ_CHECK(dims_.dim % dims_.heads == 0, src, ": heads (", dims_.heads, ") must divide dim (", dims_.dim, ")");
  TZ_CHECK(dims_.dropout >= 0 && dims_.dropout < 1, src, ": dropout must be in [0, 1), got ", dims_.dropout);
  const double emb_p = c.get(kEmbDropout), ff_p = c.get(kFfDropout);
  TZ_CHECK(emb_p >= 0 && emb_p < 1 && ff_p >= 0 && ff_p < 1, src,
           ": emb_dropout and ff_dropout must be in [0, 1), got ", emb_p, " and ", ff_p);
  std::unique_ptr<nn::Residual> residual = nn::make_residual(dims_, c);  // checks the residual keys at once
  act_ = c.get(kAct);
  recurrence_ = read_recurrence(c, dims_.depth, act_);
  act_options_ = read_act(c, act_);
  repeat_schedule(c, 1, recurrence_.shared);  // checks block_repeat at once
  fcm_ratio_ = read_fcm_ratio(c);
  std::vector<std::vector<SublayerSpec>> plan = plan_layout(c, dims_, recurrence_.shared);
  const std::vector<int64_t> shifts = token_shifts(c, plan.size(), dims_.dim);
  for (size_t i = 0; i < plan.size(); ++i)
    for (SublayerSpec& s : plan[i]) s.shift = shifts[i];

  pos_id_ = c.get(kPos);
  const std::string norm_id = c.get(kNorm);
  tok_emb = register_module(
      "tok_emb", std::make_shared<nn::Embedding>(nn::EmbeddingOptions{.num = vocab_, .dim = dims_.dim}, gen));
  pos = register_module("pos", registry.make_position(pos_id_, dims_, c, gen));
  emb_drop = register_module("emb_drop", std::make_shared<nn::Dropout>(emb_p));
  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  const BlockPieces pieces{.registry = registry, .config = c, .norm = norm_id, .ff_dropout = ff_p};
  {
    const nn::LowRankLinears low_rank(read_linear_rank(c));  // the blocks' Linears as W = V U (models/low_rank.h)
    for (const auto& sublayers : plan)
      blocks_.push_back(layers->push_back(std::make_shared<Block>(sublayers, pieces, gen)));
  }
  schedule_ = recurrence_.shared ? std::vector<int64_t>(size_t(recurrence_.steps), 0)
                                 : repeat_schedule(c, int64_t(plan.size()), false);
  if (act_) {
    halt = register_module(
        "halt", std::make_shared<nn::Linear>(nn::LinearOptions{.in = dims_.dim, .out = 1, .bias = true}, gen));
    NoGradGuard ng;  // Graves initialises the halting bias positive so early steps do not halt at once
    core::fill_(halt->bias, 1.0);
  }
  std::string final_norm = c.get(kFinalNorm);
  if (final_norm == "auto") final_norm = residual->final_norm() ? norm_id : "none";
  if (final_norm != "none") norm_f = register_module("norm_f", registry.make_norm(final_norm, dims_, c, gen));
  if (!c.get(kTieWeights))
    head = register_module(
        "head", std::make_shared<nn::Linear>(nn::LinearOptions{.in = dims_.dim, .out = vocab_, .bias = false}, gen));
  mem_ = read_memory_tokens(c, *pos, recurrence_.shared);  // drawn last: the other parameters stay as without
  if (mem_ > 0)
    memory_tokens = register_parameter("memory_tokens", randn({mem_, dims_.dim}, gen, DType::f32, 0.0, 0.02));
  if (MemoryPlan plan = read_memory_plan(c, int64_t(schedule_.size()), dims_.dim); plan.on()) {
    memory = register_module("memory", std::make_shared<SegmentRecurrence>(plan, dims_.dim, gen));
    check_memory(c);
  }
  init_block_weights(c, std::vector<std::shared_ptr<nn::Module>>(blocks_.begin(), blocks_.end()), gen);  // drawn last

  // Every key must have been read by the LM, its options or a chosen component.
  std::vector<std::string> valid;
  for (auto& key : lm_config_keys()) valid.push_back(key.key);
  auto add_keys = [&](const std::string& id) {
    if (const nn::VariantInfo* v = registry.find(id))
      for (auto& key : v->keys) valid.push_back(key.key);
  };
  for (auto& m : c.get(kMixer)) add_keys(m);
  for (const std::string& id : {pos_id_, c.get(kFfn), norm_id, final_norm}) add_keys(id);
  c.check_all_read(valid);
}

Tensor LM::embed(const Tensor& ids, int64_t start) {
  TZ_CHECK(ids.dim() == 2 && ids.dtype() == DType::i64, "LM: expected ids i64 [B, T], got ", dtype_name(ids.dtype()),
           " ", ids.shape());
  const int64_t T = ids.size(1);
  int64_t limit = pos->max_positions();
  TZ_CHECK(limit == 0 || start + T <= limit, "LM: positions up to ", start + T, " exceed the ", limit,
           " positions of '", pos_id_, "'");
  Tensor h = tok_emb->forward(ids);
  // The Universal Transformer adds positions before every step instead (step_signal).
  Tensor p = recurrence_.shared ? Tensor() : pos->embed(start, T, h.dtype());
  return emb_drop->forward(p.defined() ? h + p : h);
}

void LM::check_memory(const nn::Config& c) const {
  const std::string src = c.source();
  TZ_CHECK(!recurrence_.shared && !act_, src,
           ": segment memory (mem_len / cmem_len) needs one block per layer, not "
           "share_layers / act");
  TZ_CHECK(mem_ == 0, src,
           ": segment memory and num_memory_tokens do not combine (the tokens are a per-sequence prefix)");
  TZ_CHECK(fcm_ratio_ == 0, src, ": segment memory and fcm_max_ratio do not combine");
  const bool absolute =
      pos->embed(0, 1, DType::f32).defined() || pos->qk_input(0, 1, DType::f32).defined() || pos->max_positions() > 0;
  TZ_CHECK(!absolute, src,
           ": segment memory sits at the positions before the segment, so it needs a relative position "
           "scheme (pos = rope, alibi, t5_rel_bias, txl_rel_pos, xpos or none), got pos '",
           pos_id_, "' with mem_len / cmem_len");
  for (size_t i = 0; i < layers->size(); ++i)
    if (std::string why = layers->at<Block>(i)->why_no_memory(); !why.empty())
      throw Error(cat_str(src, ": segment memory: layer ", i, ": ", why));
}

Tensor LM::logits(const Tensor& h) {
  Tensor x = norm_f ? norm_f->forward(h) : h;
  if (feature_tap) feature_tap(x);
  return head_of(x);
}

Tensor LM::head_of(const Tensor& x) { return head ? head->forward(x) : linear(x, tok_emb->weight); }

Tensor LM::run_blocks(Tensor h, nn::MixerContext& ctx, State* state) {
  const int64_t T = h.size(1), start = ctx.start;
  auto apply = [&](size_t n, const Tensor& x) {
    ctx.layer = int64_t(n);
    auto block = layers->at<Block>(size_t(schedule_[n]));
    Tensor in = recurrence_.shared ? x + step_signal(*pos, start, T, int64_t(n) + 1, dims_.dim, x.dtype()) : x;
    return block->forward(in, ctx, state ? state->layers[n].get() : nullptr);
  };
  if (act_) return act_forward(h, schedule_.size(), apply, *halt, act_options_, ctx.aux, last_act);
  for (size_t n = 0; n < schedule_.size(); ++n) h = apply(n, h);
  return h;
}

Tensor LM::forward_segments(const Tensor& ids, State& state, nn::AuxLosses* aux) {
  auto* m = dynamic_cast<SegmentMemory*>(state.memory.get());
  TZ_CHECK(m && m->mem.size() == schedule_.size(), "LM: the state's memory was not made by this model");
  TZ_CHECK(m->length == state.length, "LM: the memory holds ", m->length, " positions, the state ", state.length);
  const bool decoding = !state.layers.empty();
  const int64_t T = ids.size(1), L = dims_.context, N = int64_t(schedule_.size());
  TZ_CHECK(decoding || T <= L, "LM: a segment holds at most context = ", L, " positions, got ", T);
  std::vector<Tensor> out;
  for (int64_t done = 0; done < T;) {
    if (decoding && m->filled == L) {  // the segment is full: it becomes memory (copies: the buffers are reused)
      std::vector<Tensor> segment;
      for (const Tensor& p : m->pending) segment.push_back(p.clone());
      memory->push(*m, segment, blocks_, {.start = state.length - L, .pos = pos.get()}, nullptr);
      m->filled = 0;
    }
    const int64_t piece = decoding ? std::min(T - done, L - m->filled) : T;
    std::map<std::string, Tensor> carry;
    nn::MixerContext ctx{.start = state.length, .pos = pos.get(), .aux = aux, .carry = &carry};
    Tensor h = embed(ids.narrow(1, done, piece), state.length);
    std::vector<Tensor> seen(size_t(N + 1));
    const bool fresh = m->filled == 0;  // decoding passes the memory once per segment: the caches keep it
    for (int64_t n = 0; n < N; ++n) {
      ctx.layer = n;
      BlockMemory bm;
      if (fresh) memory->memory_of(*m, size_t(n), bm.memory, bm.memory_valid);
      if (fresh && decoding && state.length > 0 && !bm.memory.defined())  // restarts the cache all the same
        bm.memory = zeros({ids.size(0), 0, dims_.dim}, h.dtype());
      h = blocks_[size_t(n)]->forward(h, ctx, decoding ? state.layers[size_t(n)].get() : nullptr, &bm);
      seen[size_t(n)] = bm.seen;
    }
    seen[size_t(N)] = norm_f ? norm_f->forward(h) : h;
    out.push_back(head_of(seen[size_t(N)]));
    if (decoding) {  // the segment's rows so far, written into buffers of L rows
      for (size_t n = 0; n < seen.size(); ++n) {
        Tensor& rows = m->pending[n];
        if (!rows.defined()) rows = zeros({ids.size(0), L, dims_.dim}, seen[n].dtype());
        core::copy_(rows.narrow(1, m->filled, piece), seen[n]);
      }
      m->filled += piece;
    } else {
      memory->push(*m, seen, blocks_, ctx, aux);
    }
    state.length += piece;
    m->length += piece;
    done += piece;
  }
  return out.size() == 1 ? out[0] : cat(out, 1);
}

Tensor LM::forward_staircase(const Tensor& ids, int64_t segment) {
  TZ_CHECK(memory && !memory->plan.compressive() && memory->plan.shift == 0,
           "LM: forward_staircase is the parallel form of plain segment memory (mem_len; no cmem_len, no "
           "shift_mem_down)");
  TZ_CHECK(segment >= 1, "LM: forward_staircase needs a segment length >= 1, got ", segment);
  std::map<std::string, Tensor> carry;
  nn::MixerContext ctx{.start = 0, .pos = pos.get(), .carry = &carry, .segment = segment};
  Tensor h = embed(ids, 0);
  for (size_t n = 0; n < schedule_.size(); ++n) {
    ctx.layer = int64_t(n);
    ctx.segment_memory = memory->plan.mem[n];
    h = blocks_[n]->forward(h, ctx);
  }
  return logits(h);
}

Tensor LM::forward(const std::vector<Tensor>& inputs, State* state, nn::AuxLosses* aux) {
  TZ_CHECK(inputs.size() == 1, "LM: expected one input (ids), got ", inputs.size());
  const Tensor& ids = inputs[0];
  if (memory && state) return forward_segments(ids, *state, aux);
  if (state)
    TZ_CHECK(state->layers.size() == schedule_.size(), "LM: state has ", state->layers.size(), " layers, model has ",
             schedule_.size());
  const int64_t start = state ? state->length : 0;
  const bool prefix = mem_ > 0 && start == 0;  // the memory runs before the first real token
  Tensor h = prefix ? prepend_memory(memory_tokens, embed(ids, start)) : embed(ids, start);
  std::map<std::string, Tensor> carry;  // the mixers see real token t at position m + t
  nn::MixerContext ctx{.start = start > 0 ? start + mem_ : 0, .pos = pos.get(), .aux = aux, .carry = &carry};
  if (is_training() && fcm_ratio_ > 0 && !state)  // FCM: training only; inference is unchanged
    ctx.forgotten_keys =
        pad_memory_keys(draw_forgotten_keys(ids.size(0), ids.size(1), fcm_ratio_, default_generator()), mem_);
  h = run_blocks(h, ctx, state);
  if (prefix) h = h.narrow(1, mem_, ids.size(1));
  if (state) state->length += ids.size(1);
  return logits(h);
}

int LM::causal_input() const {
  for (size_t i = 0; i < layers->size(); ++i)
    if (!layers->at<Block>(i)->causal()) return -1;
  return 0;
}

std::string LM::why_no_step() const {
  for (size_t i = 0; i < layers->size(); ++i)
    if (std::string why = layers->at<Block>(i)->why_no_step(); !why.empty()) return cat_str("layer ", i, " ", why);
  return "";
}

Model::State LM::make_state(int64_t batch, int64_t capacity) const {
  std::string why = why_no_step();
  TZ_CHECK(why.empty(), "LM: no step-by-step decoding: ", why);
  State s;
  // With segment memory a cache holds at most the memory and one segment, whatever the length.
  const int64_t keys = memory ? memory->plan.longest() + dims_.context : capacity + mem_;
  for (int64_t b : schedule_)  // one state per application (a shared block has one per step)
    s.layers.push_back(layers->at<Block>(size_t(b))->make_state(batch, keys, tok_emb->weight.dtype()));
  if (memory) s.memory = std::make_unique<SegmentMemory>(schedule_.size());
  return s;
}

Model::State LM::make_memory(int64_t) const {
  TZ_CHECK(memory, describe(), ": has no segment memory (mem_len / cmem_len)");
  State s;
  s.memory = std::make_unique<SegmentMemory>(schedule_.size());
  return s;
}

std::string LM::describe() const {
  return cat_str("LM(vocab=", vocab_, ", dim=", dims_.dim, ", depth=", dims_.depth, ", heads=", dims_.heads,
                 ", context=", dims_.context, head ? "" : ", tied head", recurrence_.shared ? ", shared block" : "",
                 act_ ? ", act" : "", ")");
}

}  // namespace tz::models
