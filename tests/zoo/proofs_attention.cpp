// Proofs of the attention options that change the projections, q and k, or the output
// (nn/attention/features/): each checks its catalogue property with numbers, on a small f64
// attention layer. The options on the scores are in proofs_attention_scores.cpp.
#include <cmath>
#include <limits>

#include "models/zoo.h"
#include "nn/attention/features/qk_norm.h"
#include "tests/zoo/proofs.h"
#include "tests/zoo/proofs_attention.h"

using namespace tz;
using namespace tz::attn_proofs;

TZ_PROOF(head_dim_decoupled, "H*D != C runs forward and backward, with D = C/H bit-identical to vanilla_mha") {
  auto a = make_attn(R"({"attn_dim_head": 6})", 1);  // H D = 12 != C = 8
  CHECK(a->qkv->weight.shape() == Shape{36, 8});
  CHECK(a->out->weight.shape() == Shape{8, 12});
  Tensor x = input(5).requires_grad_();
  Tensor y = a->forward(x, {});
  CHECK(y.shape() == Shape{kB, 5, kC});
  auto r = gradcheck([&](const std::vector<Tensor>& in) { return a->forward(in[0], {}); }, {x});
  CHECK_MESSAGE(r.ok, r.report);
  NoGradGuard no_grad;
  double d = testing::max_abs_diff(make_attn(R"({"attn_dim_head": 4})", 2)->forward(x, {}),
                                   make_attn("{}", 2)->forward(x, {}));
  MESSAGE("dim_head = C/H vs vanilla_mha: max diff ", d, "; decode vs forward (D = 6): ", decode_diff(*a, x.detach()));
  TZ_PROOF_NUMBER("vs vanilla_mha", d);
  CHECK(d == 0);
  CHECK(decode_diff(*a, x.detach()) < 1e-12);
}

TZ_PROOF(mqa, "one shared K/V head == per-head reference (gqa G=1), KV cache 1/H of MHA, decode == forward") {
  const int64_t H = 4, D = kC / H, T = 6;
  auto m = make_attn(R"({"attn_kv_heads": 1})", 3, H);
  Tensor x = input(T);
  NoGradGuard no_grad;
  // Reference: every query head attends with the single key/value head.
  Tensor p = m->qkv->forward(x);  // [B, T, H D + 2 D]
  Tensor q = p.narrow(-1, 0, H * D).reshape({kB, T, H, D}).permute({0, 2, 1, 3});
  Tensor k = p.narrow(-1, H * D, D).reshape({kB, T, 1, D}).permute({0, 2, 1, 3}).expand({kB, H, T, D});
  Tensor v = p.narrow(-1, H * D + D, D).reshape({kB, T, 1, D}).permute({0, 2, 1, 3}).expand({kB, H, T, D});
  Tensor heads = nn::scaled_dot_product_attention_ref(q, k.contiguous(), v.contiguous(), true);
  Tensor ref = m->out->forward(heads.permute({0, 2, 1, 3}).reshape({kB, T, kC}));
  double d = testing::max_abs_diff(m->forward(x, {}), ref);
  auto sm = m->make_state(kB, 32, DType::f64);
  auto sh = make_attn("{}", 3, H)->make_state(kB, 32, DType::f64);
  auto& km = dynamic_cast<nn::KVState&>(*sm);
  auto& kh = dynamic_cast<nn::KVState&>(*sh);
  double ratio = double(km.k.numel() + km.v.numel()) / double(kh.k.numel() + kh.v.numel());
  MESSAGE("MQA vs shared-head reference ", d, "; KV cache size ratio MQA/MHA ", ratio, "; decode diff ",
          decode_diff(*m, x));
  TZ_PROOF_NUMBER("vs shared-head reference", d);
  CHECK(d < 1e-12);
  CHECK(ratio == doctest::Approx(1.0 / H));
  CHECK(decode_diff(*m, x) < 1e-12);
}

TZ_PROOF(gqa, "G=H conversion reproduces MHA, G=1 is MQA, mean-pooled MHA checkpoint matches the formula") {
  const int64_t H = 4, D = kC / H, T = 6;
  auto mha = make_attn("{}", 4, H);
  randomise(mha->qkv->weight, 5);
  randomise(mha->qkv->bias, 6);
  Tensor x = input(T);
  NoGradGuard no_grad;
  auto g4 = make_attn(R"({"attn_kv_heads": 4})", 7, H);
  nn::gqa_from_mha(*mha, *g4);
  double d4 = testing::max_abs_diff(g4->forward(x, {}), mha->forward(x, {}));
  CHECK(d4 == 0);
  for (int64_t G : {2, 1}) {
    auto g = make_attn(cat_str(R"({"attn_kv_heads": )", G, "}"), 8, H);
    nn::gqa_from_mha(*mha, *g);
    // The formula: key head of group j = mean of MHA key heads j H/G .. (j+1) H/G - 1.
    double wdiff = 0;
    const int64_t r = H / G;
    for (int64_t part = 0; part < 2; ++part)
      for (int64_t j = 0; j < G; ++j)
        for (int64_t d = 0; d < D; ++d)
          for (int64_t c = 0; c < kC; ++c) {
            double mean = 0;
            for (int64_t h = j * r; h < (j + 1) * r; ++h)
              mean += mha->qkv->weight.at({(1 + part) * H * D + h * D + d, c}) / r;
            wdiff = std::max(wdiff, std::abs(g->qkv->weight.at({H * D + part * G * D + j * D + d, c}) - mean));
          }
    // An MHA whose key/value heads are replaced by their group means computes the same thing:
    // query head i reads group floor(i G / H).
    auto pooled = make_attn("{}", 4, H);
    core::copy_(pooled->qkv->weight, mha->qkv->weight);
    core::copy_(pooled->qkv->bias, mha->qkv->bias);
    core::copy_(pooled->out->weight, mha->out->weight);
    core::copy_(pooled->out->bias, mha->out->bias);
    for (int64_t part = 0; part < 2; ++part)
      for (int64_t h = 0; h < H; ++h) {
        int64_t j = h * G / H;
        core::copy_(pooled->qkv->weight.narrow(0, (1 + part) * H * D + h * D, D),
                    g->qkv->weight.narrow(0, H * D + part * G * D + j * D, D));
        core::copy_(pooled->qkv->bias.narrow(0, (1 + part) * H * D + h * D, D),
                    g->qkv->bias.narrow(0, H * D + part * G * D + j * D, D));
      }
    double od = testing::max_abs_diff(g->forward(x, {}), pooled->forward(x, {}));
    MESSAGE("G=", G, ": pooled weights vs formula ", wdiff, ", output vs pooled MHA ", od, ", decode diff ",
            decode_diff(*g, x));
    TZ_PROOF_NUMBER("vs pooled MHA", od);
    CHECK(wdiff < 1e-15);
    CHECK(od < 1e-12);
    CHECK(decode_diff(*g, x) < 1e-12);
  }
  // G = 1 is exactly MQA's configuration.
  CHECK(make_attn(R"({"attn_kv_heads": 1})", 9, H)->forward(x, {}).shape() == Shape{kB, T, kC});
}

TZ_PROOF(collab_heads, "D_k = H D with block one-hot m_h equals vanilla_mha, parameters drop with compression") {
  auto col = make_attn(R"({"attn_collab_heads": true, "attn_collab_compression": 1.0})", 13);
  auto van = make_attn("{}", 13);
  Tensor x = input(6);
  double d = testing::max_abs_diff(col->forward(x, {}), van->forward(x, {}));
  auto half = make_attn(R"({"attn_collab_heads": true, "attn_collab_compression": 0.5})", 14);
  randomise(half->param("collab_mix"), 15, 1.0);
  MESSAGE("collab (D_k = H D, block one-hot) vs vanilla ", d, "; parameters: vanilla ", van->num_parameters(),
          ", collab x1.0 ", col->num_parameters(), ", collab x0.5 ", half->num_parameters(), "; decode diff ",
          decode_diff(*half, x));
  TZ_PROOF_NUMBER("vs vanilla", d);
  CHECK(d < 1e-12);
  CHECK(half->num_parameters() < van->num_parameters());
  CHECK(decode_diff(*half, x) < 1e-12);
  check_causal(*half, x);
}

TZ_PROOF(attn_on_attn, "out = GLU(v_hat W + b) with the right shapes and gradients, causal preserved") {
  auto aoa = make_attn(R"({"attn_on_attn": true})", 16);
  auto van = make_attn("{}", 16);  // same q, k, v projections
  CHECK(aoa->out->weight.shape() == Shape{2 * kC, kC});
  Tensor x = input(6);
  {
    NoGradGuard no_grad;  // vanilla with W_o = I, b_o = 0 gives v_hat
    core::copy_(van->out->weight, eye(kC, DType::f64));
    core::fill_(van->out->bias, 0.0);
  }
  Tensor vhat = van->forward(x, {});
  Tensor z = linear(vhat, aoa->out->weight, aoa->out->bias);
  Tensor ref = z.narrow(-1, 0, kC) * sigmoid(z.narrow(-1, kC, kC));
  double d = testing::max_abs_diff(aoa->forward(x, {}), ref);
  Tensor xg = x.clone().requires_grad_();
  auto r = gradcheck([&](const std::vector<Tensor>& in) { return aoa->forward(in[0], {}); }, {xg});
  MESSAGE("AoA vs GLU(v_hat W + b) ", d, "; decode diff ", decode_diff(*aoa, x));
  TZ_PROOF_NUMBER("vs GLU formula", d);
  CHECK(d < 1e-12);
  CHECK_MESSAGE(r.ok, r.report);
  check_causal(*aoa, x);
  CHECK(decode_diff(*aoa, x) < 1e-12);
}

TZ_PROOF(gate_values,
         "at init the gated heads are sigma(1) x vanilla's (so out = sigma(1) vanilla without bias), causal") {
  Tensor x = input(6);
  auto g = make_attn(R"({"attn_gate_values": true})", 17, 2, /*bias=*/false);
  auto van = make_attn("{}", 17, 2, false);
  double d = testing::max_abs_diff(g->forward(x, {}), van->forward(x, {}) * (1.0 / (1.0 + std::exp(-1.0))));
  // With biases: gating happens before W_o, so out = sigma(1) (vanilla - b_o) + b_o.
  auto gb = make_attn(R"({"attn_gate_values": true})", 18);
  auto vb = make_attn("{}", 18);
  double s1 = 1.0 / (1.0 + std::exp(-1.0));
  double db = testing::max_abs_diff(gb->forward(x, {}), (vb->forward(x, {}) - vb->out->bias) * s1 + vb->out->bias);
  MESSAGE("gated vs sigma(1) x vanilla (no bias) ", d, "; with biases vs sigma(1)(vanilla - b) + b ", db);
  TZ_PROOF_NUMBER("vs sigma(1) vanilla", d);
  CHECK(d < 1e-12);
  CHECK(db < 1e-12);
  randomise(g->linear("gate")->weight, 19, 1.0);
  check_causal(*g, x);
  CHECK(decode_diff(*g, x) < 1e-12);
}

TZ_PROOF(qk_norm, "|score| <= g at any input scale (no overflow at 1e4 x), fixed-g max-free kernel == reference") {
  auto a = make_attn(R"({"attn_qk_norm": true})", 31);
  CHECK(a->param("qk_scale").item() == doctest::Approx(std::log2(16.0 * 16.0 - 16.0)));
  Tensor x = input(6) * 1e4;
  NoGradGuard no_grad;
  const int64_t H = 2, D = 4, T = 6;
  Tensor p = a->qkv->forward(x).view({kB, T, 3, H, D});
  Tensor q = nn::l2_normalize(p.select(2, 0).permute({0, 2, 1, 3})),
         k = nn::l2_normalize(p.select(2, 1).permute({0, 2, 1, 3}));
  double g = a->param("qk_scale").item(), worst = 0;
  for (double s : (matmul(q, k.transpose(-1, -2)) * g).to_vector<double>()) worst = std::max(worst, std::abs(s));
  auto a32 = make_attn(R"({"attn_qk_norm": true})", 31);
  a32->to(DType::f32);
  bool finite32 = testing::all_finite(a32->forward((x * 1e4).to(DType::f32), {}));  // inputs ~1e8
  // The fixed-g one-pass kernel (no running max) against the composite softmax reference.
  Generator gen(32);
  Tensor qh = nn::l2_normalize(randn({2, 3, 37, 5}, gen, DType::f64)),
         kh = nn::l2_normalize(randn({2, 3, 37, 5}, gen, DType::f64));
  Tensor v = randn({2, 3, 37, 5}, gen, DType::f64);
  double k1 = testing::max_abs_diff(nn::cosine_attention_fixed_scale(qh, kh, v, 10.0, true, 0),
                                    nn::cosine_attention_fixed_scale_ref(qh, kh, v, 10.0, true, 0));
  Tensor q5 = qh.narrow(2, 32, 5);
  double k2 = testing::max_abs_diff(nn::cosine_attention_fixed_scale(q5, kh, v, 10.0, true, 32),
                                    nn::cosine_attention_fixed_scale_ref(q5, kh, v, 10.0, true, 32));
  double k3 = testing::max_abs_diff(nn::cosine_attention_fixed_scale(qh, kh, v, 10.0, false, 0),
                                    nn::cosine_attention_fixed_scale_ref(qh, kh, v, 10.0, false, 0));
  auto fixed = make_attn(R"({"attn_qk_norm": true, "attn_qk_norm_scale": 10})", 33);
  Tensor xs = input(6);
  MESSAGE("max |score| ", worst, " <= g = ", g, "; f32 output finite at inputs ~1e8: ", finite32,
          "; max-free kernel vs reference (T=S=37 causal, T=5 at offset 32, non-causal): ", k1, ", ", k2, ", ", k3,
          "; fixed-g decode vs forward ", decode_diff(*fixed, xs), "; learned-g decode ", decode_diff(*a, xs));
  TZ_PROOF_NUMBER("max |score| / g", worst / g);
  CHECK(worst <= g * (1 + 1e-12));
  CHECK(finite32);
  CHECK(k1 < 1e-12);
  CHECK(k2 < 1e-12);
  CHECK(k3 < 1e-12);
  CHECK(decode_diff(*fixed, xs) < 1e-12);
  CHECK(decode_diff(*a, xs) < 1e-12);
}

TZ_PROOF(primer_mdha, "causal: output_t independent of x_(>t), kernel [0, 0, 1] reproduces vanilla_mha") {
  auto pr = make_attn(R"({"attn_dconv": true})", 34);
  auto van = make_attn("{}", 34);
  Tensor x = input(7);
  double d = testing::max_abs_diff(pr->forward(x, {}), van->forward(x, {}));
  randomise(pr->param("dconv"), 35, 1.0);
  double moved = testing::max_abs_diff(pr->forward(x, {}), van->forward(x, {}));
  // The conv itself: q_t = w0 q_(t-2) + w1 q_(t-1) + w2 q_t per channel (checked on channel 0).
  Tensor pre = van->qkv->forward(x), w = pr->param("dconv");
  Tensor post = conv1d_causal(pre, w);
  double cdiff = 0;
  for (int64_t t = 0; t < 7; ++t) {
    double want = w.at({0, 2}) * pre.at({0, t, 0}) + (t >= 1 ? w.at({0, 1}) * pre.at({0, t - 1, 0}) : 0.0) +
                  (t >= 2 ? w.at({0, 0}) * pre.at({0, t - 2, 0}) : 0.0);
    cdiff = std::max(cdiff, std::abs(post.at({0, t, 0}) - want));
  }
  MESSAGE("identity kernel vs vanilla ", d, "; random kernel moves the output by ", moved, "; conv formula ", cdiff,
          "; decode (rolling conv state) vs forward ", decode_diff(*pr, x));
  TZ_PROOF_NUMBER("identity kernel vs vanilla", d);
  CHECK(d < 1e-12);
  CHECK(moved > 1e-4);
  CHECK(cdiff < 1e-12);
  check_causal(*pr, x, 2);
  check_causal(*pr, x, 4);
  CHECK(decode_diff(*pr, x) < 1e-12);
}
