#include "models/segment_memory.h"

#include <algorithm>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/text.h"
#include "models/block.h"
#include "nn/attention/attention.h"
#include "nn/registry.h"

namespace tz::models {

namespace {
// One value per layer from a key holding one value or one per layer.
std::vector<int64_t> per_layer(const nn::Config& c, const nn::Key<std::vector<int64_t>>& key, int64_t layers) {
  std::vector<int64_t> v = c.get(key);
  TZ_CHECK(v.size() == 1 || int64_t(v.size()) == layers, c.source(), ": ", key.name, " lists ", v.size(),
           " lengths for ", layers, " layers (give one, or one per layer)");
  for (int64_t x : v) TZ_CHECK(x >= 0, c.source(), ": ", key.name, " must be >= 0, got ", x);
  if (v.size() == 1) v.assign(size_t(layers), v[0]);
  return v;
}

// The last `keep` rows (dim 1) of t, in their own memory: a memory is the same tensor whether
// it was just computed or restored from a file, so continuing from either gives the same bits.
Tensor last_rows(const Tensor& t, int64_t keep) { return t.narrow(1, t.size(1) - keep, keep).contiguous(); }

Tensor append(const Tensor& a, const Tensor& b) { return a.defined() ? cat({a, b}, 1) : b; }
}  // namespace

bool MemoryPlan::on() const {
  for (size_t n = 0; n < mem.size(); ++n)
    if (mem[n] + cmem[n] > 0) return true;
  return false;
}

bool MemoryPlan::compressive() const {
  return std::any_of(cmem.begin(), cmem.end(), [](int64_t m) { return m > 0; });
}

int64_t MemoryPlan::longest() const {
  int64_t l = 0;
  for (size_t n = 0; n < mem.size(); ++n) l = std::max(l, mem[n] + cmem[n]);
  return l;
}

MemoryPlan read_memory_plan(const nn::Config& c, int64_t layers, int64_t dim) {
  MemoryPlan p{.mem = per_layer(c, kMemLen, layers), .cmem = per_layer(c, kCmemLen, layers)};
  p.shift = c.get(kShiftMemDown);
  p.bptt = c.get(kMemBptt);
  const std::string src = c.source();
  TZ_CHECK(p.shift >= 0 && p.shift <= layers, src, ": shift_mem_down must be in [0, depth = ", layers, "], got ",
           p.shift);
  TZ_CHECK(p.bptt >= 0, src, ": mem_bptt must be >= 0, got ", p.bptt);
  TZ_CHECK(p.on() || (!c.has(kShiftMemDown.name) && !c.has(kMemBptt.name)), src,
           ": shift_mem_down and mem_bptt need segment memory (mem_len or cmem_len > 0)");
  if (p.compressive()) {
    p.compression = read_compression(c, dim);
    p.attn_loss = p.compression.attn_weight;
    p.ae_loss = p.compression.ae_weight;
    TZ_CHECK(p.compression.fn != "most_used" || p.shift == 0, src,
             ": compress_fn 'most_used' ranks a layer's own memory by its attention; it does not combine with "
             "shift_mem_down");
  } else {
    for (const auto& key : compression_keys())
      TZ_CHECK(!c.has(key.key), src, ": ", key.key, " needs compressed memory (cmem_len > 0)");
  }
  return p;
}

std::vector<nn::ConfigKey> memory_keys() {
  std::vector<nn::ConfigKey> keys{kMemLen, kCmemLen, kShiftMemDown, kMemBptt};
  for (const auto& k : compression_keys()) keys.push_back(k);
  return keys;
}

SegmentMemory::SegmentMemory(size_t layers)
    : mem(layers), mem_valid(layers), cmem(layers), cmem_valid(layers), pending(layers + 1) {}

void SegmentMemory::visit(nn::StateVisitor& v) {
  nn::MixerState::visit(v);
  v.count("filled", filled);
  for (size_t n = 0; n < mem.size(); ++n) {
    v.tensor(cat_str("mem", n), mem[n]);
    v.tensor(cat_str("mem_valid", n), mem_valid[n]);
    v.tensor(cat_str("cmem", n), cmem[n]);
    v.tensor(cat_str("cmem_valid", n), cmem_valid[n]);
  }
  for (size_t n = 0; n < pending.size(); ++n) v.tensor(cat_str("pending", n), pending[n]);
}

void SegmentMemory::reset_rows(const std::vector<int64_t>& rows) {
  NoGradGuard no_grad;
  for (auto* flags : {&mem_valid, &cmem_valid})
    for (Tensor& f : *flags) {
      if (!f.defined()) continue;
      std::vector<int64_t> keep = f.contiguous().to_vector<int64_t>();
      const int64_t B = f.size(0), M = f.size(1);
      for (int64_t b : rows) {
        TZ_CHECK(b >= 0 && b < B, "SegmentMemory: reset row ", b, " of a memory of ", B, " rows");
        std::fill(keep.begin() + b * M, keep.begin() + (b + 1) * M, 0);
      }
      f = from_vector(keep, f.shape());
    }
}

void SegmentMemory::detach() {
  for (auto* ts : {&mem, &cmem, &pending})
    for (Tensor& t : *ts)
      if (t.defined()) t = t.detach();
}

SegmentRecurrence::SegmentRecurrence(const MemoryPlan& p, int64_t dim, Generator& gen) : plan(p) {
  for (size_t n = 0; n < plan.cmem.size(); ++n)
    compressors.push_back(
        plan.cmem[n] > 0 ? register_module(cat_str("compress", n), std::make_shared<Compressor>(plan.compression, gen))
                         : nullptr);
}

void SegmentRecurrence::memory_of(const SegmentMemory& m, size_t n, Tensor& memory, Tensor& valid) const {
  memory = valid = Tensor();
  std::vector<Tensor> rows, flags;
  if (m.cmem[n].defined()) rows.push_back(m.cmem[n]), flags.push_back(m.cmem_valid[n]);
  if (m.mem[n].defined()) rows.push_back(m.mem[n]), flags.push_back(m.mem_valid[n]);
  if (rows.empty()) return;
  memory = rows.size() == 1 ? rows[0] : cat(rows, 1);
  Tensor f = flags.size() == 1 ? flags[0] : cat(flags, 1);
  const std::vector<int64_t> v = f.contiguous().to_vector<int64_t>();
  if (std::any_of(v.begin(), v.end(), [](int64_t x) { return x == 0; })) valid = f;
}

void SegmentRecurrence::push(SegmentMemory& m, const std::vector<Tensor>& seen,
                             const std::vector<std::shared_ptr<Block>>& blocks, const nn::MixerContext& ctx,
                             nn::AuxLosses* aux) const {
  const size_t N = plan.mem.size();
  TZ_CHECK(seen.size() == N + 1, "SegmentRecurrence: expected the mixer inputs of ", N, " layers and the final stream");
  const int64_t B = seen[0].size(0), T = seen[0].size(1);
  for (size_t n = 0; n < N; ++n) {
    const int64_t M = plan.mem[n], Mc = plan.cmem[n];
    if (M + Mc == 0) continue;
    Tensor src = seen[std::min(n + size_t(plan.shift), N)];
    if (plan.bptt == 0) src = src.detach();
    Tensor usage;  // most_used: the attention each row of [mem; u] received over this segment
    if (Mc > 0 && compressors[n]->needs_usage()) {
      NoGradGuard no_grad;
      nn::MixerContext at{.start = ctx.start, .pos = ctx.pos};
      memory_of(m, n, at.memory, at.memory_valid);
      auto attn = std::dynamic_pointer_cast<nn::Attention>(blocks[n]->mixer);
      TZ_CHECK(attn, "compress_fn most_used: layer ", n, " is not an attention layer");
      Tensor p = sum(attn->probabilities(seen[n].detach(), at), {1, 2});  // [B, keys]
      const int64_t skip = m.cmem[n].defined() ? m.cmem[n].size(1) : 0;
      usage = p.narrow(1, skip, p.size(1) - skip);
    }
    Tensor all = append(m.mem[n], src);
    Tensor all_valid = append(m.mem_valid[n], ones({B, T}, DType::i64));
    const int64_t keep = std::min(M, all.size(1)), lost = all.size(1) - keep;
    m.mem[n] = keep > 0 ? last_rows(all, keep) : Tensor();
    m.mem_valid[n] = keep > 0 ? last_rows(all_valid, keep) : Tensor();
    if (Mc == 0 || lost == 0) continue;
    const Tensor old = all.narrow(1, 0, lost), old_valid = all_valid.narrow(1, 0, lost);
    const Tensor used = usage.defined() ? usage.narrow(1, 0, lost) : Tensor();
    const Compressor& f = *compressors[n];
    Tensor compressed = f.forward(old.detach(), used);
    if (aux && is_training()) {
      auto attn = std::dynamic_pointer_cast<nn::Attention>(blocks[n]->mixer);
      TZ_CHECK(attn, "compressive memory: layer ", n, " is not an attention layer (the reconstruction loss needs one)");
      if (plan.attn_loss > 0)
        aux->add(cat_str("compress_attn", n),
                 attention_reconstruction_loss(*attn, seen[n], old, compressed) * plan.attn_loss);
      if (plan.ae_loss > 0) aux->add(cat_str("compress_ae", n), f.autoencoding_loss(old.detach()) * plan.ae_loss);
    }
    m.cmem[n] = append(m.cmem[n], compressed.detach());
    m.cmem_valid[n] = append(m.cmem_valid[n], f.compress_mask(old_valid, used));
    const int64_t ckeep = std::min(Mc, m.cmem[n].size(1));
    m.cmem[n] = last_rows(m.cmem[n], ckeep);
    m.cmem_valid[n] = last_rows(m.cmem_valid[n], ckeep);
  }
}

std::string SegmentRecurrence::describe() const {
  return cat_str("SegmentRecurrence(mem=", nn::json_text(plan.mem), ", cmem=", nn::json_text(plan.cmem),
                 ", shift_mem_down=", plan.shift, ", mem_bptt=", plan.bptt, ")");
}

}  // namespace tz::models

namespace tz::zoo {

void register_transformer_xl(nn::Registry& r) {
  r.add({.id = "transformer_xl",
         .summary = "Segment recurrence: each layer's keys and values also cover its inputs at the last M positions "
                    "(stop-gradient), with relative positions",
         .keys = {models::kMemLen, models::kMemBptt},
         .test_config = R"({"pos": "txl_rel_pos", "mem_len": 8})",
         .example = R"({"pos": "txl_rel_pos", "context": 128, "mem_len": 128})"});
}

void register_deep_lrm_memory(nn::Registry& r) {
  r.add({.id = "deep_lrm_memory",
         .summary = "Transformer-XL with long memory in few layers and short memory elsewhere (per-layer mem_len)",
         .keys = {models::kMemLen},
         .test_config = R"({"pos": "rope", "mem_len": [4, 16]})",
         .example = R"({"pos": "rope", "depth": 6, "context": 128, "mem_len": [64, 64, 64, 64, 64, 512]})"});
}

void register_enhanced_recurrence(nn::Registry& r) {
  r.add({.id = "enhanced_recurrence",
         .summary = "ERNIE-Doc's enhanced recurrence: layer n's memory holds layer n + k's inputs of the last segment",
         .keys = {models::kShiftMemDown},
         .test_config = R"({"pos": "rope", "mem_len": 8, "shift_mem_down": 1})",
         .example = R"({"pos": "rope", "context": 128, "mem_len": 128, "shift_mem_down": 1})"});
}

void register_compressive_memory(nn::Registry& r) {
  std::vector<nn::ConfigKey> keys{models::kMemLen, models::kCmemLen};
  for (const auto& k : models::compression_keys()) keys.push_back(k);
  r.add({.id = "compressive_memory",
         .summary = "Compressive Transformer: memories leaving the FIFO are compressed (pool, conv, most-used) into a "
                    "second memory, trained by attention reconstruction",
         .keys = keys,
         .test_config = R"({"pos": "rope", "mem_len": 6, "cmem_len": 4, "compress_rate": 2})",
         .example = R"({"pos": "rope", "context": 128, "mem_len": 128, "cmem_len": 128, "compress_rate": 3})"});
}

}  // namespace tz::zoo
