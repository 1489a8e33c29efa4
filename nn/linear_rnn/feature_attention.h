// Feature-map (kernelised) attention: softmax attention's exp(q . k) replaced by a feature
// product φ(q) . φ(k), run as causal linear attention with its normaliser on the chunked
// kernel (core/kernels/linear_attention.h). The maps and their papers: feature_maps.h.
//
// Shapes: B batch, T time, C model dim, H heads, D = C / H per head, F features per head.
// Per head, with q, k, v = x W_q, x W_k, x W_v:
//   S_t = a_t S_{t-1} + φ(k_t)^T v_t,   z_t = a_t z_{t-1} + φ(k_t)
//   y_t = φ(q_t) S_t / (φ(q_t) . z_t + eps),   out = concat_h(y) W_o
// with a_t = 1, except gated RFA (a_t = g_t, and φ(k_t) weighted by 1 - g_t) and PermuteFormer
// (a_t = r, its decay). The map per id:
//   performer         φ = FAVOR+ on q D^(-1/4), k D^(-1/4): E[φ(q).φ(k)] = exp(q.k / √D);
//                     W [F, D] orthogonal, a buffer redrawn every feature_redraw training calls
//   rfa               φ = [sin, cos] random features of s ⊙ q / |q|, s ⊙ k / |k|, W ~ N(0, I):
//                     E[φ(q).φ(k)] = exp(-|s ⊙ (q/|q| - k/|k|)|^2 / 2); s [H, D] learned (the
//                     paper learns σ in w = σ ⊙ w~), from rfa_sigma; gate g_t = σ(w_g . x_t + b_g)
//                     per head (arXiv:2103.02143 sec. 3.2)
//   rebased           φ = (γ ⊙ LN(x) + β)^(⊗2), F = D^2
//   hedgehog          φ = [softmax(x W + b), softmax(-x W - b)] over features, W = I and b = 0
//                     at start, F = 2 D
//   polysketchformer  φ = (S (x / |x|)^(⊗ p/2))^(⊗2): (q.k / |q||k|)^p sketched, F = r^2
//   dijiang           φ = w ⊙ FAVOR+ on DCT frequencies with quasi-Monte-Carlo lengths (fixed,
//                     feature_maps.h), w [H, F] learned (1 at start): the weighted QMC estimate
//                     of exp(q.k / √D)
// A position scheme in ctx.pos that is a PermutePositions (pos "permuteformer") permutes
// the features by position (feature_maps.h), any map. RelativeSinusoids (pos
// "translational_equivariant_performer", performer only) appends position parts to q and k
// before the map (below). Schemes that rotate q, k or bias scores are refused.
// Deviations: the denominator adds eps = 1e-6; projections have biases; performer's query
// features subtract their row max (cancels in the normaliser) so that no exp overflows.
#pragma once

#include "core/random.h"
#include "nn/layers.h"
#include "nn/linear_rnn/common.h"

namespace tz::nn {

inline const Key<int64_t> kFeatureCount{"feature_count", 0, "F: random features per head (performer, rfa); 0 = 4 D"};
inline const Key<int64_t> kFeatureRedraw{"feature_redraw", 1000,
                                         "redraw the random features every this many training forwards (0 = never)"};
inline const Key<double> kRfaSigma{"rfa_sigma", 1.0,
                                   "initial σ of RFA's learned feature scale: kernel exp(-σ^2 |x - y|^2 / 2)"};
inline const Key<bool> kRfaGate{"rfa_gate", true, "gated RFA: S_t = g_t S_{t-1} + (1 - g_t) φ(k_t) v_t"};
inline const Key<int64_t> kPolyDegree{"polysketch_degree", 4, "p: the polynomial kernel (q.k)^p, even"};
inline const Key<int64_t> kPolySize{"polysketch_size", 32,
                                    "r: sketch rows; exact when r >= D^(p/2), features r^2 per head"};

enum class FeatureMapKind { performer, rfa, rebased, hedgehog, polysketch, dijiang };
const char* feature_map_name(FeatureMapKind kind);

struct FeatureAttentionOptions {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H (divides C)
  FeatureMapKind map = FeatureMapKind::performer;
  int64_t features = 0;   // performer, rfa, dijiang: F random features (0 = 4 D)
  int64_t redraw = 0;     // performer, rfa: redraw W every this many training forwards (0 = never)
  double sigma = 1.0;     // rfa: initial feature scale σ (learned per head and channel)
  bool gate = true;       // rfa: gated (arXiv:2103.02143 sec. 3.2)
  int64_t degree = 4;     // polysketch: p
  int64_t sketch = 32;    // polysketch: r
  int64_t rel_pairs = 0;  // performer: P sinusoid pairs of RelativeSinusoids appended to q, k
  int64_t chunk = 64;
  LinearAttentionForm form = LinearAttentionForm::chunked;
  bool bias = true;
};

class FeatureAttention : public Mixer {
 public:
  FeatureAttention(const FeatureAttentionOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  int64_t head_dim() const { return options.dim / options.heads; }
  int64_t feature_dim() const;  // F
  // φ(q) or φ(k) of one head split [B, H, T, D] (no position permutation).
  Tensor features(const Tensor& x, bool query) const;
  // Redraws the random features now (the schedule calls it every `redraw` training calls).
  void redraw();
  // Distillation (Hedgehog sec. 4, DiJiang sec. 4): when set, a forward with ctx.aux adds
  // softmax_mimicry_kl of softmax(q k^T / √D) against the feature rows of the same q, k
  // (feature_maps.h) as the auxiliary loss "attention_kl.<layer>".
  bool distill = false;
  int64_t redraws() const { return redraws_; }

  FeatureAttentionOptions options;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, o_proj, gate_proj;
  Tensor random;                // performer, rfa, dijiang: W [F, D] (buffer)
  Tensor qmc_weight;            // dijiang: w [H, F]
  Tensor rfa_scale;             // rfa: σ [H, D]
  Tensor gamma, beta;           // rebased [H, D]
  Tensor map_weight, map_bias;  // hedgehog [H, D, D], [H, D]
  Tensor sketch;                // polysketch S [r, D^(p/2)] (buffer)
  Tensor permutations;          // PermuteFormer's P per head [H, F] i64 (buffer)

 private:
  Generator redraw_gen_;
  int64_t calls_ = 0, redraws_ = 0;
};

// PermuteFormer's position scheme (pos "permuteformer", arXiv:2109.02377): no embedding, no
// rotation of q, k, no score bias; a feature-map mixer reads it from ctx.pos and permutes
// its features by position, with decay r per step. Softmax attention refuses it.
class PermutePositions : public PositionScheme {
 public:
  explicit PermutePositions(double decay) : decay(decay) {}
  bool rotates() const override { return true; }  // so that softmax attention calls rotate and refuses
  void rotate(Tensor& q, Tensor& k, int64_t q_start, int64_t k_start) const override;
  std::string describe() const override;
  double decay;  // r in (0, 1]
};

// Translation-equivariant Performer, strategy 1 ("Translational Equivariance in Kernelizable
// Attention", Horn, Shridhar, Groenewald, Baumann 2021, arXiv:2102.07680): q and k get position
// parts from sinusoids p_i = [cos(ω_p i), sin(ω_p i)]_p (P pairs of learned frequencies), the
// query's through a constrained projection M_h = blocks α_hp I + β_hp J (J = [[0, 1], [-1, 0]],
// commuting with every rotation), the key's as is:
//   q~_i = [q_i, M_h p_i],  k~_j = [k_j, p_j],
//   q~_i . k~_j = q_i . k_j + sum_p α_hp cos(ω_p (i - j)) + β_hp sin(ω_p (i - j))
// and |M_h p_i| does not depend on i, so the softmax kernel exp(q~ . k~) that FAVOR+ estimates
// depends on positions through i - j only. For one draw W of the random features, a shift
// by s is a rotation of W's position columns (W R_s, again orthogonal Gaussian rows): the
// output is translation-equivariant in distribution. α, β [H, P] and ω [P] are learned, shared
// by the layers (the paper's code has one set per layer); softmax attention refuses the scheme.
// Deviation: ω starts evenly spread over (0, π), ω_p = π (p + 1) / (P + 1), instead of the
// geometric 10000^(-p / P) of sinusoid embeddings, whose low frequencies cannot tell apart the
// offsets of a short training window (copy stayed at 0.42 after 400 steps with them, fixed).
class RelativeSinusoids : public PositionScheme {
 public:
  RelativeSinusoids(int64_t heads, int64_t pairs, Generator& gen);
  bool rotates() const override { return true; }  // so that softmax attention calls rotate and refuses
  void rotate(Tensor& q, Tensor& k, int64_t q_start, int64_t k_start) const override;
  std::string describe() const override;
  // M_h p_i [1, H, T, 2P] and p_j [1, 1, T, 2P] at positions start .. start + T - 1.
  Tensor query_part(int64_t start, int64_t T, DType dtype) const;
  Tensor key_part(int64_t start, int64_t T, DType dtype) const;
  int64_t heads, pairs;
  Tensor alpha, beta;  // [H, P]
  Tensor freq;         // ω [P]

 private:
  std::pair<Tensor, Tensor> sinusoids(int64_t start, int64_t T, DType dtype) const;  // cos, sin [1, 1, T, P]
};

}  // namespace tz::nn
