// The Recurrent Memory Transformer: see rmt.h.
#include "models/rmt.h"

#include <algorithm>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/text.h"
#include "models/block.h"
#include "models/encoder_stack.h"
#include "models/keys.h"
#include "models/zoo.h"

namespace tz::models {

std::vector<nn::ConfigKey> rmt_keys() {
  return {kVocab, kDim, kDepth, kHeads, kContext, kTieWeights, kRmtSegment, kRmtMemory, kRmtBptt};
}

RecurrentMemoryTransformer::RecurrentMemoryTransformer(const nn::Config& config, const nn::Registry& registry,
                                                       Generator& gen)
    : Model(config) {
  const nn::Config& c = config_;
  check_model_key(c, {"rmt"});
  vocab_ = c.get(kVocab);
  dim_ = c.get(kDim);
  const int64_t depth = c.get(kDepth), heads = c.get(kHeads);
  context_ = c.get(kContext);
  segment_ = c.get(kRmtSegment);
  m_ = c.get(kRmtMemory);
  bptt_ = c.get(kRmtBptt);
  for (auto [key, value] : {std::pair{"vocab", vocab_},
                            {"dim", dim_},
                            {"depth", depth},
                            {"heads", heads},
                            {"context", context_},
                            {"rmt_segment", segment_},
                            {"rmt_memory", m_}})
    TZ_CHECK(value > 0, c.source(), ": ", key, " must be positive, got ", value);
  TZ_CHECK(bptt_ >= -1, c.source(), ": rmt_bptt must be >= 0, or -1 for all segments, got ", bptt_);
  TZ_CHECK(dim_ % heads == 0, c.source(), ": heads (", heads, ") must divide dim (", dim_, ")");
  // The backbone sees one segment with its read and write copies of the memory.
  const nn::ModelDims d{.dim = dim_,
                        .heads = heads,
                        .context = 2 * m_ + segment_,
                        .depth = depth,
                        .bias = c.get(kBias),
                        .dropout = c.get(kDropout)};
  TZ_CHECK(d.dropout >= 0 && d.dropout < 1, c.source(), ": dropout must be in [0, 1), got ", d.dropout);
  tok_emb = register_module("tok_emb",
                            std::make_shared<nn::Embedding>(nn::EmbeddingOptions{.num = vocab_, .dim = dim_}, gen));
  pos = register_module("pos", make_wrapper_positions(d, registry, c, gen));
  layers = register_module("layers", make_stack({.depth = depth, .causal = true}, d, registry, c, gen));
  norm_f = register_module("norm_f", registry.make_norm(c.get(kNorm), d, c, gen));
  if (!c.get(kTieWeights))
    head = register_module(
        "head", std::make_shared<nn::Linear>(nn::LinearOptions{.in = dim_, .out = vocab_, .bias = false}, gen));
  mem_init = register_parameter("mem_init", randn({m_, dim_}, gen) * 0.02);  // the scale of the embeddings
  check_wrapper_keys(c, registry, rmt_keys());
  for (size_t i = 0; i < layers->size(); ++i)
    TZ_CHECK(layers->at<Block>(i)->why_no_step().empty(), c.source(), ": rmt decodes with cached blocks; mixer '",
             c.get(kMixer)[0], "' has no step form (", layers->at<Block>(i)->why_no_step(), ")");
}

std::string RecurrentMemoryTransformer::describe() const {
  return cat_str("RecurrentMemoryTransformer(vocab ", vocab_, ", dim ", dim_, ", depth ", layers->size(), ", segment ",
                 segment_, ", memory ", m_, ", bptt ", bptt_, ")");
}

Tensor RecurrentMemoryTransformer::memory_input(const Tensor& mem, int64_t B) const {
  return mem.defined() ? mem : mem_init.unsqueeze(0).expand({B, m_, dim_});
}

Tensor RecurrentMemoryTransformer::memory_of(RmtState& s, int64_t B) const {
  Tensor mem = s.mem;
  if (s.restart.defined() && mem.defined())  // restarted rows read mem_0 again
    mem = where(s.restart.view({B, 1, 1}), memory_input(Tensor(), B), mem);
  s.restart = Tensor();
  return mem;
}

Tensor RecurrentMemoryTransformer::run_blocks(const Tensor& x, int64_t start,
                                              std::vector<std::unique_ptr<nn::MixerState>>* states) const {
  nn::MixerContext ctx{.start = start, .pos = pos.get()};
  Tensor h = x;
  for (size_t i = 0; i < layers->size(); ++i) {
    ctx.layer = int64_t(i);
    h = layers->at<Block>(i)->forward(h, ctx, states ? (*states)[i].get() : nullptr);
  }
  return h;
}

Tensor RecurrentMemoryTransformer::logits(const Tensor& y) const {
  const Tensor n = norm_f->forward(y);
  return head ? head->forward(n) : linear(n, tok_emb->weight);
}

std::pair<Tensor, Tensor> RecurrentMemoryTransformer::run_segment(const Tensor& ids, const Tensor& mem, bool write) {
  const int64_t B = ids.size(0), n = ids.size(1);
  TZ_CHECK(n >= 1 && n <= segment_, describe(), ": a segment holds 1 to ", segment_, " tokens, got ", n);
  Tensor e = tok_emb->forward(ids);
  if (Tensor p = pos->embed(m_, n, e.dtype()); p.defined()) e = e + p;
  std::vector<Tensor> parts{memory_input(mem, B), e};
  if (write) parts.push_back(memory_input(mem, B));
  const Tensor y = run_blocks(cat(parts, 1), 0, nullptr);
  return {logits(y.narrow(1, m_, n)), write ? y.narrow(1, m_ + n, m_) : Tensor()};
}

Tensor RecurrentMemoryTransformer::forward(const std::vector<Tensor>& inputs, State* state, nn::AuxLosses*) {
  TZ_CHECK(!inputs.empty() && inputs[0].dim() == 2 && inputs[0].dtype() == DType::i64, describe(),
           ": expected {ids i64 [B, T]}");
  const Tensor& ids = inputs[0];
  const int64_t B = ids.size(0), T = ids.size(1), L = segment_;
  TZ_CHECK(T >= 1, describe(), ": expected at least one token");
  RmtState* s = nullptr;
  if (state) {
    s = dynamic_cast<RmtState*>(state->memory.get());
    TZ_CHECK(s, describe(), ": forward() was given a state not made by its make_state() or make_memory()");
    TZ_CHECK(s->batch == B, describe(), ": the state holds ", s->batch, " sequences, the input ", B);
    if (!state->layers.empty()) return decode(ids, *state, *s);
  }
  Tensor mem = s ? memory_of(*s, B) : Tensor();
  int64_t tau = s ? s->segments : 0;
  std::vector<Tensor> out;
  for (int64_t t = 0; t < T; t += L) {
    const int64_t n = std::min(L, T - t);
    if (mem.defined() && bptt_ >= 0 && tau % (bptt_ + 1) == 0) mem = mem.detach();  // truncated BPTT
    // A memory keeps what every segment writes; from scratch, a last partial segment's is unused.
    auto [lg, next] = run_segment(ids.narrow(1, t, n), mem, s || n == L);
    out.push_back(lg);
    if (next.defined()) mem = next, ++tau;
  }
  if (s) {
    s->mem = mem;
    s->segments = tau;
    s->length += T;
    state->length += T;
  }
  return out.size() == 1 ? out[0] : cat(out, 1);
}

Tensor RecurrentMemoryTransformer::decode(const Tensor& ids, State& state, RmtState& s) {
  const int64_t B = ids.size(0), T = ids.size(1), L = segment_;
  TZ_CHECK(state.layers.size() == layers->size(), describe(),
           ": forward() was given a state not made by its make_state()");
  const DType dt = tok_emb->weight.dtype();
  std::vector<Tensor> out;
  for (int64_t done = 0; done < T;) {
    if (s.filled == 0) {  // a segment starts: fresh caches, then the read tokens
      s.mem = memory_of(s, B);
      for (size_t i = 0; i < layers->size(); ++i) state.layers[i] = layers->at<Block>(i)->make_state(B, 2 * m_ + L, dt);
      run_blocks(memory_input(s.mem, B), 0, &state.layers);
    }
    const int64_t n = std::min(T - done, L - s.filled), at = m_ + s.filled;
    Tensor e = tok_emb->forward(ids.narrow(1, done, n));
    if (Tensor p = pos->embed(at, n, e.dtype()); p.defined()) e = e + p;
    out.push_back(logits(run_blocks(e, at, &state.layers)));
    s.filled += n;
    done += n;
    if (s.filled == L) {  // the write tokens see the whole segment: their outputs are mem_{τ+1}
      s.mem = run_blocks(memory_input(s.mem, B), m_ + L, &state.layers).detach();
      s.filled = 0;
      ++s.segments;
    }
  }
  s.length += T;
  state.length += T;
  return out.size() == 1 ? out[0] : cat(out, 1);
}

void RmtState::detach() {
  if (mem.defined()) mem = mem.detach();
}

void RmtState::reset_rows(const std::vector<int64_t>& rows) {
  std::vector<int64_t> flags =
      restart.defined() ? restart.contiguous().to_vector<int64_t>() : std::vector<int64_t>(size_t(batch), 0);
  for (int64_t b : rows) {
    TZ_CHECK(b >= 0 && b < batch, "RmtState: reset row ", b, " of a memory of ", batch, " rows");
    flags[size_t(b)] = 1;
  }
  restart = from_vector(flags, {batch});
}

Model::State RecurrentMemoryTransformer::make_state(int64_t batch, int64_t capacity) const {
  TZ_CHECK(batch >= 1 && capacity >= 1, describe(), ": a state needs batch >= 1 and capacity >= 1, got batch ", batch,
           ", capacity ", capacity, " (any length decodes: the memory is recurrent)");
  State st = make_memory(batch);
  for (size_t i = 0; i < layers->size(); ++i)
    st.layers.push_back(layers->at<Block>(i)->make_state(batch, 2 * m_ + segment_, tok_emb->weight.dtype()));
  return st;
}

Model::State RecurrentMemoryTransformer::make_memory(int64_t batch) const {
  TZ_CHECK(batch >= 1, describe(), ": a memory needs batch >= 1, got ", batch);
  State st;
  auto mem = std::make_unique<RmtState>();
  mem->batch = batch;
  st.memory = std::move(mem);
  return st;
}

// context tokens, each segment its own copy x1..xn SEP x1..xn 0.. (n = (L - 1) / 2): reading
// SEP predicts x1, ..., x(n-1) predicts xn.
Model::Batch RecurrentMemoryTransformer::sample(int64_t B, Generator& gen) const {
  const int64_t T = context_, L = segment_, n = (L - 1) / 2;
  TZ_CHECK(L >= 3 && vocab_ >= 3, describe(), ": the copy task needs rmt_segment >= 3 and vocab >= 3");
  Tensor x = zeros({B, T}, DType::i64), y = full({B, T}, -100.0, DType::i64);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t start = 0; start < T; start += L) {
      std::vector<int64_t> s(size_t(L + 1), 0);
      for (int64_t i = 0; i < n; ++i) s[size_t(i)] = s[size_t(n + 1 + i)] = gen.randint(2, vocab_);
      s[size_t(n)] = 1;
      for (int64_t t = 0; t < L && start + t < T; ++t) {
        x.set({b, start + t}, double(s[size_t(t)]));
        if (t >= n && t < 2 * n) y.set({b, start + t}, double(s[size_t(t + 1)]));
      }
    }
  return {{x}, y};
}

}  // namespace tz::models

namespace tz::zoo {

void register_rmt(nn::Registry& r) {
  r.add({.id = "rmt",
         .summary = "Recurrent Memory Transformer: segments read as [mem; x; mem] by a causal transformer, the outputs "
                    "at the write positions become the next segment's memory; truncated BPTT over segments",
         .keys = models::wrapper_keys(models::rmt_keys()),
         .test_config = R"({"model": "rmt", "vocab": 16, "dim": 16, "depth": 2, "heads": 2, "context": 24, )"
                        R"("rmt_segment": 8, "rmt_memory": 2})",
         .example = R"({"model": "rmt", "dim": 256, "depth": 4, "heads": 4, "context": 4096, "rmt_segment": 512, )"
                    R"("rmt_memory": 10, "rmt_bptt": 4})",
         .model = [](const nn::Config& c,
                     Generator& g) { return std::make_shared<models::RecurrentMemoryTransformer>(c, registry(), g); },
         .chunk = 8});
}

}  // namespace tz::zoo
