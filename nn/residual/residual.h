// Residual connections: how one sublayer of a block joins the residual stream.
//
// A block is a list of sublayers {norm, function f, residual}; the residual kind decides
// where the norm sits and how the branch f meets the stream x [B, T, C] (C the width):
//   add     pre-norm x + f(norm(x)),  post-norm norm(x + f(x))        nn/residual/add.cpp
//   rezero  x + α f(x), α a scalar initialised to 0, no norm          nn/residual/rezero.cpp
//   gtrxl   g(x, relu(f(norm(x)))), GTrXL's GRU-type gate g           nn/residual/gtrxl.cpp
//   skipinit  x + α f(x), α initialised to skipinit_alpha, no norm    nn/residual/skipinit.cpp
//   b2t     post-norm, the block's input added again before its last norm  nn/residual/b2t.cpp
//   augmented  pre-norm, plus Σ_i σ(u D_i) U_i of the normed input on mixer sublayers
//           (PanGu-π's augmented shortcut)                              nn/ffn/pangu_pi.cpp
// The `residual` key chooses the kind for every sublayer. Each kind declares its keys and
// its catalogue registration in its own file and is listed once in kinds.def. Its
// parameters live on the block, named with the sublayer's tag (ReZero's α of sublayer 1 is
// `alpha1`, GTrXL's gate `gate1`), so that checkpoints keep their keys.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "nn/config.h"
#include "nn/module.h"
#include "nn/registry.h"

namespace tz::nn {

inline const Key<std::string> kResidual{"residual", "add",
                                        "how each sublayer joins the stream: add, rezero (x + αf(x), α = 0 at init, "
                                        "no norms), gtrxl (GRU gate), skipinit (x + αf(x), α = skipinit_alpha "
                                        "at init, no norms), b2t (post-norm with a bottom-to-top skip) or augmented "
                                        "(PanGu-π's extra bottleneck shortcuts on the mixer sublayers)"};

class Residual {
 public:
  // The sublayer's function applied to its (normed) input.
  using Branch = std::function<Tensor(const Tensor&)>;
  virtual ~Residual() = default;
  // The stream after the sublayer; `norm` is null when has_norm() is false.
  virtual Tensor forward(const Tensor& x, const UnaryModule* norm, const Branch& f) const = 0;
  // The same inside a block whose input was `block_input`, `last` for the block's last
  // sublayer: a kind that reads the block's input (B2T) overrides it.
  virtual Tensor forward_in_block(const Tensor& x, const UnaryModule* norm, const Branch& f, const Tensor& block_input,
                                  bool last) const {
    (void)block_input, (void)last;
    return forward(x, norm, f);
  }
  // False: the sublayer builds no norm (ReZero).
  virtual bool has_norm() const { return true; }
  // Whether a model of such sublayers ends with a norm before its head unless the
  // `final_norm` key says otherwise: a pre-norm stream is never normalised inside the
  // blocks, a post-norm stream leaves every block normalised.
  virtual bool final_norm() const { return true; }
  // Draws the kind's parameters; the block calls it after building the sublayer's function
  // so that initial values keep their order of draws.
  virtual void build(Generator& gen) {}
  virtual std::string describe() const = 0;
  // What build() made, for the block to register under name + tag.
  NamedTensors parameters;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> modules;
};

// A residual kind: its `residual` value, its keys and how to make it for a sublayer.
struct ResidualKind {
  std::string name;
  std::vector<ConfigKey> keys;  // besides `residual`
  std::function<std::unique_ptr<Residual>(const ModelDims&, const Config&)> make;
};

// The kind the config's `residual` key names, for a sublayer of width dims.dim. Throws naming
// the key and the kinds; a key of another kind (gtrxl_bias with add) is refused naming both.
std::unique_ptr<Residual> make_residual(const ModelDims& dims, const Config& config);
// `residual` and the keys of every kind (for the list of valid keys).
std::vector<ConfigKey> residual_config_keys();

}  // namespace tz::nn
