// Attention features: each option of the attention mixer (x-transformers' attention flags) is a
// small class in its own file under nn/attention/features/, hooking one or more stages of a
// fixed pipeline (nn/attention/attention.h):
//
//   projections  q, k, v = x W (sizes: dim_head, kv_heads, collab_heads; transforms: dconv)
//   qk           per-head q, k before the cache (qk_norm) and the score form after it
//                (collab_heads' mixing vectors, qk_norm's g)
//   cache        which keys a decoding state keeps (default: every key; streaming_llm and
//                lm_infinite keep the first and the most recent ones, a bounded cache)
//   lead_keys    keys and values that are no tokens of the sequence (persistent_memory),
//                put before the call's keys after the cache: every query sees them and no
//                position touches them (no rotation; the causal offset shifts past them)
//   scores       the [B, H, T, S] logits before the masks (realformer, talking_heads)
//   normaliser   masked logits -> weights (softmax; entmax, topk, adaptive_span replace it)
//   (core spec)  what the attention core itself does, on either path (SdpaSpec: topk's selection;
//                a mask and score term from q and k: the position remaps of position_remap.h)
//   probs        the weights (talking_heads, attn_dropout)
//   values       the merged heads [B, T, H D] before W_o (gate_values)
//   output       after W_o (attn_on_attn)
//
// A feature declares its hooks; one that *replaces* a stage's default excludes every other
// replacement of the same stage (check_conflicts, the one place conflicts are decided, names
// both keys). A feature whose hooks read the [B, H, T, S] scores says so (needs_scores): the
// layer then takes the composite path; all others keep the fused kernel. A feature the core
// can run itself sets it in the spec instead (sdpa_spec: top-k is a threshold pass of the
// fused kernel), and keeps the fused path.
//
// Features are immutable settings read from the config: the layer (Attention) owns their
// parameters under the names the feature registers, so one feature object can serve many
// layers. Registration: the feature file defines `tz::nn::attn_feature_<name>()` (its keys
// and factory) and `tz::zoo::register_<name>()` (its catalogue ids), and
// nn/attention/variants.def lists TZ_ATTN_FEATURE(<name>) once; the list's order is the order
// in which features of the same stage run.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "nn/attention/sdpa.h"
#include "nn/config.h"
#include "nn/mixer.h"

namespace tz::nn {

class Attention;
struct KVState;
struct AttentionOptions;

enum class Stage { projections, qk, cache, lead_keys, scores, normaliser, probs, values, output };
constexpr int kStages = int(Stage::output) + 1;
const char* stage_name(Stage s);

struct Hook {
  Stage stage;
  bool replaces = false;  // replaces the stage's default: at most one feature per stage may
};

// The sizes of the projections. The core fills the plain layout (G = H, D = C / H), then
// each feature edits it in list order.
struct AttentionLayout {
  int64_t H = 0;          // query heads
  int64_t G = 0;          // key/value heads (divides H)
  int64_t D = 0;          // value head size (the output reads H D)
  int64_t q_heads = 0;    // heads of the projected q (1 for collab_heads' shared q)
  int64_t k_heads = 0;    // heads of the projected (and cached) k
  int64_t Dk = 0;         // head size of q and k
  double scale = 0;       // score scale; 0 = 1 / sqrt(Dk)
  int64_t out_width = 0;  // columns of W_o (C; 2 C for attn_on_attn)
  int64_t q_width() const { return q_heads * Dk; }
  int64_t k_width() const { return k_heads * Dk; }
  int64_t v_width() const { return G * D; }
  bool plain() const { return q_heads == H && k_heads == G && G == H && Dk == D; }
};

// One forward call, as the hooks see it.
struct AttentionCall {
  const Tensor& x;  // [B, T, C]
  const MixerContext& ctx;
  KVState* state;    // null: from scratch
  int64_t q_offset;  // key position of query 0: the cache length before x, or 0
  bool training;
};

class AttentionFeature {
 public:
  virtual ~AttentionFeature() = default;
  virtual std::string key() const = 0;  // the config key that turns it on
  virtual std::vector<Hook> hooks() const = 0;
  virtual std::string describe() const = 0;  // ", talking_heads"
  virtual bool needs_scores(const AttentionCall&) const { return false; }

  // Construction.
  virtual void layout(AttentionLayout&) const {}
  virtual void build(Attention&, Generator&) const {}  // registers its parameters on the layer
  virtual void init_state(const Attention&, KVState&, int64_t batch, DType) const {}
  // Refuses what the call brings that the feature cannot honour (e.g. a rotary scheme).
  virtual void check_call(const Attention&, const AttentionCall&) const {}

  // The stages, in pipeline order.
  virtual Tensor projections(const Attention&, const Tensor& qkv, const AttentionCall&) const { return qkv; }
  virtual Tensor qk(const Attention&, const Tensor& t) const { return t; }  // q or k [B, *, n, Dk]
  // The cache stage (a replacement of the default append): puts the call's k [B, k_heads, T,
  // Dk], v [B, G, T, D] into the state and sets k, v to every key this call attends to, in
  // position order. Whatever it keeps must fit the buffers its init_state made.
  virtual void cache(const Attention&, KVState&, Tensor& k, Tensor& v, const AttentionCall&) const {}
  // Leading keys of the lead_keys stage: k [k_heads, N, Dk] as projected (the qk stage is
  // run on them as on the call's keys), v [G, N, D]; undefined = none. The same for every
  // batch row and call; never cached.
  struct LeadKeys {
    Tensor k, v;
  };
  virtual LeadKeys lead_keys(const Attention&, const AttentionCall&) const { return {}; }
  virtual void score_form(const Attention&, Tensor& q, Tensor& k) const {}
  // What the attention core does for the feature on either path (e.g. spec.topk), given the
  // q [B, q_heads, T, Dk] and k [B, k_heads, S, Dk] it will read (after score_form).
  virtual void sdpa_spec(const Attention&, SdpaSpec&, const Tensor& q, const Tensor& k, const AttentionCall&) const {}
  virtual Tensor scores(const Attention&, const Tensor& s, const AttentionCall&) const { return s; }
  virtual Tensor normalise(const Attention&, const Tensor& s, const AttentionCall&) const { return s; }
  virtual Tensor probs(const Attention&, const Tensor& p, const AttentionCall&) const { return p; }
  virtual Tensor values(const Attention&, const Tensor& m, const AttentionCall&) const { return m; }
  virtual Tensor output(const Attention&, const Tensor& o, const AttentionCall&) const { return o; }
  // After a forward from scratch: auxiliary losses (adaptive span's L1 penalty).
  virtual void aux_loss(const Attention&, const MixerContext&) const {}
};

using FeatureList = std::vector<std::shared_ptr<const AttentionFeature>>;

struct AttentionFeatureInfo {
  std::string name;
  std::vector<ConfigKey> keys;
  // Reads and checks the feature's keys; null when the config leaves the feature off.
  // `core` holds the layer's sizes (dim, heads, context).
  std::function<std::shared_ptr<const AttentionFeature>(const AttentionOptions& core, const Config&)> make;
};

// Every feature, in nn/attention/variants.def order.
const std::vector<AttentionFeatureInfo>& attention_features();
// The features a config turns on (reading every feature key), conflicts checked.
FeatureList make_features(const AttentionOptions& core, const Config& config);
// The one place conflicts are decided: two features replacing the same stage.
void check_conflicts(const FeatureList& features);
// Every feature's config keys (the keys of vanilla_mha), and the keys of one feature.
std::vector<ConfigKey> attention_config_keys();
std::vector<ConfigKey> attention_config_keys(const std::string& feature);

// Refuses a sub-option given without the option it tunes, naming both keys.
void check_needs(const Config& c, const ConfigKey& sub, bool on, const ConfigKey& option);

}  // namespace tz::nn
