// The typed config keys of the FFN, norm and position ids: each declared key has a type, its
// default parses as that type, and the factory really reads it (a declared key nobody reads
// would be documented but dead).
#include "core/creation.h"
#include "core/random.h"
#include "models/zoo.h"
#include "nn/ffn/mlp.h"
#include "tests/test_util.h"

using namespace tz;

TEST_CASE("FFN, norm and position ids declare typed keys that their factories read") {
  const nn::ModelDims dims{.dim = 8, .heads = 2, .context = 8, .depth = 2};
  for (const char* id :
       {"ffn_mlp", "glu_variants", "activation_survey", "layernorm", "rmsnorm", "scalenorm", "learned_abs_pe",
        "sinusoidal_pe", "rope", "xpos", "position_infused_attn", "tupe", "txl_rel_pos"}) {
    CAPTURE(id);
    const nn::VariantInfo& v = zoo::registry().get(id);
    std::string json = "{";
    for (const nn::ConfigKey& k : v.keys) {
      CHECK_MESSAGE(!k.type.empty(), id, ": key '", k.key, "' is not declared as an nn::Key");
      json += (json.size() > 1 ? ", \"" : "\"") + k.key + "\": " + k.default_value;
    }
    nn::Config all_defaults = nn::Config::parse(json + "}", id), empty;
    Generator g1(1), g2(1);
    std::shared_ptr<nn::Module> a, b;
    if (v.ffn) a = v.ffn(dims, all_defaults, g1), b = v.ffn(dims, empty, g2);
    if (v.norm) a = v.norm(dims, all_defaults, g1), b = v.norm(dims, empty, g2);
    if (v.position) a = v.position(dims, all_defaults, g1), b = v.position(dims, empty, g2);
    REQUIRE(a);
    CHECK_NOTHROW(all_defaults.check_all_read({}));  // every declared key was read
    CHECK(a->describe() == b->describe());           // the declared default is the one in effect
    CHECK(a->num_parameters() == b->num_parameters());
  }
}

TEST_CASE("keys shared by several ids agree in type, the norms keep their own norm_eps defaults") {
  std::map<std::string, std::string> type_of;
  for (const nn::VariantInfo* v : zoo::registry().all())
    for (const nn::ConfigKey& k : v->keys) {
      if (k.type.empty()) continue;
      auto [it, fresh] = type_of.emplace(k.key, k.type);
      CHECK_MESSAGE(it->second == k.type, v->id, ": '", k.key, "' is ", k.type, ", elsewhere ", it->second);
    }
  CHECK(type_of.at("ffn_mult") == "int");
  CHECK(type_of.at("norm_eps") == "number");
  CHECK(nn::kLayerNormEps.name == nn::kRmsNormEps.name);
  CHECK(nn::kLayerNormEps.fallback == 1e-5);
  CHECK(nn::kRmsNormEps.fallback == 1e-6);
  auto eps_of = [](const char* id) { return zoo::registry().get(id).keys.at(0).default_value; };
  CHECK(eps_of("layernorm") != eps_of("rmsnorm"));
}
