// Convolutions as im2col in bounded row chunks + single-threaded OpenBLAS SGEMM per worker.
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "conv_dnnl.h"
#include "kernels.h"
#include "parallel.h"

namespace fj {
namespace {

float* Scratch(size_t floats) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < floats) buffer.resize(floats);
  return buffer.data();
}

bool Pointwise(const ConvGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.stride == 1 && g.padTop == 0 && g.padLeft == 0 &&
         g.outH == g.h && g.outW == g.w;
}

// Rows of im2col per chunk: about 1 MiB of columns, at least 64 rows.
int64_t ChunkRows(int64_t k) { return std::max<int64_t>(64, (int64_t{1} << 18) / std::max<int64_t>(k, 1)); }

// Rows [row0, row0 + rows) of the im2col matrix of x with c channels (row = output pixel,
// column = (a, b, channel)).
void Im2col(const float* x, int64_t c, const ConvGeometry& g, int64_t row0, int64_t rows, float* cols) {
  const int64_t k = g.kh * g.kw * c;
  for (int64_t r = 0; r < rows; r++) {
    const int64_t p = row0 + r;
    const int64_t n = p / (g.outH * g.outW);
    const int64_t rem = p % (g.outH * g.outW);
    const int64_t i = rem / g.outW;
    const int64_t j = rem % g.outW;
    float* dst = cols + r * k;
    for (int64_t a = 0; a < g.kh; a++) {
      const int64_t y = i * g.stride + a * g.dilation - g.padTop;
      for (int64_t b = 0; b < g.kw; b++) {
        const int64_t xx = j * g.stride + b * g.dilation - g.padLeft;
        float* d = dst + (a * g.kw + b) * c;
        if (y < 0 || y >= g.h || xx < 0 || xx >= g.w) {
          std::memset(d, 0, sizeof(float) * c);
        } else {
          const float* s = x + ((n * g.h + y) * g.w + xx) * c;
          if (c == 1) *d = *s;
          else std::memcpy(d, s, sizeof(float) * c);
        }
      }
    }
  }
}

}  // namespace

void ConvForward(int parts, const float* const* x, const float* const* w, const int64_t* channels, float* out,
                 const ConvGeometry& g) {
  if (DnnlConvForward(parts, x, w, channels, out, g)) return;
  const int64_t m = g.n * g.outH * g.outW;
  int64_t kMax = 0;
  double work = 0;
  for (int i = 0; i < parts; i++) {
    kMax = std::max(kMax, g.kh * g.kw * channels[i]);
    work += double(m) * g.kh * g.kw * channels[i] * g.o;
  }
  const int64_t chunk = ChunkRows(kMax);
  ParallelFor(m, work, [&](int, int64_t begin, int64_t end) {
    float* cols = nullptr;
    for (int64_t r0 = begin; r0 < end; r0 += chunk) {
      const int64_t rows = std::min(chunk, end - r0);
      for (int i = 0; i < parts; i++) {
        ConvGeometry gi = g;
        gi.c = channels[i];
        const int64_t k = g.kh * g.kw * gi.c;
        const float beta = i == 0 ? 0.f : 1.f;
        if (Pointwise(gi)) {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, g.o, k, 1.f, x[i] + r0 * k, k, w[i], g.o, beta,
                      out + r0 * g.o, g.o);
          continue;
        }
        if (!cols) cols = Scratch(static_cast<size_t>(std::min(chunk, end - begin) * kMax));
        Im2col(x[i], gi.c, gi, r0, rows, cols);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, g.o, k, 1.f, cols, k, w[i], g.o, beta,
                    out + r0 * g.o, g.o);
      }
    }
  });
}

void ConvFilterGrad(const float* x, const float* dy, float* dw, const ConvGeometry& g) {
  if (DnnlConvFilterGrad(x, dy, dw, g)) return;
  const int64_t m = g.n * g.outH * g.outW;
  const int64_t k = g.kh * g.kw * g.c;
  const int64_t chunk = ChunkRows(k);
  std::vector<std::vector<float>> partial(static_cast<size_t>(Threads()));
  const int used = ParallelFor(m, double(m) * k * g.o, [&](int t, int64_t begin, int64_t end) {
    float* target = dw;
    if (t > 0) {
      partial[t].assign(static_cast<size_t>(k * g.o), 0.f);
      target = partial[t].data();
    }
    if (Pointwise(g)) {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, g.o, end - begin, 1.f, x + begin * k, k,
                  dy + begin * g.o, g.o, 0.f, target, g.o);
      return;
    }
    float* cols = Scratch(static_cast<size_t>(std::min(chunk, end - begin) * k));
    for (int64_t r0 = begin; r0 < end; r0 += chunk) {
      const int64_t rows = std::min(chunk, end - r0);
      Im2col(x, g.c, g, r0, rows, cols);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, g.o, rows, 1.f, cols, k, dy + r0 * g.o, g.o,
                  r0 == begin ? 0.f : 1.f, target, g.o);
    }
  });
  if (used == 0) std::memset(dw, 0, sizeof(float) * static_cast<size_t>(k * g.o));
  for (int t = 1; t < used; t++) {
    const float* p = partial[t].data();
    for (int64_t i = 0; i < k * g.o; i++) dw[i] += p[i];
  }
}

void ConvInputGrad(const float* dy, const float* w, float* dx, const ConvGeometry& g) {
  if (DnnlConvInputGrad(dy, w, dx, g)) return;
  const int64_t k = g.kh * g.kw * g.c;
  const int64_t perImage = g.outH * g.outW;
  const int64_t chunk = ChunkRows(k);
  ParallelFor(g.n, double(g.n) * perImage * k * g.o, [&](int, int64_t n0, int64_t n1) {
    const int64_t begin = n0 * perImage, end = n1 * perImage;
    if (Pointwise(g)) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, end - begin, k, g.o, 1.f, dy + begin * g.o, g.o, w, g.o,
                  0.f, dx + begin * k, k);
      return;
    }
    std::memset(dx + n0 * g.h * g.w * g.c, 0, sizeof(float) * static_cast<size_t>((n1 - n0) * g.h * g.w * g.c));
    float* cols = Scratch(static_cast<size_t>(std::min(chunk, end - begin) * k));
    for (int64_t r0 = begin; r0 < end; r0 += chunk) {
      const int64_t rows = std::min(chunk, end - r0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, k, g.o, 1.f, dy + r0 * g.o, g.o, w, g.o, 0.f, cols, k);
      for (int64_t r = 0; r < rows; r++) {
        const int64_t p = r0 + r;
        const int64_t n = p / perImage;
        const int64_t rem = p % perImage;
        const int64_t i = rem / g.outW;
        const int64_t j = rem % g.outW;
        const float* src = cols + r * k;
        for (int64_t a = 0; a < g.kh; a++) {
          const int64_t y = i * g.stride + a * g.dilation - g.padTop;
          if (y < 0 || y >= g.h) continue;
          for (int64_t b = 0; b < g.kw; b++) {
            const int64_t xx = j * g.stride + b * g.dilation - g.padLeft;
            if (xx < 0 || xx >= g.w) continue;
            float* d = dx + ((n * g.h + y) * g.w + xx) * g.c;
            const float* s = src + (a * g.kw + b) * g.c;
            for (int64_t ch = 0; ch < g.c; ch++) d[ch] += s[ch];
          }
        }
      }
    }
  });
}

}  // namespace fj
