// Persistent memory (attn_num_mem_kv). "Augmenting Self-attention with Persistent Memory",
// Sukhbaatar et al. 2019, arXiv:1907.01470 (x-transformers' num_mem_kv).
// N learned key/value vectors per key/value head, the same for every sequence, come before
// the keys and values of each attention layer:
//   K' = [M_k; K],  V' = [M_v; V]     M_k [k_heads, N, Dk], M_v [G, N, D]
//   y_i = sum_j softmax_j(q_i . K'_j / sqrt(Dk)) V'_j
// The slots are visible to every query (also t = 0, which then attends to N + 1 keys) and
// have no position: they are not rotated (rope, xpos) and the causal offset shifts past them
// (q_offset + N), so the fused kernel still runs. (The paper appends them, [K; M_k]: without
// a position the order does not change the softmax sum; first, the causal mask skips them.) They pass the qk stage like
// any key (qk_norm normalises them, as x-transformers does). Stage: lead_keys. The KV cache holds only the tokens'
// keys; the slots are put in front at every call. The paper's all-attention layer also drops
// the FFN: that is a layout of mixers only ("layout": "ssss", models/layout.h). Refused:
// relative score biases (alibi, t5_rel_bias: the table is indexed by
// distance, which would bias the slots), query-dependent position terms (tupe, txl_rel_pos), and attn_adaptive_span
// (its soft mask is a function of i - j and would hide the slots).
#include "autograd/ops.h"
#include "core/random.h"
#include "nn/attention/attention.h"

namespace tz::nn {

namespace {
const Key<int64_t> kNumMemKv{"attn_num_mem_kv", 0,
                             "persistent memory: N learned key/value slots per key/value head, seen by every "
                             "query, no position; 0 = off"};

class PersistentMemory : public AttentionFeature {
 public:
  PersistentMemory(int64_t n, std::string pos) : n_(n), pos_(std::move(pos)) {}
  std::string key() const override { return kNumMemKv.name; }
  std::vector<Hook> hooks() const override { return {{Stage::lead_keys}}; }
  std::string describe() const override { return cat_str(", mem_kv=", n_); }
  void build(Attention& a, Generator& gen) const override {
    // N(0, 1) as x-transformers: the slots start as strong, random attractors the layer tunes.
    const AttentionLayout& L = a.layout;
    a.add_parameter("mem_k", randn({L.k_heads, n_, L.Dk}, gen));
    a.add_parameter("mem_v", randn({L.G, n_, L.D}, gen));
  }
  void check_call(const Attention& a, const AttentionCall& c) const override {
    const PositionScheme* p = a.cross() ? nullptr : c.ctx.pos;  // cross-attention has no positions
    TZ_CHECK(!p || !(p->biases_scores() || p->biases_with_queries()), "Attention: 'attn_num_mem_kv' and pos '",
             pos_.empty() ? "(the model's)" : pos_,
             "' conflict: the scheme's score bias is indexed by key position, and the memory slots have none");
  }
  LeadKeys lead_keys(const Attention& a, const AttentionCall&) const override {
    return {.k = a.param("mem_k"), .v = a.param("mem_v")};
  }

 private:
  int64_t n_;
  std::string pos_;  // the config's position scheme, for the refusal's message
};
}  // namespace

AttentionFeatureInfo attn_feature_persistent_memory() {
  return {.name = "persistent_memory",
          .keys = {kNumMemKv},
          .make = [](const AttentionOptions&, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            const int64_t n = c.get(kNumMemKv);
            TZ_CHECK(n >= 0, c.source(), ": attn_num_mem_kv must be >= 0, got ", n);
            if (n == 0) return nullptr;
            // Read by name only to refuse it: the span's mask is a function of i - j.
            TZ_CHECK(!c.has("attn_adaptive_span") || c.get_int("attn_adaptive_span", 0) == 0, c.source(),
                     ": 'attn_num_mem_kv' and 'attn_adaptive_span' conflict: the span's soft mask is a function "
                     "of the distance i - j, and the memory slots have no position");
            return std::make_shared<PersistentMemory>(n, c.has("pos") ? c.get_string("pos", "") : "");
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_persistent_memory(nn::Registry& r) {
  r.add({.id = "persistent_memory",
         .summary = "N learned key/value slots per head before each layer's keys: seen by every query, no position",
         .keys = nn::attention_config_keys("persistent_memory"),
         .test_config = R"({"attn_num_mem_kv": 4})",
         // The all-attention layer (sec. 4 of the paper): the slots stand in for the FFN.
         .example = R"({"attn_num_mem_kv": 16, "layout": "ssssss"})"});
}

}  // namespace tz::zoo
