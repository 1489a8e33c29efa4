// Mask terms of the fused attention: see attention_mask.h (shape letters, semantics).
// Every classify is exact here except where a comment says it is conservative.
#include "core/kernels/attention_mask.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace tz::kernels {

// ---- WindowMask ---------------------------------------------------------------------------

WindowMask::WindowMask(int64_t w_) : w(w_) { TZ_CHECK(w >= 1, "WindowMask: window w must be >= 1, got ", w); }

// The tile's distances d = (q_offset + i) - j run from q_offset + i0 - (j1 - 1) (top right)
// to q_offset + (i1 - 1) - j0 (bottom left).
Tile WindowMask::classify(int64_t, int64_t, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t q_offset) const {
  if (q_offset + i1 - 1 - j0 < w) return Tile::visible;
  if (q_offset + i0 - (j1 - 1) >= w) return Tile::hidden;
  return Tile::partial;
}

void WindowMask::fill(int64_t, int64_t, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset, uint8_t* out,
                      int64_t ld) const {
  for (int64_t r = 0; r < ni; ++r) {
    // Hidden: j <= q_offset + i - w, i.e. the first `cut` keys of the tile.
    const int64_t cut = std::clamp<int64_t>(q_offset + i0 + r - w + 1 - j0, 0, nj);
    std::memset(out + r * ld, 0, size_t(cut));
    std::memset(out + r * ld + cut, 1, size_t(nj - cut));
  }
}

std::string WindowMask::describe() const { return cat_str("window(w=", w, ")"); }

// ---- SegmentMask --------------------------------------------------------------------------

SegmentMask::SegmentMask(int64_t L_, int64_t M_) : L(L_), M(M_) {
  TZ_CHECK(L >= 1 && M >= 0, "SegmentMask: expected segment length L >= 1 and memory M >= 0, got L ", L, ", M ", M);
}

// first_key(p) grows with p: the tile's first row has the lowest bound, its last the highest.
Tile SegmentMask::classify(int64_t, int64_t, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t q_offset) const {
  if (j0 >= first_key(q_offset + i1 - 1)) return Tile::visible;
  if (j1 - 1 < first_key(q_offset + i0)) return Tile::hidden;
  return Tile::partial;
}

void SegmentMask::fill(int64_t, int64_t, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset, uint8_t* out,
                       int64_t ld) const {
  for (int64_t r = 0; r < ni; ++r) {
    const int64_t cut = std::clamp<int64_t>(first_key(q_offset + i0 + r) - j0, 0, nj);
    std::memset(out + r * ld, 0, size_t(cut));
    std::memset(out + r * ld + cut, 1, size_t(nj - cut));
  }
}

std::string SegmentMask::describe() const { return cat_str("segments(L=", L, ", M=", M, ")"); }

// ---- KeyPaddingMask -----------------------------------------------------------------------

KeyPaddingMask::KeyPaddingMask(const int64_t* keep_, int64_t B_, int64_t S_) : keep(keep_), B(B_), S(S_) {
  TZ_CHECK(keep != nullptr && B >= 0 && S >= 0, "KeyPaddingMask: expected flags [B, S], got B ", B, ", S ", S,
           keep ? "" : " and no data");
}

Tile KeyPaddingMask::classify(int64_t b, int64_t, int64_t, int64_t, int64_t j0, int64_t j1, int64_t) const {
  const int64_t* k = keep + b * S;
  int64_t kept = 0;
  for (int64_t j = j0; j < j1; ++j) kept += k[j] != 0;
  return kept == j1 - j0 ? Tile::visible : kept == 0 ? Tile::hidden : Tile::partial;
}

void KeyPaddingMask::fill(int64_t b, int64_t, int64_t, int64_t ni, int64_t j0, int64_t nj, int64_t, uint8_t* out,
                          int64_t ld) const {
  const int64_t* k = keep + b * S + j0;
  for (int64_t c = 0; c < nj; ++c) out[c] = k[c] != 0;
  for (int64_t r = 1; r < ni; ++r) std::memcpy(out + r * ld, out, size_t(nj));
}

std::string KeyPaddingMask::describe() const { return cat_str("key_padding(B=", B, ", S=", S, ")"); }

void KeyPaddingMask::check(int64_t B_, int64_t, int64_t S_) const {
  TZ_CHECK(B_ == B && S_ == S, "attention: key padding flags are [", B, ", ", S, "] but the attention has B ", B_,
           ", S ", S_);
}

// ---- ForgottenKeysMask --------------------------------------------------------------------

ForgottenKeysMask::ForgottenKeysMask(const uint8_t* f, int64_t B_, int64_t S_) : f8(f), B(B_), S(S_) {
  TZ_CHECK(f != nullptr && B >= 0 && S >= 0, "ForgottenKeysMask: expected flags [B, S], got B ", B, ", S ", S,
           f ? "" : " and no data");
}
ForgottenKeysMask::ForgottenKeysMask(const int64_t* f, int64_t B_, int64_t S_) : f64(f), B(B_), S(S_) {
  TZ_CHECK(f != nullptr && B >= 0 && S >= 0, "ForgottenKeysMask: expected flags [B, S], got B ", B, ", S ", S,
           f ? "" : " and no data");
}

// A forgotten key j hides itself from the queries at positions p > j. The tile's positions
// are p0 = q_offset + i0 .. p1 = q_offset + i1 - 1.
Tile ForgottenKeysMask::classify(int64_t b, int64_t, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                                 int64_t q_offset) const {
  int64_t first = -1, count = 0;  // the first forgotten key of the tile, and how many
  for (int64_t j = j0; j < j1; ++j)
    if (forgotten(b, j)) {
      if (first < 0) first = j;
      ++count;
    }
  if (count == 0 || q_offset + i1 - 1 <= first) return Tile::visible;   // no query is past one
  if (count == j1 - j0 && q_offset + i0 > j1 - 1) return Tile::hidden;  // every query past every key
  return Tile::partial;
}

void ForgottenKeysMask::fill(int64_t b, int64_t, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset,
                             uint8_t* out, int64_t ld) const {
  for (int64_t r = 0; r < ni; ++r) {
    const int64_t p = q_offset + i0 + r;
    for (int64_t c = 0; c < nj; ++c) out[r * ld + c] = !(forgotten(b, j0 + c) && p > j0 + c);
  }
}

std::string ForgottenKeysMask::describe() const { return cat_str("forgotten_keys(B=", B, ", S=", S, ")"); }

void ForgottenKeysMask::check(int64_t B_, int64_t, int64_t S_) const {
  TZ_CHECK(B_ == B && S_ == S, "attention: forgotten-key flags are [", B, ", ", S, "] but the attention has B ", B_,
           ", S ", S_);
}

// ---- AttentionMask ------------------------------------------------------------------------

Tile AttentionMask::classify(int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                             int64_t q_offset) const {
  Tile t = Tile::visible;
  for (const auto& term : terms) {
    const Tile c = term->classify(b, h, i0, i1, j0, j1, q_offset);
    if (c == Tile::hidden) return Tile::hidden;
    if (c == Tile::partial) t = Tile::partial;
  }
  return t;
}

void AttentionMask::fill(int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset,
                         uint8_t* out, int64_t ld) const {
  if (terms.empty()) {
    for (int64_t r = 0; r < ni; ++r) std::memset(out + r * ld, 1, size_t(nj));
    return;
  }
  terms[0]->fill(b, h, i0, ni, j0, nj, q_offset, out, ld);
  if (terms.size() == 1) return;
  thread_local std::vector<uint8_t> other;  // one tile per thread, reused
  other.resize(size_t(ni * nj));
  for (size_t t = 1; t < terms.size(); ++t) {
    terms[t]->fill(b, h, i0, ni, j0, nj, q_offset, other.data(), nj);
    for (int64_t r = 0; r < ni; ++r)
      for (int64_t c = 0; c < nj; ++c) out[r * ld + c] &= other[size_t(r * nj + c)];
  }
}

std::string AttentionMask::describe() const {
  if (terms.empty()) return "none";
  std::string s;
  for (size_t t = 0; t < terms.size(); ++t) s += (t ? " & " : "") + terms[t]->describe();
  return s;
}

void AttentionMask::check(int64_t B, int64_t H, int64_t S) const {
  for (const auto& term : terms) {
    TZ_CHECK(term != nullptr, "attention: the mask holds a null term");
    term->check(B, H, S);
  }
}

}  // namespace tz::kernels
