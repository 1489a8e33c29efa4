// Indexing kernels: embedding, index_select, gather, scatter_add, forward and backward.
//
// Every kernel views its tensors as contiguous blocks [O, N, I] around the indexed dim:
//   O = product of the dims before it (outer), N = its size, I = product of the dims after
//   it (inner). The index picks M entries of that dim, so outputs are [O, M, I].
// For embedding: V = table rows, C = row width, N = number of ids.
// Indices are i64 and must already be checked to lie in [0, N) (the tensor layer does it).
// Backward kernels accumulate (+=). They are parallel only over independent output slices
// (o, and blocks of i), each summing its contributions in index order, so results do not
// depend on the thread count.
#pragma once

#include <cstdint>

namespace tz::kernels {

// out[o, m, i] = x[o, index[m], i]   (index: M entries)
template <class T>
void index_select_forward(T* out, const T* x, const int64_t* index, int64_t O, int64_t N, int64_t I, int64_t M);
template <class T>
void index_select_forward_ref(T* out, const T* x, const int64_t* index, int64_t O, int64_t N, int64_t I, int64_t M);
// dx[o, index[m], i] += dout[o, m, i]   (repeated indices accumulate)
template <class T>
void index_select_backward(T* dx, const T* dout, const int64_t* index, int64_t O, int64_t N, int64_t I, int64_t M);
template <class T>
void index_select_backward_ref(T* dx, const T* dout, const int64_t* index, int64_t O, int64_t N, int64_t I, int64_t M);

// out[n, c] = weight[ids[n], c]: weight [V, C], ids [N], out [N, C].
template <class T>
void embedding_forward(T* out, const T* weight, const int64_t* ids, int64_t N, int64_t V, int64_t C);
// dweight[ids[n], c] += dout[n, c]. Parallel over column blocks of C; each table row sums
// its ids in order n = 0, 1, ..., so the result is deterministic.
template <class T>
void embedding_backward(T* dweight, const T* dout, const int64_t* ids, int64_t N, int64_t V, int64_t C);

// out[o, m, i] = x[o, index[o, m, i], i]   (index, out: [O, M, I]; x: [O, N, I])
template <class T>
void gather_forward(T* out, const T* x, const int64_t* index, int64_t O, int64_t N, int64_t I, int64_t M);
template <class T>
void gather_forward_ref(T* out, const T* x, const int64_t* index, int64_t O, int64_t N, int64_t I, int64_t M);

// out[o, index[o, m, i], i] += src[o, m, i]   (out: [O, N, I]; index, src: [O, M, I])
// This is also gather's backward (out = dx, src = dout).
template <class T>
void scatter_add(T* out, const int64_t* index, const T* src, int64_t O, int64_t N, int64_t I, int64_t M);
template <class T>
void scatter_add_ref(T* out, const int64_t* index, const T* src, int64_t O, int64_t N, int64_t I, int64_t M);

// The first position p in [0, n) with index[p] outside [0, bound), or -1 if all are valid.
int64_t find_bad_index(const int64_t* index, int64_t n, int64_t bound);

}  // namespace tz::kernels
