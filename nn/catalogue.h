// The catalogue of variants to build (docs/catalogue.tsv, embedded in the library at build
// time): the definition of done of the zoo. The registry takes each id's family, kind and
// paper from its row; `tensorzoo list`, `info` and `coverage` read it.
#pragma once

#include <string>
#include <vector>

namespace tz::nn {

struct CatalogueRow {
  std::string id, name, family, kind, paper, seeds, core, proof;
  int tier = 0;
};

const std::vector<CatalogueRow>& catalogue();
const CatalogueRow* catalogue_row(const std::string& id);

}  // namespace tz::nn
