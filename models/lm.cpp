#include "models/lm.h"

#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/text.h"
#include "nn/layers.h"
#include "nn/position/absolute.h"

namespace tz::models {

Tensor SequenceModel::loss(const Tensor& ids, const Tensor& targets) {
  nn::AuxLosses aux;
  Tensor logits = forward(ids, &aux);
  Tensor l = cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}));
  Tensor extra = aux.total();
  return extra.defined() ? l + extra : l;
}

std::vector<nn::ConfigKey> lm_config_keys() {
  return {
      {"vocab", "256", "vocabulary size (256 = bytes)"},
      {"dim", "256", "model width C"},
      {"depth", "4", "number of blocks"},
      {"heads", "4", "attention heads (must divide dim)"},
      {"context", "256", "longest sequence"},
      {"mixer", "\"vanilla_mha\"", "sequence mixer id, or a list with one id per mixer sublayer"},
      {"pos", "\"learned_abs_pe\"", "position scheme id"},
      {"ffn", "\"ffn_mlp\"", "feed-forward id"},
      {"norm", "\"layernorm\"", "norm id"},
      {"norm_placement", "\"pre\"", "pre (x + f(norm(x))) or post (norm(x + f(x)))"},
      {"tie_weights", "true", "share the token embedding with the output head"},
      {"bias", "true", "biases in the linear layers and LayerNorm (false: the Cramming recipe)"},
      {"dropout", "0.0", "residual dropout (inside the components)"},
      {"emb_dropout", "0.0", "dropout after the token + position embedding"},
      {"ff_dropout", "0.0", "dropout on the FFN branch output"},
      {"layout", "\"interleaved\"", "interleaved, sandwich, or a string of s (mixer) / f (FFN) sublayers"},
      {"sandwich_coef", "0", "k of the sandwich layout s^k (sf)^(depth-k) f^k"},
      {"macaron", "false", "½FFN, mixer, ½FFN blocks"},
      {"residual", "\"add\"", "add, rezero (x + αf(x), α=0 at init, no norms) or gtrxl (GRU gate)"},
      {"gtrxl_bias", "2.0", "b_g of the GTrXL gate (large = identity at init)"},
      {"token_shift", "0", "token-shift amount s, one for all blocks or one per block"},
      {"share_layers", "false", "Universal Transformer: one block applied recurrence_steps times"},
      {"recurrence_steps", "0", "applications of the shared block (0 = depth)"},
      {"act", "false", "Adaptive Computation Time halting over the shared block (implies share_layers)"},
      {"act_threshold", "0.01", "ACT's ε: halt when the summed halting probability reaches 1 − ε"},
      {"ponder_cost", "0.01", "ACT's τ: weight of the ponder cost mean(N + R)"},
      {"fcm_max_ratio", "0.0", "Forgetful Causal Masking η: hide up to η·T random past positions (training)"},
  };
}

// ---- GTrXL gate ----

GRUGate::GRUGate(int64_t dim, double bg_, Generator& gen) : bg(bg_) {
  auto lin = [&](const char* name) {
    return register_module(name, std::make_shared<nn::Linear>(nn::LinearOptions{.in = dim, .out = dim, .bias = false}, gen));
  };
  wr = lin("wr"); ur = lin("ur"); wz = lin("wz"); uz = lin("uz"); wg = lin("wg"); ug = lin("ug");
}

Tensor GRUGate::update_gate(const Tensor& x, const Tensor& y) const {
  return sigmoid(wz->forward(y) + uz->forward(x) - bg);
}

Tensor GRUGate::forward(const Tensor& x, const Tensor& y) const {
  Tensor r = sigmoid(wr->forward(y) + ur->forward(x));
  Tensor z = update_gate(x, y);
  Tensor hhat = tanh(wg->forward(y) + ug->forward(r * x));
  return (1.0 - z) * x + z * hhat;
}

std::string GRUGate::describe() const { return cat_str("GRUGate(b_g=", bg, ")"); }

// ---- token shift ----

Tensor token_shift(const Tensor& u, int64_t s, Tensor* hist) {
  if (s == 0) return u;
  const int64_t B = u.size(0), T = u.size(1), C = u.size(2), cs = C / (s + 1);
  TZ_CHECK(cs >= 1, "token_shift: shift ", s, " needs at least ", s + 1, " channels, got ", C);
  Tensor prev = hist && hist->defined() ? *hist : zeros({B, s, C}, u.dtype());
  Tensor full = cat({prev, u}, 1);  // [B, s + T, C]: row r holds input t = r - s
  const int64_t c0 = C - s * cs;    // chunk 0 (unshifted) takes the remainder channels
  std::vector<Tensor> parts{u.narrow(2, 0, c0)};
  for (int64_t c = 1; c <= s; ++c) parts.push_back(full.narrow(1, s - c, T).narrow(2, c0 + (c - 1) * cs, cs));
  if (hist) *hist = full.narrow(1, T, s).contiguous();
  return cat(parts, 2);
}

// ---- blocks ----

LMBlock::LMBlock(const nn::ModelDims& dims, const nn::Config& config, const nn::Registry& registry,
                 const std::string& id, const BlockOptions& opt, Generator& gen)
    : post_norm(opt.post_norm), mixer_id(id), options(opt) {
  std::string norm_id = config.get_string("norm", "layernorm");
  std::string ffn_id = config.get_string("ffn", "ffn_mlp");
  const bool norms = opt.residual != Residual::rezero;
  auto norm = [&](const char* name) {
    return norms ? register_module(name, registry.make_norm(norm_id, dims, config, gen)) : nullptr;
  };
  auto extras = [&](int which, Tensor& alpha, std::shared_ptr<GRUGate>& gate) {
    if (opt.residual == Residual::rezero)
      alpha = register_parameter(cat_str("alpha", which), zeros({1}));
    if (opt.residual == Residual::gtrxl)
      gate = register_module(cat_str("gate", which), std::make_shared<GRUGate>(dims.dim, opt.gtrxl_bias, gen));
  };
  if (opt.macaron) {
    norm0 = norm("norm0");
    ffn0 = register_module("ffn0", registry.make_ffn(ffn_id, dims, config, gen));
    extras(0, alpha0, gate0);
  }
  if (opt.has_mixer) {
    norm1 = norm("norm1");
    mixer = register_module("mixer", registry.make_mixer(id, dims, config, gen));
    extras(1, alpha1, gate1);
  }
  if (opt.has_ffn) {
    norm2 = norm("norm2");
    ffn = register_module("ffn", registry.make_ffn(ffn_id, dims, config, gen));
    extras(2, alpha2, gate2);
  }
  ff_drop = register_module("ff_drop", std::make_shared<nn::Dropout>(opt.ff_dropout));
}

Tensor LMBlock::sublayer(int which, const Tensor& x, BlockState* state, const nn::MixerContext& ctx) {
  auto& norm = which == 0 ? norm0 : which == 1 ? norm1 : norm2;
  auto branch = [&](const Tensor& u) -> Tensor {
    Tensor v = token_shift(u, options.shift, state ? &state->hist[which] : nullptr);
    if (which == 1) return mixer->forward(v, ctx, state ? state->mixer.get() : nullptr);
    Tensor y = ff_drop->forward((which == 0 ? ffn0 : ffn)->forward(v));
    return options.macaron ? y * 0.5 : y;  // Macaron: each FFN takes half a step
  };
  if (post_norm) return norm->forward(x + branch(x));
  switch (options.residual) {
    case Residual::rezero: return x + (which == 0 ? alpha0 : which == 1 ? alpha1 : alpha2) * branch(x);
    case Residual::gtrxl: return (which == 0 ? gate0 : which == 1 ? gate1 : gate2)->forward(x, relu(branch(norm->forward(x))));
    case Residual::add: break;
  }
  return x + branch(norm->forward(x));
}

Tensor LMBlock::forward(const Tensor& x, const nn::MixerContext& ctx) {
  Tensor h = x;
  if (ffn0) h = sublayer(0, h, nullptr, ctx);
  if (mixer) h = sublayer(1, h, nullptr, ctx);
  if (ffn) h = sublayer(2, h, nullptr, ctx);
  return h;
}

Tensor LMBlock::step(const Tensor& x, nn::MixerState& state, const nn::MixerContext& ctx) {
  auto* s = dynamic_cast<BlockState*>(&state);
  TZ_CHECK(s, "LMBlock: step() needs the state made by its make_state()");
  Tensor h = x;
  if (ffn0) h = sublayer(0, h, s, ctx);
  if (mixer) h = sublayer(1, h, s, ctx);
  if (ffn) h = sublayer(2, h, s, ctx);
  s->length += x.size(1);
  return h;
}

std::unique_ptr<nn::MixerState> LMBlock::make_state(int64_t batch, int64_t capacity, DType dtype) const {
  auto s = std::make_unique<BlockState>();
  if (mixer) s->mixer = mixer->make_state(batch, capacity, dtype);
  return s;  // token-shift histories start as zeros (undefined = zeros)
}

std::string LMBlock::describe() const {
  const char* res[] = {"add", "rezero", "gtrxl"};
  return cat_str("Block(", mixer ? mixer_id : "no mixer", ffn ? "" : ", no ffn", options.macaron ? ", macaron" : "",
                 post_norm ? ", post-norm" : ", pre-norm", ", residual ", res[int(options.residual)],
                 options.shift ? cat_str(", shift ", options.shift) : "", ")");
}

// ---- the LM ----

namespace {
// Hands attention an extra additive score mask (FCM) through the position-scheme hook
// query_score_bias; everything else is the model's own scheme.
class MaskedPositions : public nn::PositionScheme {
 public:
  MaskedPositions(const nn::PositionScheme* inner, Tensor mask) : inner_(inner), mask_(std::move(mask)) {}
  Tensor embed(int64_t start, int64_t T, DType dt) const override { return inner_->embed(start, T, dt); }
  Tensor qk_input(int64_t start, int64_t T, DType dt) const override { return inner_->qk_input(start, T, dt); }
  void rotate(Tensor& q, Tensor& k, int64_t qs, int64_t ks) const override { inner_->rotate(q, k, qs, ks); }
  bool rotates() const override { return inner_->rotates(); }
  Tensor score_bias(int64_t H, int64_t qs, int64_t T, int64_t S, DType dt,
                    const nn::MixerContext* ctx = nullptr) const override {
    return inner_->score_bias(H, qs, T, S, dt, ctx);
  }
  bool biases_scores() const override { return inner_->biases_scores(); }
  Tensor query_score_bias(const Tensor& q, const Tensor& k, int64_t qs, int64_t ks,
                          const nn::MixerContext* ctx = nullptr) const override {
    Tensor b = inner_->biases_with_queries() ? inner_->query_score_bias(q, k, qs, ks, ctx) : Tensor();
    TZ_CHECK(mask_.size(2) == q.size(2) && mask_.size(3) == k.size(2), "FCM: mask ", mask_.shape(),
             " does not fit queries ", q.shape(), " and keys ", k.shape());
    return b.defined() ? b + mask_ : mask_;
  }
  bool biases_with_queries() const override { return true; }
  int64_t max_positions() const override { return inner_->max_positions(); }
  std::string describe() const override { return "MaskedPositions(" + inner_->describe() + ")"; }

 private:
  const nn::PositionScheme* inner_;
  Tensor mask_;
};

Residual parse_residual(const nn::Config& c) {
  std::string r = c.get_string("residual", "add");
  if (r == "add") return Residual::add;
  if (r == "rezero") return Residual::rezero;
  if (r == "gtrxl") return Residual::gtrxl;
  throw Error(cat_str(c.source(), ": residual must be add, rezero or gtrxl, got '", r, "'"));
}
}  // namespace

LM::LM(const nn::Config& config, const nn::Registry& registry, Generator& gen) : config_(config) {
  const nn::Config& c = config_;
  const std::string src = c.source();
  vocab_ = c.get_int("vocab", 256);
  dims_.dim = c.get_int("dim", 256);
  dims_.depth = c.get_int("depth", 4);
  dims_.heads = c.get_int("heads", 4);
  dims_.context = c.get_int("context", 256);
  dims_.bias = c.get_bool("bias", true);
  dims_.dropout = c.get_double("dropout", 0.0);
  TZ_CHECK(vocab_ > 0 && dims_.dim > 0 && dims_.depth > 0 && dims_.heads > 0 && dims_.context > 0,
           src, ": vocab, dim, depth, heads and context must be positive");
  TZ_CHECK(dims_.dim % dims_.heads == 0, src, ": heads (", dims_.heads, ") must divide dim (", dims_.dim, ")");
  TZ_CHECK(dims_.dropout >= 0 && dims_.dropout < 1, src, ": dropout must be in [0, 1), got ", dims_.dropout);
  double emb_p = c.get_double("emb_dropout", 0.0), ff_p = c.get_double("ff_dropout", 0.0);
  TZ_CHECK(emb_p >= 0 && emb_p < 1 && ff_p >= 0 && ff_p < 1, src, ": emb_dropout and ff_dropout must be in [0, 1), got ",
           emb_p, " and ", ff_p);

  // Block options shared by every block.
  BlockOptions bo;
  std::string placement = c.get_string("norm_placement", "pre");
  TZ_CHECK(placement == "pre" || placement == "post", src, ": norm_placement must be 'pre' or 'post', got '",
           placement, "'");
  bo.post_norm = placement == "post";
  bo.residual = parse_residual(c);
  bo.gtrxl_bias = c.get_double("gtrxl_bias", 2.0);
  TZ_CHECK(c.get_string("residual", "add") == "gtrxl" || !c.has("gtrxl_bias"), src,
           ": gtrxl_bias is only read with residual 'gtrxl'");
  TZ_CHECK(!bo.post_norm || bo.residual == Residual::add, src, ": norm_placement 'post' conflicts with residual '",
           c.get_string("residual", "add"), "' (rezero has no norms; gtrxl normalises the branch input)");
  bo.macaron = c.get_bool("macaron", false);
  bo.ff_dropout = ff_p;

  // The sublayer layout: one (has_mixer, has_ffn) pair per block.
  std::string layout = c.get_string("layout", "interleaved");
  int64_t k = c.get_int("sandwich_coef", 0);
  TZ_CHECK(layout == "sandwich" || !c.has("sandwich_coef"), src, ": sandwich_coef needs layout 'sandwich'");
  std::vector<std::pair<bool, bool>> plan;
  const bool share = c.get_bool("share_layers", false);
  act_ = c.get_bool("act", false);
  universal_ = share || act_;
  if (layout == "interleaved") {
    plan.assign(size_t(universal_ ? 1 : dims_.depth), {true, true});
  } else if (layout == "sandwich") {
    TZ_CHECK(k >= 0 && k <= dims_.depth, src, ": sandwich_coef must be in [0, depth = ", dims_.depth, "], got ", k);
    for (int64_t i = 0; i < k; ++i) plan.push_back({true, false});
    for (int64_t i = k; i < dims_.depth; ++i) plan.push_back({true, true});
    for (int64_t i = 0; i < k; ++i) plan.push_back({false, true});
  } else {
    for (size_t i = 0; i < layout.size(); ++i) {
      TZ_CHECK(layout[i] == 's' || layout[i] == 'f', src, ": layout must be interleaved, sandwich or a string of "
               "'s' and 'f', got '", layout, "'");
      if (layout[i] == 's' && i + 1 < layout.size() && layout[i + 1] == 'f') plan.push_back({true, true}), ++i;
      else plan.push_back({layout[i] == 's', layout[i] == 'f'});
    }
    TZ_CHECK(!plan.empty(), src, ": layout is empty");
  }
  TZ_CHECK(!universal_ || layout == "interleaved", src, ": share_layers/act need layout 'interleaved', got '", layout, "'");
  TZ_CHECK(!bo.macaron || layout == "interleaved", src, ": macaron needs layout 'interleaved', got '", layout, "'");
  std::vector<int64_t> shifts = c.get_ints("token_shift", {0});
  TZ_CHECK(shifts.size() == 1 || shifts.size() == plan.size(), src, ": token_shift lists ", shifts.size(),
           " amounts for ", plan.size(), " blocks (give one, or one per block)");
  for (int64_t s : shifts)
    TZ_CHECK(s >= 0 && s < dims_.dim, src, ": token_shift amounts must be in [0, dim), got ", s);

  int64_t steps = c.get_int("recurrence_steps", 0);
  TZ_CHECK(steps >= 0, src, ": recurrence_steps must be >= 0, got ", steps);
  TZ_CHECK(universal_ || !c.has("recurrence_steps"), src, ": recurrence_steps needs share_layers or act");
  act_eps_ = c.get_double("act_threshold", 0.01);
  ponder_tau_ = c.get_double("ponder_cost", 0.01);
  TZ_CHECK(act_ || (!c.has("act_threshold") && !c.has("ponder_cost")), src, ": act_threshold and ponder_cost need act");
  TZ_CHECK(act_eps_ > 0 && act_eps_ < 1 && ponder_tau_ >= 0, src, ": act_threshold must be in (0, 1) and "
           "ponder_cost >= 0");
  fcm_ratio_ = c.get_double("fcm_max_ratio", 0.0);
  TZ_CHECK(fcm_ratio_ >= 0 && fcm_ratio_ <= 1, src, ": fcm_max_ratio must be in [0, 1], got ", fcm_ratio_);

  std::vector<std::string> mixers = c.get_strings("mixer", {"vanilla_mha"});
  int64_t n_mixers = 0;
  for (auto& p : plan) n_mixers += p.first;
  TZ_CHECK(mixers.size() == 1 || int64_t(mixers.size()) == n_mixers, src, ": 'mixer' lists ", mixers.size(),
           " ids for ", n_mixers, " mixer sublayers (give one id, or one per mixer sublayer)");

  tok_emb = register_module("tok_emb", std::make_shared<nn::Embedding>(
                                           nn::EmbeddingOptions{.num = vocab_, .dim = dims_.dim}, gen));
  pos = register_module("pos", registry.make_position(c.get_string("pos", "learned_abs_pe"), dims_, c, gen));
  emb_drop = register_module("emb_drop", std::make_shared<nn::Dropout>(emb_p));
  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  int64_t mi = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    nn::ModelDims d = dims_;
    d.layer = int64_t(i);
    BlockOptions o = bo;
    o.has_mixer = plan[i].first;
    o.has_ffn = plan[i].second;
    o.macaron = bo.macaron && o.has_mixer && o.has_ffn;
    o.shift = shifts[shifts.size() == 1 ? 0 : i];
    std::string id = o.has_mixer ? mixers[mixers.size() == 1 ? 0 : size_t(mi++)] : "";
    layers->push_back(std::make_shared<LMBlock>(d, c, registry, id, o, gen));
  }
  if (universal_) schedule_.assign(size_t(steps ? steps : dims_.depth), 0);
  else for (size_t i = 0; i < plan.size(); ++i) schedule_.push_back(int64_t(i));
  if (act_) halt = register_module("halt", std::make_shared<nn::Linear>(
                                               nn::LinearOptions{.in = dims_.dim, .out = 1, .bias = true}, gen));
  if (act_) {  // Graves initialises the halting bias positive so early steps do not halt at once
    NoGradGuard ng;
    core::fill_(halt->bias, 1.0);
  }
  if (!bo.post_norm && bo.residual != Residual::rezero)
    norm_f = register_module("norm_f", registry.make_norm(c.get_string("norm", "layernorm"), dims_, c, gen));
  if (!c.get_bool("tie_weights", true))
    head = register_module("head", std::make_shared<nn::Linear>(
                                       nn::LinearOptions{.in = dims_.dim, .out = vocab_, .bias = false}, gen));

  // Every key must have been read by the LM or a chosen component.
  std::vector<std::string> valid;
  for (auto& key : lm_config_keys()) valid.push_back(key.key);
  auto add_keys = [&](const std::string& id) {
    if (const nn::VariantInfo* v = registry.find(id))
      for (auto& key : v->keys) valid.push_back(key.key);
  };
  for (auto& m : mixers) add_keys(m);
  add_keys(c.get_string("pos", "learned_abs_pe"));
  add_keys(c.get_string("ffn", "ffn_mlp"));
  add_keys(c.get_string("norm", "layernorm"));
  c.check_all_read(valid);
}

Tensor LM::embed(const Tensor& ids, int64_t start) {
  TZ_CHECK(ids.dim() == 2 && ids.dtype() == DType::i64, "LM: expected ids i64 [B, T], got ",
           dtype_name(ids.dtype()), " ", ids.shape());
  const int64_t T = ids.size(1);
  int64_t limit = pos->max_positions();
  TZ_CHECK(limit == 0 || start + T <= limit, "LM: positions up to ", start + T, " exceed the ", limit,
           " positions of '", config_.get_string("pos", "learned_abs_pe"), "'");
  Tensor h = tok_emb->forward(ids);
  // The Universal Transformer adds positions before every step instead (step_signal).
  Tensor p = universal_ ? Tensor() : pos->embed(start, T, h.dtype());
  return emb_drop->forward(p.defined() ? h + p : h);
}

Tensor LM::step_signal(int64_t start, int64_t T, int64_t n, DType dtype) const {
  // [1, C]: step n's sinusoid, scaled to the embeddings' 0.02 init (the paper scales the
  // embeddings up by sqrt(C) instead; unit-amplitude sinusoids would drown the tokens).
  Tensor s = nn::sinusoidal_table(n, 1, dims_.dim, 10000.0, dtype) * 0.02;
  Tensor p = pos->embed(start, T, dtype);
  return p.defined() ? p + s : s;
}

Tensor LM::fcm_mask(int64_t B, int64_t T, DType dtype, Generator& gen) const {
  std::vector<double> m(size_t(B * T * T), 0.0);
  std::vector<int64_t> order(static_cast<size_t>(T));
  bool any = false;
  for (int64_t b = 0; b < B; ++b) {
    const double r = gen.uniform() * fcm_ratio_;
    const int64_t count = int64_t(std::floor(r * double(T)));
    for (int64_t i = 0; i < T; ++i) order[size_t(i)] = i;
    for (int64_t i = 0; i < count; ++i) {  // partial Fisher-Yates: `count` distinct positions
      std::swap(order[size_t(i)], order[size_t(gen.randint(i, T))]);
      const int64_t j = order[size_t(i)];
      any = any || j + 1 < T;
      for (int64_t q = j + 1; q < T; ++q) m[size_t((b * T + q) * T + j)] = -std::numeric_limits<double>::infinity();
    }
  }
  // Nothing hidden (r T < 1 for every sequence): undefined, the plain causal attention runs.
  return any ? from_vector(m, {B, 1, T, T}).to(dtype) : Tensor();
}

Tensor LM::logits(const Tensor& h) {
  Tensor x = norm_f ? norm_f->forward(h) : h;
  return head ? head->forward(x) : linear(x, tok_emb->weight);
}

Tensor LM::run_blocks(Tensor h, int64_t start, nn::MixerContext& ctx, State* state) {
  const int64_t T = h.size(1);
  auto apply = [&](size_t i, const Tensor& x) {
    ctx.layer = int64_t(i);
    auto block = layers->at<LMBlock>(size_t(schedule_[i]));
    Tensor in = universal_ ? x + step_signal(start, T, int64_t(i) + 1, x.dtype()) : x;
    return state ? block->step(in, *state->layers[i], ctx) : block->forward(in, ctx);
  };
  if (!act_) {
    for (size_t i = 0; i < schedule_.size(); ++i) h = apply(i, h);
    return h;
  }
  // ACT (see the header): decisions use plain numbers; weights keep their gradients.
  const int64_t B = h.size(0);
  const DType dt = h.dtype();
  Tensor cum = zeros({B, T, 1}, dt), halted = zeros({B, T, 1}, dt), steps = zeros({B, T, 1}, dt);
  Tensor rem = zeros({B, T, 1}, dt), wsum = zeros({B, T, 1}, dt), out;
  last_act.states.clear();
  const size_t N = schedule_.size();
  for (size_t n = 0; n < N; ++n) {
    Tensor running = 1.0 - halted;
    h = apply(n, h) * running + h * halted;  // halted positions are copied unchanged
    Tensor p = sigmoid(halt->forward(h));    // [B, T, 1]
    std::vector<double> pv = p.to_vector<double>(), cv = cum.to_vector<double>(), hv = halted.to_vector<double>();
    std::vector<double> stop(pv.size());
    for (size_t i = 0; i < pv.size(); ++i)
      stop[i] = hv[i] == 0 && (cv[i] + pv[i] >= 1.0 - act_eps_ || n + 1 == N) ? 1.0 : 0.0;
    Tensor wh = from_vector(stop, {B, T, 1}).to(dt);  // halts at this step
    Tensor cont = running - wh;                       // still running after it
    Tensor w = cont * p + wh * (1.0 - cum);           // p_t^n, or R_t at N(t)
    out = out.defined() ? out + w * h : w * h;
    rem = rem + wh * (1.0 - cum);
    cum = cum + cont * p;
    steps = steps + running;
    halted = halted + wh;
    wsum = wsum + w.detach();
    last_act.states.push_back(h.detach());
  }
  Tensor ponder = mean(steps + rem) * ponder_tau_;
  if (ctx.aux) ctx.aux->add("ponder", ponder);
  last_act.weight_sum = wsum;
  last_act.steps = steps;
  last_act.remainder = rem.detach();
  last_act.ponder = ponder;
  return out;
}

Tensor LM::forward(const Tensor& ids, nn::AuxLosses* aux) {
  Tensor h = embed(ids, 0);
  std::map<std::string, Tensor> carry;
  nn::MixerContext ctx{.start = 0, .pos = pos.get(), .aux = aux, .carry = &carry};
  std::unique_ptr<MaskedPositions> fcm;
  if (is_training() && fcm_ratio_ > 0) {  // FCM: training only; inference is unchanged
    Tensor mask = fcm_mask(ids.size(0), ids.size(1), h.dtype(), default_generator());
    if (mask.defined()) {
      fcm = std::make_unique<MaskedPositions>(pos.get(), mask);
      ctx.pos = fcm.get();
    }
  }
  return logits(run_blocks(h, 0, ctx, nullptr));
}

bool LM::causal() const {
  for (size_t i = 0; i < layers->size(); ++i) {
    auto& m = layers->at<LMBlock>(i)->mixer;
    if (m && !m->causal()) return false;
  }
  return true;
}

bool LM::has_step() const { return why_no_step().empty(); }

std::string LM::why_no_step() const {
  for (size_t i = 0; i < layers->size(); ++i) {
    auto& m = layers->at<LMBlock>(i)->mixer;
    if (m && !m->has_step()) return cat_str("layer ", i, " (", m->describe(), "): ", m->why_no_step());
  }
  return "";
}

SequenceModel::State LM::make_state(int64_t batch, int64_t capacity) const {
  std::string why = why_no_step();
  TZ_CHECK(why.empty(), "LM: no step-by-step decoding: ", why);
  State s;
  for (int64_t b : schedule_)  // one state per application (a shared block has one per step)
    s.layers.push_back(layers->at<LMBlock>(size_t(b))->make_state(batch, capacity, tok_emb->weight.dtype()));
  return s;
}

Tensor LM::step(const Tensor& ids, State& state) {
  TZ_CHECK(state.layers.size() == schedule_.size(), "LM: state has ", state.layers.size(), " layers, model has ",
           schedule_.size());
  Tensor h = embed(ids, state.length);
  std::map<std::string, Tensor> carry;
  nn::MixerContext ctx{.start = state.length, .pos = pos.get(), .aux = nullptr, .carry = &carry};
  h = run_blocks(h, state.length, ctx, &state);
  state.length += ids.size(1);
  return logits(h);
}

std::string LM::describe() const {
  return cat_str("LM(vocab=", vocab_, ", dim=", dims_.dim, ", depth=", dims_.depth, ", heads=", dims_.heads,
                 ", context=", dims_.context, head ? "" : ", tied head", universal_ ? ", shared block" : "",
                 act_ ? ", act" : "", ")");
}

}  // namespace tz::models

namespace tz::zoo {

void register_gpt(nn::Registry& r) {
  r.add({.id = "gpt",
         .summary = "Decoder-only LM: token + learned positions, pre-norm attention/MLP blocks, tied head",
         .keys = models::lm_config_keys(),
         .test_config = "{}",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "context": 256})"});
}

void register_pre_post_norm(nn::Registry& r) {
  r.add({.id = "pre_post_norm",
         .summary = "Norm placement: pre-LN x + f(LN(x)) with a final norm, or post-LN LN(x + f(x))",
         .keys = {{"norm_placement", "\"pre\"", "pre or post"}},
         .test_config = R"({"norm_placement": "post"})",
         .example = R"({"norm_placement": "post"})"});
}

// Option-like ids: the LM reads their keys; test_config switches them on.
void register_rezero(nn::Registry& r) {
  r.add({.id = "rezero", .summary = "ReZero: x + α·F(x) per sublayer, α a scalar initialised to 0, no norms",
         .keys = {{"residual", "\"add\"", "rezero selects it"}},
         .test_config = R"({"residual": "rezero"})",
         .example = R"({"residual": "rezero", "depth": 64})",
         // At α = 0 every branch gradient is exactly 0: the gradient check draws α away from 0.
         .randomise = [](nn::Module& m, Generator& g) {
           for (auto& [name, t] : m.named_parameters())
             if (name.find(".alpha") != std::string::npos)
               core::fill_(t, (g.uniform() < 0.5 ? -1.0 : 1.0) * (0.5 + 0.5 * g.uniform()));
         },
         // With every norm gone the tied logits start tiny (0.02-scale embeddings squared);
         // ReZero trains at larger steps, which its paper reports as one of its benefits.
         .learn_lr = 3e-2});
}

void register_gated_residual_gtrxl(nn::Registry& r) {
  r.add({.id = "gated_residual_gtrxl", .summary = "GTrXL: LN on the branch input, ReLU on its output, GRU gate instead of the sum (b_g = 2)",
         .keys = {{"residual", "\"add\"", "gtrxl selects it"}, {"gtrxl_bias", "2.0", "b_g of the update gate"}},
         .test_config = R"({"residual": "gtrxl", "depth": 3})",
         .example = R"({"residual": "gtrxl", "gtrxl_bias": 2.0})"});
}

void register_no_bias_cramming(nn::Registry& r) {
  r.add({.id = "no_bias_cramming", .summary = "Global no-bias flag: no biases in the QKV/out/FFN linears nor LayerNorm β",
         .keys = {{"bias", "true", "false drops every bias"}},
         .test_config = R"({"bias": false})",
         .example = R"({"bias": false, "norm_placement": "pre"})"});
}

void register_dropout_sites(nn::Registry& r) {
  r.add({.id = "dropout_sites", .summary = "Dropout after the embedding, on the attention probabilities, on the FFN branch and on residual "
                    "branches (inverted, 1/(1-p))",
         .keys = {{"emb_dropout", "0.0", "after token + position embedding"},
                  {"attn_dropout", "0.0", "on the attention probabilities (read by vanilla_mha)"},
                  {"ff_dropout", "0.0", "on the FFN branch output"},
                  {"dropout", "0.0", "residual dropout inside attention/FFN"}},
         .test_config = R"({"emb_dropout": 0.1, "ff_dropout": 0.1, "attn_dropout": 0.1})",
         .example = R"({"emb_dropout": 0.1, "ff_dropout": 0.1, "dropout": 0.1})"});
}

void register_token_shift(nn::Registry& r) {
  r.add({.id = "token_shift", .summary = "Shift s of s+1 channel chunks by 1..s steps before every sublayer; step form keeps s inputs",
         .keys = {{"token_shift", "0", "shift amount s, one or one per block"}},
         .test_config = R"({"token_shift": [1, 2]})",
         .example = R"({"token_shift": 1})"});
}

void register_sandwich_transformer(nn::Registry& r) {
  r.add({.id = "sandwich_transformer", .summary = "Sublayer order s^k (sf)^(n-k) f^k with sandwich coefficient k",
         .keys = {{"layout", "\"interleaved\"", "sandwich selects it (or an explicit s/f string)"},
                  {"sandwich_coef", "0", "k"}},
         .test_config = R"({"layout": "sandwich", "sandwich_coef": 1})",
         .example = R"({"depth": 16, "layout": "sandwich", "sandwich_coef": 6})"});
}

void register_macaron(nn::Registry& r) {
  r.add({.id = "macaron", .summary = "x += ½FFN(x); x += Attn(x); x += ½FFN(x), each with its own norm and parameters",
         .keys = {{"macaron", "false", "true selects it"}},
         .test_config = R"({"macaron": true})",
         .example = R"({"macaron": true})"});
}

void register_universal_transformer(nn::Registry& r) {
  r.add({.id = "universal_transformer", .summary = "One shared block applied T times, adding position + step-t sinusoids before each",
         .keys = {{"share_layers", "false", "true selects it"}, {"recurrence_steps", "0", "T (0 = depth)"}},
         .test_config = R"({"share_layers": true, "recurrence_steps": 2, "dim": 32, "heads": 4})",
         .example = R"({"share_layers": true, "recurrence_steps": 6, "norm_placement": "post"})"});
}

void register_act(nn::Registry& r) {
  r.add({.id = "act", .summary = "Adaptive Computation Time: per-position halting over the shared block, ponder cost",
         .keys = {{"act", "false", "true selects it (implies the shared block)"},
                  {"recurrence_steps", "0", "N_max (0 = depth)"},
                  {"act_threshold", "0.01", "ε"}, {"ponder_cost", "0.01", "τ"}},
         .test_config = R"({"act": true, "recurrence_steps": 2, "dim": 32})",
         .example = R"({"act": true, "recurrence_steps": 8, "ponder_cost": 0.01})"});
}

void register_forgetful_causal_masking(nn::Registry& r) {
  r.add({.id = "forgetful_causal_masking", .summary = "Training only: hide floor(rT), r~U[0,η], random past positions from all later queries",
         .keys = {{"fcm_max_ratio", "0.0", "η (the paper uses 0.15)"}},
         .test_config = R"({"fcm_max_ratio": 0.15})",
         .example = R"({"fcm_max_ratio": 0.15})"});
}

}  // namespace tz::zoo
