// selective_scan_simd.inl: the selective scan's fast forms on one block of up to 16 channels
// (the task of selective_scan_forward / selective_scan_backward in selective_scan.cpp), over
// a vector type V of V::W f32 lanes. Included by selective_scan_avx2.cpp (W = 8) and
// selective_scan_avx512.cpp (W = 16) inside their namespace, after V. Formulas in scan.h.
//
// Layout: the block's state, A, and the backward's per-step buffers are [N][16], the block's
// channels in the lanes (zero past d1). The recurrence, y = C.h and the backward's sums over
// N are then plain vector ops, 8 or 16 channels at a time, with no horizontal sums; only dB_t
// and dC_t, sums over the block's channels, need one, done 16 rows at a time
// (V::add_row_sums16). Padded lanes read delta = u = 0 (Abar = 1, no input, dy = 0) and are
// never stored. The backward keeps each recomputed step's Abar beside its state, so the
// reverse walk takes no exponential.

namespace {
constexpr int64_t kLanes = 16;  // channels per block, one row of the [N][16] buffers
constexpr int kVecs = int(kLanes / V::W);
using Vec = V::vec;

// [nd][N] rows, as the tensors hold a block's states, <-> the [N][16] lane layout
void to_lanes(float* dst, const float* src, int64_t nd, int64_t N) {
  for (int64_t k = 0; k < N; ++k)
    for (int64_t i = 0; i < kLanes; ++i) dst[k * kLanes + i] = i < nd ? src[i * N + k] : 0.0f;
}
void from_lanes(float* dst, const float* src, int64_t nd, int64_t N) {
  for (int64_t i = 0; i < nd; ++i)
    for (int64_t k = 0; k < N; ++k) dst[i * N + k] = src[k * kLanes + i];
}

// dst[k] += the sum of row k's 16 lanes, rows [N][16]
void add_row_sums(float* dst, const float* rows, int64_t N) {
  int64_t k = 0;
  for (; k + 16 <= N; k += 16) V::add_row_sums16(dst + k, rows + k * kLanes);
  for (; k < N; ++k) {
    float s = 0.0f;
    for (int64_t i = 0; i < kLanes; ++i) s += rows[k * kLanes + i];
    dst[k] += s;
  }
}

Vec sigmoid(Vec x) { return V::div(V::set1(1.0f), V::add(V::set1(1.0f), V::exp(V::sub(V::zero(), x)))); }

struct Lanes {  // the masks of the block's vectors and how many hold channels
  typename V::mask m[kVecs];
  int count;
  explicit Lanes(int64_t nd) : count(int((nd + V::W - 1) / V::W)) {
    for (int v = 0; v < kVecs; ++v) m[v] = V::mask_n(nd - int64_t(v) * V::W);
  }
};
}  // namespace

void selective_forward_block(float* out, int64_t out_bstride, float* hT, float* ckpt, const float* h0,
                             const SelectiveScanInputs& in, const SelectiveScanArgs& n, SelectiveBlock blk) {
  const int64_t T = n.T, D = n.D, N = n.N, L = std::max<int64_t>(1, n.chunk), nc = (T + L - 1) / L;
  const int64_t b = blk.b, d0 = blk.d0, nd = blk.d1 - blk.d0;
  auto buf = std::make_unique_for_overwrite<float[]>(size_t(2 * N * kLanes));
  float *h = buf.get(), *At = h + N * kLanes;
  to_lanes(At, in.A + d0 * N, nd, N);
  if (h0)
    to_lanes(h, h0 + (b * D + d0) * N, nd, N);
  else
    std::fill(h, h + N * kLanes, 0.0f);
  const Lanes ln(nd);
  for (int64_t t = 0; t < T; ++t) {
    if (ckpt && t % L == 0) from_lanes(ckpt + ((b * nc + t / L) * D + d0) * N, h, nd, N);
    const int64_t r = (b * T + t) * D + d0;
    const float *Bt = in.Bm + (b * T + t) * N, *Ct = in.Cm + (b * T + t) * N;
    for (int v = 0; v < ln.count; ++v) {
      const int64_t o = int64_t(v) * V::W;
      const Vec dt = V::load_m(in.delta + r + o, ln.m[v]), x = V::load_m(in.u + r + o, ln.m[v]);
      const Vec dtx = V::mul(dt, x);
      Vec y[2] = {V::zero(), V::zero()};  // two chains: the sum over N is not one long dependency
      for (int64_t k = 0; k < N; ++k) {
        float* hk = h + k * kLanes + o;
        const Vec abar = V::exp(V::mul(dt, V::load(At + k * kLanes + o)));
        const Vec hv = V::fma(abar, V::load(hk), V::mul(dtx, V::set1(Bt[k])));
        V::store(hk, hv);
        y[k & 1] = V::fma(V::set1(Ct[k]), hv, y[k & 1]);
      }
      Vec yv = V::add(y[0], y[1]);
      if (in.Dskip) yv = V::fma(V::load_m(in.Dskip + d0 + o, ln.m[v]), x, yv);
      if (in.z) {
        const Vec zz = V::load_m(in.z + r + o, ln.m[v]);
        yv = V::mul(yv, V::mul(zz, sigmoid(zz)));
      }
      V::store_m(out + b * out_bstride + t * D + d0 + o, yv, ln.m[v]);
    }
  }
  from_lanes(hT + (b * D + d0) * N, h, nd, N);
}

void selective_backward_block(const SelectiveScanGrads& gr, const SelectiveBlockGrads& acc, const float* g,
                              int64_t g_bstride, const float* ghT, const float* ckpt, const SelectiveScanInputs& in,
                              const SelectiveScanArgs& n, SelectiveBlock blk) {
  const int64_t T = n.T, D = n.D, N = n.N, L = std::max<int64_t>(1, n.chunk), nc = (T + L - 1) / L;
  const int64_t b = blk.b, d0 = blk.d0, nd = blk.d1 - blk.d0, row = N * kLanes;
  // At, dh, dA, the products summed into dB_t and dC_t, then a chunk's states h_{t0-1}..h_{t1-1}
  // and its steps' Abar
  auto buf = std::make_unique_for_overwrite<float[]>(size_t(5 * row + (2 * L + 1) * row));
  float *At = buf.get(), *dh = At + row, *dA = dh + row, *pB = dA + row, *pC = pB + row, *hs = pC + row,
        *abar = hs + (L + 1) * row;
  to_lanes(At, in.A + d0 * N, nd, N);
  if (ghT)
    to_lanes(dh, ghT + (b * D + d0) * N, nd, N);
  else
    std::fill(dh, dh + row, 0.0f);
  std::fill(dA, dA + 3 * row, 0.0f);  // dA, and pB, pC's lanes past the block's vectors
  const Lanes ln(nd);
  Vec dDskip[kVecs], Dv[kVecs];
  for (int v = 0; v < kVecs; ++v) {
    dDskip[v] = V::zero();
    Dv[v] = in.Dskip ? V::load_m(in.Dskip + d0 + int64_t(v) * V::W, ln.m[v]) : V::zero();
  }
  auto out_m = [&](void* p, int64_t i, Vec x, int v) {
    if (p) V::store_m(static_cast<float*>(p) + i, x, ln.m[v]);
  };
  for (int64_t c = nc - 1; c >= 0; --c) {
    const int64_t t0 = c * L, t1 = std::min(T, t0 + L);
    to_lanes(hs, ckpt + ((b * nc + c) * D + d0) * N, nd, N);
    for (int64_t t = t0; t < t1; ++t) {  // recompute the chunk's states from the saved one
      const int64_t r = (b * T + t) * D + d0;
      const float* Bt = in.Bm + (b * T + t) * N;
      const float* prev = hs + (t - t0) * row;
      float *next = hs + (t - t0 + 1) * row, *ab = abar + (t - t0) * row;
      for (int v = 0; v < ln.count; ++v) {
        const int64_t o = int64_t(v) * V::W;
        const Vec dt = V::load_m(in.delta + r + o, ln.m[v]);
        const Vec dtx = V::mul(dt, V::load_m(in.u + r + o, ln.m[v]));
        for (int64_t k = 0; k < N; ++k) {
          const int64_t i = k * kLanes + o;
          const Vec a = V::exp(V::mul(dt, V::load(At + i)));
          V::store(ab + i, a);
          V::store(next + i, V::fma(a, V::load(prev + i), V::mul(dtx, V::set1(Bt[k]))));
        }
      }
    }
    for (int64_t t = t1 - 1; t >= t0; --t) {  // and walk it in reverse
      const int64_t r = (b * T + t) * D + d0;
      const float *Bt = in.Bm + (b * T + t) * N, *Ct = in.Cm + (b * T + t) * N;
      const float *hn = hs + (t - t0 + 1) * row, *hp = hs + (t - t0) * row, *ab = abar + (t - t0) * row;
      for (int v = 0; v < ln.count; ++v) {
        const int64_t o = int64_t(v) * V::W;
        const Vec dt = V::load_m(in.delta + r + o, ln.m[v]), x = V::load_m(in.u + r + o, ln.m[v]);
        Vec dy = V::load_m(g + b * g_bstride + t * D + d0 + o, ln.m[v]);
        if (in.z) {  // out = y silu(z), y = C.h + Dskip x
          Vec y = V::mul(Dv[v], x);
          for (int64_t k = 0; k < N; ++k) y = V::fma(V::set1(Ct[k]), V::load(hn + k * kLanes + o), y);
          const Vec zz = V::load_m(in.z + r + o, ln.m[v]), s = sigmoid(zz), one = V::set1(1.0f);
          const Vec dsilu = V::mul(s, V::fma(zz, V::sub(one, s), one));  // d(z sigmoid(z))/dz
          out_m(gr.dz, r + o, V::mul(V::mul(dy, y), dsilu), v);
          dy = V::mul(dy, V::mul(zz, s));
        }
        dDskip[v] = V::fma(dy, x, dDskip[v]);
        const Vec dtx = V::mul(dt, x);
        Vec dd[2] = {V::zero(), V::zero()}, sB[2] = {V::zero(), V::zero()};  // sB = sum_k dh_k B_k
        for (int64_t k = 0; k < N; ++k) {
          const int64_t i = k * kLanes + o;
          const Vec a = V::load(ab + i);
          V::store(pC + i, V::mul(dy, V::load(hn + i)));
          const Vec dhk = V::fma(dy, V::set1(Ct[k]), V::load(dh + i));
          const Vec dAbar = V::mul(V::mul(dhk, V::load(hp + i)), a);
          dd[k & 1] = V::fma(dAbar, V::load(At + i), dd[k & 1]);
          V::store(dA + i, V::fma(dAbar, dt, V::load(dA + i)));
          V::store(pB + i, V::mul(dhk, dtx));
          sB[k & 1] = V::fma(dhk, V::set1(Bt[k]), sB[k & 1]);
          V::store(dh + i, V::mul(dhk, a));
        }
        const Vec s = V::add(sB[0], sB[1]);
        out_m(gr.ddelta, r + o, V::fma(s, x, V::add(dd[0], dd[1])), v);
        out_m(gr.du, r + o, V::fma(s, dt, V::mul(dy, Dv[v])), v);
      }
      add_row_sums(acc.dBm + t * N, pB, N);
      add_row_sums(acc.dCm + t * N, pC, N);
    }
  }
  from_lanes(acc.dA, dA, nd, N);
  for (int v = 0; v < ln.count && in.Dskip; ++v) V::store_m(acc.dDskip + int64_t(v) * V::W, dDskip[v], ln.m[v]);
  if (gr.dh0) from_lanes(static_cast<float*>(gr.dh0) + (b * D + d0) * N, dh, nd, N);
}
