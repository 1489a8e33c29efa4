#include "models/vit.h"

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "models/encoder_stack.h"
#include "models/keys.h"
#include "models/zoo.h"

namespace tz::models {

namespace vit {
const nn::Key<int64_t> kImageSize{"image_size", 8, "H = W"};
const nn::Key<int64_t> kPatchSize{"patch_size", 4, "p"};
const nn::Key<int64_t> kChannels{"channels", 1, "image channels"};
const nn::Key<int64_t> kNumClasses{"num_classes", 4, "classes"};
const nn::Key<int64_t> kDim{"dim", 16, "width C"};
const nn::Key<int64_t> kDepth{"depth", 1, "encoder layers"};
const nn::Key<int64_t> kHeads{"heads", 2, "heads"};
}  // namespace vit

std::vector<nn::ConfigKey> vit_keys() {
  return {vit::kImageSize, vit::kPatchSize, vit::kChannels, vit::kNumClasses, vit::kDim, vit::kDepth, vit::kHeads};
}

Tensor patchify(const Tensor& img, int64_t p) {
  TZ_CHECK(img.dim() == 4 && img.size(2) % p == 0 && img.size(3) % p == 0,
           "patchify: expected [B, ch, H, W] with H, W "
           "multiples of ",
           p, ", got ", img.shape());
  const int64_t B = img.size(0), ch = img.size(1), H = img.size(2), W = img.size(3);
  return img.reshape({B, ch, H / p, p, W / p, p})
      .permute({0, 2, 4, 3, 5, 1})
      .reshape({B, (H / p) * (W / p), p * p * ch});
}

Tensor unpatchify(const Tensor& x, int64_t p, int64_t ch, int64_t H, int64_t W) {
  const int64_t B = x.size(0);
  return x.reshape({B, H / p, W / p, p, p, ch}).permute({0, 5, 1, 3, 2, 4}).reshape({B, ch, H, W});
}

ViT::ViT(const nn::Config& config, const nn::Registry& registry, Generator& gen) : Model(config) {
  const nn::Config& c = config_;
  check_model_key(c, {"vit_wrapper"});
  image = c.get(vit::kImageSize);
  patch = c.get(vit::kPatchSize);
  channels = c.get(vit::kChannels);
  classes = c.get(vit::kNumClasses);
  dim = c.get(vit::kDim);
  const int64_t depth = c.get(vit::kDepth), heads = c.get(vit::kHeads);
  TZ_CHECK(patch > 0 && image > 0 && image % patch == 0, c.source(), ": patch_size (", patch,
           ") must divide image_size (", image, ")");
  TZ_CHECK(channels > 0 && classes > 1 && dim > 0 && depth > 0 && heads > 0 && dim % heads == 0, c.source(),
           ": channels, depth, heads > 0, num_classes > 1, heads dividing dim");
  patches_ = (image / patch) * (image / patch);
  const nn::ModelDims d{.dim = dim,
                        .heads = heads,
                        .context = patches_ + 1,
                        .depth = depth,
                        .bias = c.get(kBias),
                        .dropout = c.get(kDropout)};
  patch_emb = register_module(
      "patch_emb", std::make_shared<nn::Linear>(nn::LinearOptions{.in = patch * patch * channels, .out = dim}, gen));
  cls = register_parameter("cls", randn({1, 1, dim}, gen) * 0.02);
  if (c.get(kPos) == kPos.fallback)
    pos = register_parameter("pos", randn({patches_ + 1, dim}, gen) * 0.02);
  else
    positions = register_module("pos", registry.make_position(c.get(kPos), d, c, gen));
  layers = register_module("layers", make_stack({.depth = depth, .causal = false}, d, registry, c, gen));
  norm = register_module("norm", registry.make_norm(c.get(kNorm), d, c, gen));
  head = register_module("head", std::make_shared<nn::Linear>(nn::LinearOptions{.in = dim, .out = classes}, gen));
  check_wrapper_keys(c, registry, vit_keys());
}

Tensor ViT::forward(const std::vector<Tensor>& in, State* state, nn::AuxLosses* aux) {
  TZ_CHECK(!state, "ViT: no step form (", why_no_step(), ")");
  const Tensor& img = in.at(0);
  TZ_CHECK(img.dim() == 4 && img.size(1) == channels && img.size(2) == image && img.size(3) == image,
           "ViT: expected images [B, ", channels, ", ", image, ", ", image, "], got ", img.shape());
  const int64_t B = img.size(0);
  Tensor z = patch_emb->forward(patchify(img, patch));  // [B, N, C]
  z = cat({cls.expand({B, 1, dim}), z}, 1);             // [B, N + 1, C]
  Tensor p = positions ? positions->embed(0, patches_ + 1, z.dtype()) : pos;
  std::map<std::string, Tensor> carry;
  z = run_stack(*layers, p.defined() ? z + p : z, {.pos = positions.get(), .aux = aux, .carry = &carry});
  return head->forward(norm->forward(z.select(1, 0)));  // the [CLS] row
}

// Which quadrant holds the bright square: 4 classes (more classes reuse the quadrants + noise).
Model::Batch ViT::sample(int64_t B, Generator& gen) const {
  Tensor img = randn({B, channels, image, image}, gen) * 0.1;
  Tensor y = zeros({B}, DType::i64);
  const int64_t h = image / 2;
  for (int64_t b = 0; b < B; ++b) {
    int64_t k = gen.randint(0, std::min<int64_t>(classes, 4));
    y.set({b}, double(k));
    core::copy_(img.select(0, b).narrow(1, (k / 2) * h, h).narrow(2, (k % 2) * h, h),
                ones({channels, h, h}) + img.select(0, b).narrow(1, (k / 2) * h, h).narrow(2, (k % 2) * h, h));
  }
  return {{img}, y};
}

}  // namespace tz::models

namespace tz::zoo {

void register_vit_wrapper(nn::Registry& r) {
  r.add(
      {.id = "vit_wrapper",
       .summary = "Image → p×p patches → linear embedding + [CLS] + learned positions → encoder → class logits",
       .keys = models::wrapper_keys(models::vit_keys()),
       .test_config = R"({"image_size": 8, "patch_size": 4, "num_classes": 4, "dim": 16, "heads": 2})",
       .example =
           R"({"model": "vit_wrapper", "image_size": 32, "patch_size": 4, "channels": 3, "num_classes": 10, "dim": 192, "depth": 6, "heads": 3})",
       .model = [](const nn::Config& c, Generator& g) { return std::make_shared<models::ViT>(c, registry(), g); }});
}

}  // namespace tz::zoo
