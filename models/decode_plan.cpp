// The decode plan (decode_plan.h): what it covers, how it is built from the model, and one
// token as phases of a thread team. This file is compiled with -ffp-contract=off (see
// CMakeLists.txt): the rotary rotation e c - o s must round both products as the tensor ops
// do, not fuse one of them into an FMA.
#include "models/decode_plan.h"

#include <algorithm>
#include <cmath>
#include <typeinfo>

#include "autograd/node.h"
#include "core/kernels/attention.h"
#include "core/kernels/elementwise.h"
#include "core/kernels/gemv.h"
#include "core/kernels/norm.h"
#include "core/kernels/quant.h"
#include "core/text.h"
#include "models/block.h"
#include "models/lm.h"
#include "nn/attention/attention.h"
#include "nn/ffn/mlp.h"
#include "nn/position/absolute.h"
#include "nn/position/alibi.h"
#include "nn/position/rope.h"

namespace tz::models {

void plan_matvec(const PlanWeight& w, const float* x, float* y, int64_t j0, int64_t j1) {
  if (!w.quant) {
    // y [1, rows] = x [1, cols] W^T: C, ldc, A, lda, trans_a, B, ldb, trans_b, M, N, K
    kernels::sgemv_columns({y, w.rows, x, w.cols, false, w.data, w.cols, true, 1, w.rows, w.cols}, j0, j1);
    if (w.bias)
      for (int64_t j = j0; j < j1; ++j) y[j] = y[j] + w.bias[j];
    return;
  }
  const kernels::QuantGemvArgs g{
      .y = y, .ldy = w.rows, .x = x, .ldx = w.cols, .M = 1, .N = w.rows, .K = w.cols, .bias = w.bias};
  const QuantizedMatrix& q = *w.quant;
  if (q.scheme() == QuantScheme::bf16)
    return kernels::bf16_gemv_kernel().fn(g, reinterpret_cast<const uint16_t*>(q.data().data()), j0, j1);
  const kernels::Q8Kernel& k = kernels::q8_gemv_kernel();
  thread_local kernels::Q8Activations xq;  // sized by the first call, reused after
  if (k.reference == &kernels::gemv_q8q8_ref) kernels::quantize_activations(xq, g);
  k.fn(g, xq, reinterpret_cast<const int8_t*>(q.data().data()), q.scales().data<float>(), j0, j1);
}

namespace {

// The plan's view of the model's pieces; null where why_not() refuses.
const nn::Attention* attention_of(const Block& b) { return dynamic_cast<const nn::Attention*>(b.mixer.get()); }
const nn::MLP* mlp_of(const Block& b) { return dynamic_cast<const nn::MLP*>(b.ffn.get()); }

// The activations that are one elementwise kernel (identity: the bilinear gate, none).
bool activation_op(const std::string& name, kernels::UnaryOp& op, bool& identity) {
  using U = kernels::UnaryOp;
  static const std::pair<const char*, U> ops[] = {
      {"relu", U::relu},       {"gelu", U::gelu}, {"gelu_tanh", U::gelu_tanh}, {"silu", U::silu},
      {"sigmoid", U::sigmoid}, {"tanh", U::tanh}, {"softplus", U::softplus}};
  identity = name == "identity";
  const auto* hit = std::find_if(std::begin(ops), std::end(ops), [&](const auto& e) { return name == e.first; });
  if (hit != std::end(ops)) op = hit->second;
  return identity || hit != std::end(ops);
}

std::string why_not_norm(const nn::UnaryModule* m, const char* where) {
  if (!m) return cat_str(where, ": no norm");
  if (dynamic_cast<const nn::LayerNorm*>(m) || dynamic_cast<const nn::RMSNorm*>(m)) return "";
  return cat_str(where, ": norm ", m->describe(), " (the plan has layernorm and rmsnorm)");
}

bool f32_rows(const Tensor& t) { return !t.defined() || (t.dtype() == DType::f32 && t.is_contiguous()); }

// Rows [b(t), b(t + 1)) of n for thread t of nt, the boundaries on multiples of 16 floats (a
// cache line: no two threads write one) except the last.
std::pair<int64_t, int64_t> share(int64_t n, int t, int nt) {
  auto at = [&](int i) { return i == nt ? n : std::min(n, (n * i / nt) / 16 * 16); };
  return {at(t), at(t + 1)};
}

// 64-byte aligned float buffers, sized once.
struct Buf {
  std::vector<float> mem;
  float* p = nullptr;
  void resize(int64_t n) {
    mem.assign(size_t(n + 16), 0.0f);
    p = mem.data();
    while (reinterpret_cast<uintptr_t>(p) % 64) ++p;
  }
};

struct Norm {
  bool rms = false;
  const float *w = nullptr, *b = nullptr;  // b: LayerNorm's bias, or null
  double eps = 0;
};

Norm norm_of(const nn::UnaryModule& m) {
  if (auto* ln = dynamic_cast<const nn::LayerNorm*>(&m))
    return {false, ln->weight.data<float>(), ln->bias.defined() ? ln->bias.data<float>() : nullptr, ln->options.eps};
  auto& rn = dynamic_cast<const nn::RMSNorm&>(m);
  return {true, rn.weight.defined() ? rn.weight.data<float>() : nullptr, nullptr, rn.options.eps};
}

// out = norm(x) over one row of C: the kernels the tensor ops call.
void apply(const Norm& n, float* out, const float* x, int64_t C) {
  float mean, rstd;
  if (n.rms) return kernels::rmsnorm_forward<float>(out, &rstd, x, n.w, 1, C, n.eps);
  kernels::layernorm_forward<float>(out, &mean, &rstd, x, n.w, n.b, 1, C, n.eps);
}

PlanWeight weight_of(const Tensor& w) {
  return {.data = w.data<float>(), .rows = w.size(0), .cols = w.size(1), .keep = w};
}
PlanWeight weight_of(const nn::Linear& lin) {
  const auto& q = lin.quantized();
  PlanWeight w = q ? PlanWeight{.rows = q->rows(), .cols = q->cols(), .quant = q} : weight_of(lin.weight);
  w.bias = lin.bias.defined() ? lin.bias.data<float>() : nullptr;
  return w;
}

}  // namespace

struct DecodePlan::Layer {
  Norm norm1, norm2;
  PlanWeight qkv, out, fc, up, proj;  // fc is the gate when gated
  bool gated = false, identity = false;  // identity: no activation
  kernels::UnaryOp act = kernels::UnaryOp::relu;
  float *k = nullptr, *v = nullptr;  // the cache [G, L, D]
};

struct DecodePlan::Net {
  int64_t C = 0, H = 0, G = 0, D = 0, F = 0, V = 0, L = 0;
  double scale = 0;
  const float* tok = nullptr;  // [V, C]
  Tensor pos_rows;             // [L, C] added to the embedding, or undefined
  Buf rope_cos, rope_sin;      // [L, D / 2] when rotary
  bool rope = false;
  Tensor alibi;  // [H, L]: entry d = the bias at distance d, or undefined
  bool has_norm_f = false;
  Norm norm_f;
  PlanWeight head;
  std::vector<Layer> layers;
  std::vector<Tensor> keep;  // the norms' and biases' storage
  Buf h, xn, qkv, att, y, hid, up, logits, lse, cache;
  std::string pos_id;
};

std::string DecodePlan::why_not(const Model& model) {
  const auto* lm = dynamic_cast<const LM*>(&model);
  if (!lm) return "not the zoo's language model";
  if (lm->memory) return "segment memory";
  if (lm->memory_tokens.defined()) return "memory tokens";
  if (lm->halt) return "ACT";
  const auto& sched = lm->schedule();
  for (size_t n = 0; n < sched.size(); ++n)
    if (sched[n] != int64_t(n) || sched.size() != lm->layers->size()) return "shared layers";
  const nn::PositionScheme& pos = *lm->pos;
  const std::string pos_id = model.config().get(kPos);
  const bool known_pos = typeid(pos) == typeid(nn::LearnedPositions) ||
                         typeid(pos) == typeid(nn::SinusoidalPositions) || typeid(pos) == typeid(nn::RotaryPositions) ||
                         typeid(pos) == typeid(nn::ALiBiPositions) || pos_id == "none";
  if (!known_pos) return cat_str("position scheme '", pos_id, "'");
  auto dropout_on = [&](const nn::Dropout* d) { return d && d->is_training() && d->p > 0; };
  if (dropout_on(lm->emb_drop.get())) return "dropout (train mode)";
  std::vector<Tensor> params{lm->tok_emb->weight};
  for (const auto& [name, t] : model.named_parameters()) params.push_back(t);
  for (const Tensor& t : params)
    if (!f32_rows(t)) return "parameters not all contiguous f32";
  for (size_t i = 0; i < lm->layers->size(); ++i) {
    const Block& b = *lm->layers->at<Block>(i);
    const std::string at = cat_str("layer ", i);
    if (b.sublayers.size() != 2 || !b.sublayers[0].mixer || !b.sublayers[1].ffn)
      return cat_str(at, ": not a {norm, mixer} {norm, ffn} block");
    for (const Sublayer& s : b.sublayers) {
      if (s.residual->describe() != "add, pre-norm") return cat_str(at, ": residual ", s.residual->describe());
      if (s.spec.shift != 0) return cat_str(at, ": token shift");
      if (s.spec.scale != 1.0) return cat_str(at, ": a scaled FFN");
      if (std::string why = why_not_norm(s.norm.get(), at.c_str()); !why.empty()) return why;
    }
    const nn::Attention* a = attention_of(b);
    if (!a || typeid(*a) != typeid(nn::Attention)) return cat_str(at, ": mixer ", b.mixer->describe());
    for (const auto& f : a->options.features)
      if (f->key() != "attn_kv_heads") return cat_str(at, ": attention option ", f->key());
    const nn::AttentionLayout& L = a->layout;
    const nn::AttentionLayout& L0 = attention_of(*lm->layers->at<Block>(0))->layout;
    if (a->cross() || !a->options.causal || L.q_heads != L.H || L.k_heads != L.G || L.Dk != L.D ||
        L.out_width != lm->dims().dim || !a->qkv || L.H != L0.H || L.G != L0.G || L.D != L0.D || L.scale != L0.scale)
      return cat_str(at, ": attention layout of ", a->describe());
    const nn::MLP* m = mlp_of(b);
    if (!m || typeid(*m) != typeid(nn::MLP)) return cat_str(at, ": FFN ", b.ffn->describe());
    kernels::UnaryOp op;
    bool identity;
    if (!activation_op(m->options.activation, op, identity))
      return cat_str(at, ": activation '", m->options.activation, "'");
    if (dropout_on(b.ff_drop.get()) || dropout_on(a->drop.get()) || dropout_on(m->drop.get()))
      return "dropout (train mode)";
  }
  if (lm->norm_f) return why_not_norm(lm->norm_f.get(), "final norm");
  return "";
}

DecodePlan::DecodePlan(const Model& model, const DecodePlanOptions& options) : net_(std::make_unique<Net>()) {
  const std::string why = why_not(model);
  TZ_CHECK(why.empty(), "DecodePlan: the model is not covered by a decode plan: ", why);
  const LM& lm = dynamic_cast<const LM&>(model);
  NoGradGuard no_grad;
  Net& n = *net_;
  const nn::Attention& a0 = *attention_of(*lm.layers->at<Block>(0));
  n.C = lm.dims().dim, n.H = a0.layout.H, n.G = a0.layout.G, n.D = a0.layout.D;
  n.V = lm.vocab(), n.L = lm.context();
  n.scale = a0.layout.scale != 0 ? a0.layout.scale : 1.0 / std::sqrt(double(n.D));
  n.tok = lm.tok_emb->weight.data<float>();
  n.keep.push_back(lm.tok_emb->weight);
  n.pos_id = model.config().get(kPos);
  n.pos_rows = lm.pos->embed(0, n.L, DType::f32);
  if (n.pos_rows.defined()) n.pos_rows = n.pos_rows.contiguous();
  if (auto* rope = dynamic_cast<const nn::RotaryPositions*>(lm.pos.get())) {
    // The angle table of apply_rotary (nn/position/rope.cpp): f64, then f32.
    n.rope = true;
    const int64_t K = n.D / 2;
    for (Buf* b : {&n.rope_cos, &n.rope_sin}) b->resize(n.L * K);
    for (int64_t m = 0; m < n.L; ++m)
      for (int64_t k = 0; k < K; ++k) {
        const double theta = std::pow(rope->base, -2.0 * double(k) / double(n.D));
        n.rope_cos.p[m * K + k] = float(std::cos(double(m) * theta));
        n.rope_sin.p[m * K + k] = float(std::sin(double(m) * theta));
      }
  }
  // One query at key position S - 1 over S keys: column c of the table is distance c.
  if (lm.pos->biases_scores()) n.alibi = lm.pos->score_bias(n.H, n.L - 1, 1, n.L, DType::f32).contiguous();
  int64_t weight_floats = lm.tok_emb->weight.numel();
  const int64_t nl = int64_t(lm.layers->size());
  n.cache.resize(nl * 2 * n.G * n.L * n.D);
  for (int64_t i = 0; i < nl; ++i) {
    const Block& b = *lm.layers->at<Block>(size_t(i));
    const nn::Attention& a = *attention_of(b);
    const nn::MLP& m = *mlp_of(b);
    Layer l;
    l.norm1 = norm_of(*b.sublayers[0].norm), l.norm2 = norm_of(*b.sublayers[1].norm);
    l.qkv = weight_of(*a.qkv), l.out = weight_of(*a.out);
    l.gated = m.options.gated;
    activation_op(m.options.activation, l.act, l.identity);
    const nn::Linear& first = l.gated ? *m.gate : *m.fc;
    l.fc = weight_of(first), l.proj = weight_of(*m.proj);
    if (l.gated) l.up = weight_of(*m.up);
    n.F = std::max(n.F, l.fc.rows);
    for (const auto& [name, p] : b.named_parameters()) n.keep.push_back(p);
    l.k = n.cache.p + (2 * i) * n.G * n.L * n.D, l.v = n.cache.p + (2 * i + 1) * n.G * n.L * n.D;
    for (const PlanWeight* w : {&l.qkv, &l.out, &l.fc, &l.up, &l.proj}) weight_floats += w->rows * w->cols;
    n.layers.push_back(l);
  }
  if (lm.norm_f) {
    n.has_norm_f = true;
    n.norm_f = norm_of(*lm.norm_f);
    for (const auto& [name, p] : lm.norm_f->named_parameters()) n.keep.push_back(p);
  }
  n.head = lm.head ? weight_of(*lm.head) : weight_of(lm.tok_emb->weight);
  if (lm.head) weight_floats += n.head.rows * n.head.cols;

  // A team when the weights are worth it (the GEMV's own rule), but not with passive waiting:
  // its sleeping member must be woken every token and, on the busy host that policy is for,
  // is often descheduled in mid-token (2-core machine at load 5-8, 2 threads against 1:
  // small 1230 against 1709 tok/s, large 195 against 317).
  const bool team = get_num_threads() > 1 && weight_floats >= 4 * parallel_grain() && !passive_wait_sizing();
  threads_ = options.threads > 0 ? options.threads : team ? get_num_threads() : 1;
  const int64_t width = (n.C + 15) / 16 * 16;
  for (auto [buf, size] : {std::pair{&n.h, n.C}, {&n.xn, width * threads_}, {&n.qkv, (n.H + 2 * n.G) * n.D},
                           {&n.att, n.H * n.D}, {&n.y, n.C}, {&n.hid, n.F}, {&n.up, n.F}, {&n.logits, n.V},
                           {&n.lse, n.H}})
    buf->resize(size);
}

DecodePlan::~DecodePlan() = default;

int64_t DecodePlan::context() const { return net_->L; }
int64_t DecodePlan::vocab() const { return net_->V; }

std::string DecodePlan::describe() const {
  const Net& n = *net_;
  return cat_str("DecodePlan(layers=", n.layers.size(), ", C=", n.C, ", H=", n.H, ", G=", n.G, ", D=", n.D, ", F=", n.F,
                 n.layers[0].gated ? " gated" : "", ", pos=", n.pos_id, ", context=", n.L, ", weights=",
                 n.layers[0].qkv.quant ? quant_scheme_name(n.layers[0].qkv.quant->scheme()) : "f32",
                 ", threads=", threads_, ")");
}

void DecodePlan::reset() { length_ = 0; }

void DecodePlan::load(const Model::State& state) {
  const Net& n = *net_;
  TZ_CHECK(state.layers.size() == n.layers.size() && !state.memory, "DecodePlan: a state of ", state.layers.size(),
           " layers for a plan of ", n.layers.size());
  TZ_CHECK(state.length >= 0 && state.length <= n.L, "DecodePlan: a state of ", state.length,
           " positions for a window of ", n.L);
  for (size_t i = 0; i < n.layers.size(); ++i) {
    const auto* block = dynamic_cast<const BlockState*>(state.layers[i].get());
    const auto* kv =
        block && !block->mixers.empty() ? dynamic_cast<const nn::KVState*>(block->mixers[0].get()) : nullptr;
    TZ_CHECK(kv && kv->keys == state.length && kv->key_start == 0 && kv->k.dim() == 4 && kv->k.size(0) == 1 &&
                 kv->k.size(1) == n.G && kv->k.size(3) == n.D && kv->v.shape() == kv->k.shape() && f32_rows(kv->k) &&
                 f32_rows(kv->v),
             "DecodePlan: layer ", i, " of the state is not the KV cache of this model at batch 1");
    const int64_t cap = kv->k.size(2);
    for (int64_t g = 0; g < n.G; ++g) {
      const int64_t count = state.length * n.D;
      std::copy_n(kv->k.data<float>() + g * cap * n.D, count, n.layers[i].k + g * n.L * n.D);
      std::copy_n(kv->v.data<float>() + g * cap * n.D, count, n.layers[i].v + g * n.L * n.D);
    }
  }
  length_ = state.length;
}

const float* DecodePlan::step(int64_t token) {
  const Net& n = *net_;
  TZ_CHECK(token >= 0 && token < n.V, "DecodePlan: token ", token, " is outside the vocabulary of ", n.V);
  TZ_CHECK(length_ < n.L, "DecodePlan: the window of ", n.L, " positions is full");
  parallel_team(threads_, [&](int t, int nt, TeamBarrier& barrier) { run(t, nt, barrier, token); });
  ++length_;
  return n.logits.p;
}

// One token at position length_ on thread t of a team of nt; the comments name what each
// phase computes and which tensor op of the step form it reproduces.
void DecodePlan::run(int t, int nt, TeamBarrier& barrier, int64_t token) {
  Net& n = *net_;
  const int64_t C = n.C, H = n.H, G = n.G, D = n.D, L = n.L, pos = length_, S = pos + 1;
  const int64_t qw = H * D, kw = G * D;
  float* h = n.h.p;
  float* xn = n.xn.p + t * ((C + 15) / 16 * 16);
  const auto [c0, c1] = share(C, t, nt);
  // The embedding (+ the position row): tok_emb(ids) + pos.embed(start, 1).
  const float* e = n.tok + token * C;
  const float* p = n.pos_rows.defined() ? n.pos_rows.data<float>() + pos * C : nullptr;
  for (int64_t c = c0; c < c1; ++c) h[c] = p ? e[c] + p[c] : e[c];
  barrier.wait();
  for (const Layer& l : n.layers) {
    // q | k | v = norm1(h) W_qkv^T + b; rotate q and k (pairs 2i, 2i + 1 of each head); k, v
    // into the cache at `pos`.
    apply(l.norm1, xn, h, C);
    const auto [r0, r1] = share(qw + 2 * kw, t, nt);
    float* qkv = n.qkv.p;
    plan_matvec(l.qkv, xn, qkv, r0, r1);
    if (n.rope)
      for (int64_t j = r0; j < std::min(r1, qw + kw); j += 2) {
        const int64_t i = (j < qw ? j : j - qw) % D;
        const float c = n.rope_cos.p[pos * (D / 2) + i / 2], s = n.rope_sin.p[pos * (D / 2) + i / 2];
        const float ev = qkv[j], od = qkv[j + 1];
        qkv[j] = ev * c - od * s;
        qkv[j + 1] = ev * s + od * c;
      }
    for (int64_t j = std::max(r0, qw), n = 0; j < r1; j += n) {  // a head's run of D floats at a time
      const bool key = j < qw + kw;
      const int64_t r = key ? j - qw : j - qw - kw, i = r % D;
      n = std::min(D - i, r1 - j);  // a run ends at its head's end, so never crosses from k to v
      std::copy(qkv + j, qkv + j + n, (key ? l.k : l.v) + (r / D) * L * D + pos * D + i);
    }
    barrier.wait();
    // Attention of each query head over the cache (the fused kernel, one head at a time:
    // the step form's call splits its heads across threads the same way).
    for (int64_t hd = H * t / nt; hd < H * (t + 1) / nt; ++hd) {
      const int64_t g = hd / (H / G);
      const kernels::AttnSizes sz{
          .B = 1, .H = 1, .T = 1, .S = S, .D = D, .q_offset = pos, .causal = true, .scale = n.scale, .G = 1};
      const kernels::RelativeBias<float> bias{
          .table = n.alibi.defined() ? n.alibi.data<float>() + hd * L : nullptr, .sh = 0, .R = L, .zero = 0};
      kernels::attention_forward<float>({n.att.p + hd * D, 0, 0, D}, n.lse.p + hd, {qkv + hd * D, 0, 0, D},
                                        {l.k + g * L * D, 0, 0, D}, {l.v + g * L * D, 0, 0, D}, sz,
                                        n.alibi.defined() ? &bias : nullptr, nullptr);
    }
    barrier.wait();
    // h = h + (att W_o^T + b)
    plan_matvec(l.out, n.att.p, n.y.p, c0, c1);
    for (int64_t c = c0; c < c1; ++c) h[c] = h[c] + n.y.p[c];
    barrier.wait();
    // hid = act(norm2(h) W_fc^T + b), or act(x W_gate^T + b) * (x W_up^T + b) when gated
    apply(l.norm2, xn, h, C);
    const auto [f0, f1] = share(l.fc.rows, t, nt);
    float* hid = n.hid.p;
    plan_matvec(l.fc, xn, hid, f0, f1);
    if (!l.identity) kernels::unary(l.act, hid + f0, hid + f0, f1 - f0);
    if (l.gated) {
      plan_matvec(l.up, xn, n.up.p, f0, f1);
      for (int64_t j = f0; j < f1; ++j) hid[j] = hid[j] * n.up.p[j];
    }
    barrier.wait();
    // h = h + (hid W_proj^T + b)
    plan_matvec(l.proj, hid, n.y.p, c0, c1);
    for (int64_t c = c0; c < c1; ++c) h[c] = h[c] + n.y.p[c];
    barrier.wait();
  }
  // logits = norm_f(h) W_head^T
  const float* x = h;
  if (n.has_norm_f) {
    apply(n.norm_f, xn, h, C);
    x = xn;
  }
  const auto [v0, v1] = share(n.V, t, nt);
  plan_matvec(n.head, x, n.logits.p, v0, v1);
}

}  // namespace tz::models
