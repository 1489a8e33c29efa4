// The decode plan: batch-1 generation of a GPT-type language model without the tensor layer.
// Shapes: C width, H query heads, G key/value heads, D head size, F hidden width of the FFN,
// V vocabulary, L context (the window of the KV cache).
//
// Decoding one token through the model's step form (Model::step) runs about 70 small tensor
// ops: each makes tensor objects and shape vectors, asks the dispatcher, and opens its own
// parallel region. The plan is built once from the model: raw pointers to its parameters,
// buffers sized once (the stream [C], q | k | v, the attention output, the FFN hidden row,
// the logits [V]) and a KV cache for the whole window [layers, G, L, D]. A token is then one
// team of threads (tz::parallel_team) that goes through the layers in phases split by hand:
//   x = tok_emb[token] (+ pos row)
//   per layer:  norm1 → q|k|v rows (+ bias, rotary, into the cache) | attention over the
//               cache, by heads | out rows + bias + residual | norm2 → FFN rows (+ bias,
//               activation, gate) | proj rows + bias + residual
//   norm_f → head rows → logits
// with a barrier between phases (5 per layer). Each thread computes the norms itself (a row
// of C, cheaper than a barrier). Every weight product goes through plan_matvec.
//
// Exactly the numbers of the step form: every piece calls the kernel the tensor op calls
// (the dispatcher's GEMV on column ranges, layernorm/rmsnorm_forward, the elementwise
// activation, attention_forward per head) with the same operands, and adds and multiplies in
// the same order, so the logits, and hence the sampled tokens, are bit for bit those of
// Model::step (the test `decode plan: ...` compares them). The prompt is prefilled by the
// model's own batched forward (one GEMM over the prompt instead of a GEMV per token, and the
// same numbers as before by construction); load() takes the KV cache it filled.
//
// What a plan covers (why_not() names the first thing that is not): the zoo LM with one
// block per layer of {norm1, mixer} {norm2, ffn}, pre-norm residual adds, no token shift,
// memory tokens, segment memory, shared layers or ACT; norms layernorm or rmsnorm (and the
// same or none before the head); the mixer vanilla_mha with no attention feature but
// attn_kv_heads (MHA, GQA, MQA); positions learned_abs_pe, sinusoidal_pe (added to the
// embedding), rope, alibi or none; the FFN ffn_mlp or glu_variants with an activation that is
// one elementwise op (relu, gelu, gelu_tanh, silu, sigmoid, tanh, softplus; identity for the
// bilinear gate); f32 parameters, the Linears' weights f32 or quantized; dropout off (eval mode or p = 0). Everything else decodes
// through the step form (models/generate.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "core/quant.h"
#include "models/model.h"

namespace tz::models {

// One weight matrix W [rows, cols] (a Linear's weight, or the tied embedding as the head) as
// the plan's products read it: y = W x, one value per row. Either f32, row-major, in the
// model's own parameter memory (`keep` holds the storage), or the Linear's quantized form
// (int8 q8_0 or bf16, core/quant.h; `data` is then null).
struct PlanWeight {
  const float* data = nullptr;
  int64_t rows = 0, cols = 0;
  Tensor keep;
  std::shared_ptr<const QuantizedMatrix> quant;
  const float* bias = nullptr;  // a Linear's bias, or null
};

// y[j] = W[j, :] . x (+ bias[j]) for the rows j in [j0, j1), x [W.cols]. Every weight product of the plan
// goes through here, each with the kernel the Linear's own forward calls at one row of x, so
// y[j] is bit for bit the value it gives: f32 the dispatcher's GEMV (core/kernels/gemv.h,
// sgemv_columns), q8_0 and bf16 the chosen quantized GEMV (core/kernels/quant.h) on these
// rows, with x quantized per block by the calling thread when the kernel takes x in int8.
void plan_matvec(const PlanWeight& w, const float* x, float* y, int64_t j0, int64_t j1);

struct DecodePlanOptions {
  // Threads of the team: 0 = tz::get_num_threads() when the weights read per token are at
  // least 4 parallel grains (as the GEMV's own rule) and waiting is not passive, else 1.
  int threads = 0;
};

class DecodePlan {
 public:
  // "" when `model`, as it is now (parameters, train/eval mode), can be decoded by a plan;
  // else what stands in the way.
  static std::string why_not(const Model& model);
  // Throws tz::Error with why_not() when the model is not covered. The plan reads the model's
  // parameters in place: build a new one after replacing parameter tensors.
  explicit DecodePlan(const Model& model, const DecodePlanOptions& options = {});
  ~DecodePlan();
  DecodePlan(const DecodePlan&) = delete;
  DecodePlan& operator=(const DecodePlan&) = delete;

  // An empty cache: the next step() is position 0.
  void reset();
  // The KV cache of `state` (made by the model's make_state and filled by its step form for
  // positions 0 .. state.length - 1): the next step() continues after them.
  void load(const Model::State& state);
  // Feeds `token` at position length() (< context()) and returns the logits [vocab()], valid
  // until the next call.
  const float* step(int64_t token);

  int64_t length() const { return length_; }
  int64_t context() const;
  int64_t vocab() const;
  int threads() const { return threads_; }
  std::string describe() const;

 private:
  struct Layer;
  struct Net;
  void run(int t, int n, TeamBarrier& barrier, int64_t token);
  std::unique_ptr<Net> net_;
  int threads_ = 1;
  int64_t length_ = 0;
};

}  // namespace tz::models
