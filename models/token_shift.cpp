#include "models/token_shift.h"

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/text.h"
#include "nn/registry.h"

namespace tz::models {

Tensor token_shift(const Tensor& u, int64_t s, Tensor* hist) {
  if (s == 0) return u;
  const int64_t B = u.size(0), T = u.size(1), C = u.size(2), cs = C / (s + 1);
  TZ_CHECK(cs >= 1, "token_shift: shift ", s, " needs at least ", s + 1, " channels, got ", C);
  Tensor prev = hist && hist->defined() ? *hist : zeros({B, s, C}, u.dtype());
  Tensor full = cat({prev, u}, 1);  // [B, s + T, C]: row r holds input t = r - s
  const int64_t c0 = C - s * cs;    // chunk 0 (unshifted) takes the remainder channels
  std::vector<Tensor> parts{u.narrow(2, 0, c0)};
  for (int64_t c = 1; c <= s; ++c) parts.push_back(full.narrow(1, s - c, T).narrow(2, c0 + (c - 1) * cs, cs));
  if (hist) *hist = full.narrow(1, T, s).contiguous();
  return cat(parts, 2);
}

std::vector<int64_t> token_shifts(const nn::Config& c, size_t blocks, int64_t dim) {
  std::vector<int64_t> shifts = c.get(kTokenShift);
  TZ_CHECK(shifts.size() == 1 || shifts.size() == blocks, c.source(), ": token_shift lists ", shifts.size(),
           " amounts for ", blocks, " blocks (give one, or one per block)");
  for (int64_t s : shifts)
    TZ_CHECK(s >= 0 && s < dim, c.source(), ": token_shift amounts must be in [0, dim), got ", s);
  if (shifts.size() == 1) shifts.assign(blocks, shifts[0]);
  return shifts;
}

}  // namespace tz::models

namespace tz::zoo {

void register_token_shift(nn::Registry& r) {
  r.add({.id = "token_shift",
         .summary = "Shift s of s+1 channel chunks by 1..s steps before every sublayer; step form keeps s inputs",
         .keys = {models::kTokenShift},
         .test_config = R"({"token_shift": [1, 2]})",
         .example = R"({"token_shift": 1})"});
}

}  // namespace tz::zoo
