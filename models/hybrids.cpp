// Hybrid models as layouts of existing mixers (models/layout.h: an explicit s/f layout and one
// mixer id per mixer sublayer), pre-norm residual blocks with RMSNorm:
//   griffin  "Griffin: Mixing Gated Linear Recurrences with Local Attention for Efficient
//            Language Models", De et al. 2024, arXiv:2402.19427: the pattern [RG-LRU, RG-LRU,
//            local MQA] repeated, each followed by a gated MLP (GeGLU); the RG-LRU block is
//            rglru_hawk (nn/linear_rnn/rglru.h), the local MQA local_attention with one KV head
//            and a window-bounded cache (nn/sparse_attention/local_mqa.h), rotated by RoPE.
//   samba    "Samba: Simple Hybrid State Space Models for Efficient Unlimited Context Language
//            Modeling", Ren et al. 2024, arXiv:2406.07522: [Mamba, SwiGLU MLP, sliding-window
//            attention (RoPE), SwiGLU MLP] repeated; mamba (nn/ssm/mamba.h) and local_attention.
// Both decode with a bounded state: the recurrences' states (conv tails, h) and the last w - 1
// keys and values of each attention layer, whatever the length of the history.
// Scale: the paper's models use window 1024 (Griffin) and 2048 (Samba) over 2k / 4k contexts;
// the examples here keep the pattern at laptop size.
#include "models/layout.h"
#include "nn/registry.h"
#include "nn/sparse_attention/local_mqa.h"

namespace tz::zoo {

void register_griffin(nn::Registry& r) {
  r.add({.id = "griffin",
         .summary = "Griffin: blocks [RG-LRU, RG-LRU, local MQA (one KV head, window w)], each with a GeGLU MLP",
         .keys = {models::kLayout, nn::kSparseWindow, nn::kSparseKvHeads},
         .test_config = R"({"layout": "sfsfsf", "mixer": ["rglru_hawk", "rglru_hawk", "local_attention"],
                            "sparse_window": 8, "sparse_kv_heads": 1, "ffn": "glu_variants", "ffn_glu": "geglu",
                            "norm": "rmsnorm", "pos": "rope"})",
         .example = R"({"dim": 256, "heads": 4, "context": 1024, "layout": "sfsfsfsfsfsf",
                        "mixer": ["rglru_hawk", "rglru_hawk", "local_attention", "rglru_hawk", "rglru_hawk",
                                  "local_attention"], "sparse_window": 256, "sparse_kv_heads": 1,
                        "ffn": "glu_variants", "ffn_glu": "geglu", "norm": "rmsnorm", "pos": "rope"})",
         .chunk = 8});
}

void register_samba(nn::Registry& r) {
  r.add({.id = "samba",
         .summary = "Samba: layers [Mamba, SwiGLU MLP, sliding-window attention (RoPE), SwiGLU MLP]",
         .keys = {models::kLayout, nn::kSparseWindow, nn::kSparseKvHeads},
         .test_config = R"({"layout": "sfsf", "mixer": ["mamba", "local_attention"], "sparse_window": 16,
                            "sparse_kv_heads": 2, "ffn": "glu_variants", "ffn_glu": "swiglu", "norm": "rmsnorm",
                            "pos": "rope"})",
         .example = R"({"dim": 256, "heads": 4, "context": 1024, "layout": "sfsfsfsf",
                        "mixer": ["mamba", "local_attention", "mamba", "local_attention"], "sparse_window": 256,
                        "sparse_kv_heads": 4, "ffn": "glu_variants", "ffn_glu": "swiglu", "norm": "rmsnorm",
                        "pos": "rope"})",
         .chunk = 10});
}

}  // namespace tz::zoo
