// The exact merge of partial attention results: see attention_partial.h.
#include "core/attention_partial.h"

#include <cmath>
#include <limits>

#include "core/copy.h"
#include "core/creation.h"

namespace tz::core {

AttentionForward attention_merge(const std::vector<AttentionForward>& parts) {
  TZ_CHECK(!parts.empty(), "attention_merge: no parts");
  const Tensor& o0 = parts[0].out;
  TZ_CHECK(o0.defined() && o0.dim() == 4, "attention_merge: expected out [B, H, T, D], got ",
           o0.defined() ? o0.shape() : Shape{});
  const Shape lse_shape{o0.size(0), o0.size(1), o0.size(2)};
  std::vector<Tensor> outs, lses;
  for (size_t c = 0; c < parts.size(); ++c) {
    const AttentionForward& p = parts[c];
    TZ_CHECK(p.out.defined() && p.lse.defined() && p.out.shape() == o0.shape() && p.lse.shape() == lse_shape &&
                 p.out.dtype() == o0.dtype() && p.lse.dtype() == o0.dtype(),
             "attention_merge: part ", c, " has out ", p.out.defined() ? p.out.shape() : Shape{}, " and lse ",
             p.lse.defined() ? p.lse.shape() : Shape{}, ", expected out ", o0.shape(), " and lse ", lse_shape, " (",
             dtype_name(o0.dtype()), ")");
    outs.push_back(contiguous(p.out));
    lses.push_back(contiguous(p.lse));
  }
  const int64_t rows = o0.size(0) * o0.size(1) * o0.size(2), D = o0.size(3);
  AttentionForward r{empty(o0.shape(), o0.dtype()), empty(lse_shape, o0.dtype())};
  TZ_DISPATCH_FLOAT(o0.dtype(), "attention_merge", [&]<class T>() {
    T* o = static_cast<T*>(r.out.raw_data());
    T* lse = static_cast<T*>(r.lse.raw_data());
    for (int64_t i = 0; i < rows; ++i) {
      // lse = m + log sum_c exp(lse_c - m), m the largest lse_c (-inf: no part saw a key).
      double m = -INFINITY;
      for (const Tensor& l : lses) m = std::max(m, double(static_cast<const T*>(l.raw_data())[i]));
      T* oi = o + i * D;
      std::fill(oi, oi + D, T(0));
      if (m == -INFINITY) {
        lse[i] = -std::numeric_limits<T>::infinity();
        continue;
      }
      double sum = 0;
      for (const Tensor& l : lses) sum += std::exp(double(static_cast<const T*>(l.raw_data())[i]) - m);
      const double total = m + std::log(sum);
      lse[i] = T(total);
      for (size_t c = 0; c < outs.size(); ++c) {
        const double w = std::exp(double(static_cast<const T*>(lses[c].raw_data())[i]) - total);
        if (w == 0) continue;  // also skips the o_c = 0 of a part that saw nothing
        const T* oc = static_cast<const T*>(outs[c].raw_data()) + i * D;
        for (int64_t d = 0; d < D; ++d) oi[d] += T(w * double(oc[d]));
      }
    }
  });
  return r;
}

AttentionForward attention_parts(const Tensor& q, const std::vector<AttentionPart>& parts) {
  TZ_CHECK(!parts.empty(), "attention_parts: no parts");
  std::vector<AttentionForward> fs;
  for (const AttentionPart& p : parts) {
    // A part's top k are not the union's: the selection cannot be merged.
    TZ_CHECK(p.spec.topk == 0, "attention_parts: top-k (topk = ", p.spec.topk, ") selects over all keys at once");
    fs.push_back(attention(q, p.k, p.v, p.spec));
  }
  return attention_merge(fs);
}

}  // namespace tz::core
