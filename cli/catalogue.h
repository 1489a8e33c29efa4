// The catalogue of variants to build (docs/catalogue.tsv, embedded at build time): the
// definition of done of the zoo, used by `tensorzoo list` and `tensorzoo coverage`.
#pragma once

#include <string>
#include <vector>

namespace tz::cli {

struct CatalogueRow {
  std::string id, name, family, kind, paper, seeds, core, proof;
  int tier = 0;
};

const std::vector<CatalogueRow>& catalogue();
const CatalogueRow* catalogue_row(const std::string& id);

}  // namespace tz::cli
