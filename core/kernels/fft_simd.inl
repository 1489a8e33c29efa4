// The power-of-two complex FFT in f32 (fft.cpp's radix-2 decimation in time: the bit-reversal
// permutation, then the butterfly passes), written once over a vector type V of complex pairs
// and included by fft_avx2.cpp (4 complex in a ymm) and fft_avx512.cpp (8 in a zmm).
//
// Pass h (h = 1, 2, 4, ..., n / 2) combines pairs (a, b) = (z[i + j], z[i + j + h]) with the
// twiddle w_j = e^{-2 pi i j / 2h} (conjugated for the inverse): a' = a + w b, b' = a - w b.
// The permutation and the first two passes, which need no products (w = 1, and w = 1, -i),
// run as one radix-4 pass in scalar code; passes with h below V::kComplex run the scalar
// butterflies; the others take V::kComplex butterflies at a time on interleaved (re, im) floats:
//   w b = fmaddsub(b, re(w) re(w), swap(b) im(w) im(w))   (re: br wr - bi wi, im: bi wr + br wi)
// The sums differ from the scalar path by the FMA's single rounding only.
//
// V provides: kComplex, type, load(p), store(p, v), add, sub, mul, fmaddsub(a, b, c) (a b - c
// in even lanes, a b + c in odd), dup_re(v), dup_im(v), swap(v) (re and im of each pair).

// The permutation fused with passes h = 1 and h = 2: z is copied aside once (in order), and
// each group of 4 outputs gathers its inputs from the copy at their bit-reversed places, so
// there are no swaps (whose scattered stores cost as much as all the butterflies at n 16k).
inline void first_two_passes(std::complex<float>* z, int64_t n, const int64_t* bitrev, bool inverse) {
  thread_local std::vector<std::complex<float>> copy;
  copy.assign(z, z + n);
  const std::complex<float>* x = copy.data();
  if (n == 2) {
    z[0] = x[0] + x[1];
    z[1] = x[0] - x[1];
    return;
  }
  // Passes h = 1 and h = 2 on each group of 4: w = 1, then w = 1 and w = -i (+i inverse).
  for (int64_t i = 0; i < n; i += 4) {
    const std::complex<float> a0 = x[bitrev[i]], a1 = x[bitrev[i + 1]], a2 = x[bitrev[i + 2]], a3 = x[bitrev[i + 3]];
    const std::complex<float> s0 = a0 + a1, d0 = a0 - a1;
    const std::complex<float> s1 = a2 + a3, d1 = a2 - a3;
    const std::complex<float> t = inverse ? std::complex<float>(-d1.imag(), d1.real())   // +i d1
                                          : std::complex<float>(d1.imag(), -d1.real());  // -i d1
    z[i] = s0 + s1;
    z[i + 2] = s0 - s1;
    z[i + 1] = d0 + t;
    z[i + 3] = d0 - t;
  }
}

void butterfly_passes(std::complex<float>* z, int64_t n, const std::complex<float>* twiddles, const int64_t* bitrev,
                      bool inverse) {
  using vec = typename V::type;
  if (n < 2) return;
  first_two_passes(z, n, bitrev, inverse);
  const float sign = inverse ? -1.0f : 1.0f;
  for (int64_t h = 4; h < n; h <<= 1) {
    const std::complex<float>* w = twiddles + (h - 1);
    if (h < V::kComplex) {
      for (int64_t i = 0; i < n; i += 2 * h)
        for (int64_t j = 0; j < h; ++j) {
          const std::complex<float> b = z[i + j + h], wj{w[j].real(), sign * w[j].imag()};
          const std::complex<float> t{b.real() * wj.real() - b.imag() * wj.imag(),
                                      b.real() * wj.imag() + b.imag() * wj.real()};
          z[i + j + h] = z[i + j] - t;
          z[i + j] = z[i + j] + t;
        }
      continue;
    }
    const vec s = V::sign_im(sign);
    for (int64_t i = 0; i < n; i += 2 * h) {
      float* a = reinterpret_cast<float*>(z + i);
      float* b = reinterpret_cast<float*>(z + i + h);
      for (int64_t j = 0; j < h; j += V::kComplex) {
        const vec wv = V::mul(V::load(reinterpret_cast<const float*>(w + j)), s);
        const vec bv = V::load(b + 2 * j), av = V::load(a + 2 * j);
        const vec t = V::fmaddsub(bv, V::dup_re(wv), V::mul(V::swap(bv), V::dup_im(wv)));
        V::store(a + 2 * j, V::add(av, t));
        V::store(b + 2 * j, V::sub(av, t));
      }
    }
  }
}
