#include "nn/catalogue.h"

#include <sstream>

#include "core/error.h"

namespace tz::nn {

extern const char* const kCatalogueTsv;  // generated from docs/catalogue.tsv

const std::vector<CatalogueRow>& catalogue() {
  static const std::vector<CatalogueRow> rows = [] {
    std::vector<CatalogueRow> out;
    std::istringstream in(kCatalogueTsv);
    std::string line;
    std::getline(in, line);  // header: id name family kind paper seeds core proof tier
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      std::vector<std::string> f;
      std::stringstream ss(line);
      std::string field;
      while (std::getline(ss, field, '\t')) f.push_back(field);
      TZ_CHECK(f.size() == 9, "catalogue: a row has ", f.size(), " fields, expected 9: ", line.substr(0, 60));
      out.push_back({f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], std::stoi(f[8])});
    }
    return out;
  }();
  return rows;
}

const CatalogueRow* catalogue_row(const std::string& id) {
  for (const auto& r : catalogue())
    if (r.id == id) return &r;
  return nullptr;
}

}  // namespace tz::nn
