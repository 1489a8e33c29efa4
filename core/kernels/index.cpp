// Indexing kernels (see index.h for the [O, N, I] / [O, M, I] layout letters).
//
// The fast versions differ from the references only in how work is split over threads:
// forward kernels split output rows (each written once); backward/scatter kernels split
// (o, block of i) pairs, which never collide, and walk m in order inside each pair.
#include "core/kernels/index.h"

#include <algorithm>
#include <cstring>

#include "core/parallel.h"

namespace tz::kernels {

namespace {
// Inner-dim block for the scatter kernels: large enough for long vector loops, small
// enough that rows of many (o, block) pairs exist to spread over threads.
constexpr int64_t kBlockI = 256;

// The inner block for O outer slices of I elements: kBlockI, or smaller (a multiple of 16)
// when O is too small to give every thread a few tasks (embedding's backward has O = 1).
// The block only splits work; each element's sum is the same for any block size.
int64_t inner_block(int64_t O, int64_t I) {
  const int64_t target = 4 * get_num_threads();
  if (O <= 0 || O >= target) return kBlockI;
  int64_t per = (target + O - 1) / O;  // blocks wanted per slice
  int64_t b = ((I + per - 1) / per + 15) / 16 * 16;
  return std::clamp<int64_t>(b, 16, kBlockI);
}
}  // namespace

int64_t find_bad_index(const int64_t* index, int64_t n, int64_t bound) {
  for (int64_t p = 0; p < n; ++p)
    if (index[p] < 0 || index[p] >= bound) return p;
  return -1;
}

// ---- index_select ---------------------------------------------------------------------

template <class T>
void index_select_forward_ref(T* out, const T* x, const int64_t* index, int64_t O, int64_t N, int64_t I, int64_t M) {
  for (int64_t o = 0; o < O; ++o)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t i = 0; i < I; ++i) out[(o * M + m) * I + i] = x[(o * N + index[m]) * I + i];
}

template <class T>
void index_select_forward(T* out, const T* x, const int64_t* index, int64_t O, int64_t N, int64_t I, int64_t M) {
  if (I == 0) return;
  // One task per output row (o, m): copy the I contiguous elements of row index[m].
  parallel_for(O * M, I, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t o = r / M, m = r % M;
      std::memcpy(out + r * I, x + (o * N + index[m]) * I, size_t(I) * sizeof(T));
    }
  });
}

template <class T>
void index_select_backward_ref(T* dx, const T* dout, const int64_t* index, int64_t O, int64_t N, int64_t I, int64_t M) {
  for (int64_t o = 0; o < O; ++o)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t i = 0; i < I; ++i) dx[(o * N + index[m]) * I + i] += dout[(o * M + m) * I + i];
}

template <class T>
void index_select_backward(T* dx, const T* dout, const int64_t* index, int64_t O, int64_t N, int64_t I, int64_t M) {
  const int64_t bi = inner_block(O, I), nb = (I + bi - 1) / bi;
  parallel_for(O * nb, M * std::min(I, bi), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t o = t / nb, i0 = (t % nb) * bi, i1 = std::min(I, i0 + bi);
      for (int64_t m = 0; m < M; ++m) {  // in index order: deterministic sums
        T* d = dx + (o * N + index[m]) * I;
        const T* g = dout + (o * M + m) * I;
        for (int64_t i = i0; i < i1; ++i) d[i] += g[i];
      }
    }
  });
}

// ---- embedding: index_select along dim 0 of the [V, C] table -------------------------------

template <class T>
void embedding_forward(T* out, const T* weight, const int64_t* ids, int64_t N, int64_t V, int64_t C) {
  index_select_forward(out, weight, ids, 1, V, C, N);
}

template <class T>
void embedding_backward(T* dweight, const T* dout, const int64_t* ids, int64_t N, int64_t V, int64_t C) {
  index_select_backward(dweight, dout, ids, 1, V, C, N);
}

// ---- gather / scatter_add ------------------------------------------------------------------

template <class T>
void gather_forward_ref(T* out, const T* x, const int64_t* index, int64_t O, int64_t N, int64_t I, int64_t M) {
  for (int64_t o = 0; o < O; ++o)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t i = 0; i < I; ++i) {
        int64_t p = (o * M + m) * I + i;
        out[p] = x[(o * N + index[p]) * I + i];
      }
}

template <class T>
void gather_forward(T* out, const T* x, const int64_t* index, int64_t O, int64_t N, int64_t I, int64_t M) {
  parallel_for(O * M, I, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xo = x + (r / M) * N * I;  // x[o, 0, 0]
      const int64_t* idx = index + r * I;
      T* y = out + r * I;
      for (int64_t i = 0; i < I; ++i) y[i] = xo[idx[i] * I + i];
    }
  });
}

template <class T>
void scatter_add_ref(T* out, const int64_t* index, const T* src, int64_t O, int64_t N, int64_t I, int64_t M) {
  for (int64_t o = 0; o < O; ++o)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t i = 0; i < I; ++i) {
        int64_t p = (o * M + m) * I + i;
        out[(o * N + index[p]) * I + i] += src[p];
      }
}

template <class T>
void scatter_add(T* out, const int64_t* index, const T* src, int64_t O, int64_t N, int64_t I, int64_t M) {
  const int64_t bi = inner_block(O, I), nb = (I + bi - 1) / bi;
  parallel_for(O * nb, M * std::min(I, bi), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t o = t / nb, i0 = (t % nb) * bi, i1 = std::min(I, i0 + bi);
      T* yo = out + o * N * I;           // out[o, 0, 0]
      for (int64_t m = 0; m < M; ++m) {  // in m order: deterministic sums
        const int64_t* idx = index + (o * M + m) * I;
        const T* s = src + (o * M + m) * I;
        for (int64_t i = i0; i < i1; ++i) yo[idx[i] * I + i] += s[i];
      }
    }
  });
}

// ---- instantiations ----------------------------------------------------------------------

#define TZ_INDEX_INSTANTIATE(T)                                                                                 \
  template void index_select_forward<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t);      \
  template void index_select_forward_ref<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t);  \
  template void index_select_backward<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t);     \
  template void index_select_backward_ref<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t); \
  template void embedding_forward<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t);                  \
  template void embedding_backward<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t);                 \
  template void gather_forward<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t);            \
  template void gather_forward_ref<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t);        \
  template void scatter_add<T>(T*, const int64_t*, const T*, int64_t, int64_t, int64_t, int64_t);               \
  template void scatter_add_ref<T>(T*, const int64_t*, const T*, int64_t, int64_t, int64_t, int64_t);
TZ_INDEX_INSTANTIATE(float)
TZ_INDEX_INSTANTIATE(double)
TZ_INDEX_INSTANTIATE(int64_t)
#undef TZ_INDEX_INSTANTIATE

}  // namespace tz::kernels
