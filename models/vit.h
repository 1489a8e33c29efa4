// The Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words",
// arXiv:2010.11929; x-transformers' ViTransformerWrapper). Shapes: B batch, ch channels,
// p patch size, N patches, P = p·p·ch, C width.
//   patches = patchify(img) [B, N, P];  z = [cls; patches W_p + b_p] + pos    [B, N+1, C]
//   logits = W_h norm(Encoder(z)[:, 0])                                        [B, classes]
// The encoder is the zoo's blocks, bidirectional (models/encoder_stack.h). `pos` is a learned
// [N+1, C] table by default, or any registered position scheme over the N+1 positions.
#pragma once

#include <memory>

#include "models/model.h"
#include "nn/layers.h"
#include "nn/registry.h"

namespace tz::models {

// img [B, ch, H, W] → [B, N, p·p·ch] (patch rows in raster order, channel last) and back.
Tensor patchify(const Tensor& img, int64_t p);
Tensor unpatchify(const Tensor& patches, int64_t p, int64_t channels, int64_t height, int64_t width);

class ViT : public Model {
 public:
  ViT(const nn::Config& config, const nn::Registry& registry, Generator& gen);
  using Model::forward;
  // {img [B, ch, H, W]} → [B, classes]
  Tensor forward(const std::vector<Tensor>& inputs, State* state = nullptr, nn::AuxLosses* aux = nullptr) override;
  Batch sample(int64_t batch, Generator& gen) const override;  // which quadrant is bright
  int causal_input() const override { return -1; }
  std::string why_not_causal() const override { return "an image classifier: one output per image"; }
  std::string why_no_step() const override { return "bidirectional encoder over all patches"; }
  int64_t context() const override { return patches_ + 1; }
  std::string describe() const override { return "ViT"; }

  int64_t image = 0, patch = 0, channels = 0, classes = 0, dim = 0;
  std::shared_ptr<nn::Linear> patch_emb, head;
  Tensor cls, pos;                                // pos: the learned table (default)
  std::shared_ptr<nn::PositionScheme> positions;  // another scheme, when `pos` names one
  std::shared_ptr<nn::ModuleList> layers;         // of Block
  std::shared_ptr<nn::UnaryModule> norm;

 private:
  int64_t patches_ = 0;
};

std::vector<nn::ConfigKey> vit_keys();

}  // namespace tz::models
