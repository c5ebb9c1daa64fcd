// Element-wise kernels: broadcasting binary ops, unary ops, AddN, reductions over a contiguous
// block of axes, non-overlapping pooling, nearest-neighbour resize (as a gather) and Adam.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels.h"
#include "parallel.h"

namespace fj {
namespace {

template <typename Op>
void BinaryLoop(Op op, const float* a, const float* b, float* out, int rank, const int64_t* shape,
                const int64_t* as, const int64_t* bs) {
  const int64_t inner = shape[rank - 1];
  const int64_t sa = as[rank - 1], sb = bs[rank - 1];
  int64_t outer = 1;
  for (int d = 0; d < rank - 1; d++) outer *= shape[d];
  const double work = double(outer) * inner;
  ParallelFor(outer, work, [&](int, int64_t begin, int64_t end) {
    int64_t idx[8] = {0};
    // Multi-index of row `begin` over the outer dims.
    int64_t rem = begin;
    for (int d = rank - 2; d >= 0; d--) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
    }
    for (int64_t row = begin; row < end; row++) {
      int64_t oa = 0, ob = 0;
      for (int d = 0; d < rank - 1; d++) {
        oa += idx[d] * as[d];
        ob += idx[d] * bs[d];
      }
      const float* pa = a + oa;
      const float* pb = b + ob;
      float* po = out + row * inner;
      if (sa == 1 && sb == 1) {
        for (int64_t i = 0; i < inner; i++) po[i] = op(pa[i], pb[i]);
      } else if (sa == 1) {
        const float vb = pb[0];
        for (int64_t i = 0; i < inner; i++) po[i] = op(pa[i], vb);
      } else if (sb == 1) {
        const float va = pa[0];
        for (int64_t i = 0; i < inner; i++) po[i] = op(va, pb[i]);
      } else {
        const float v = op(pa[0], pb[0]);
        for (int64_t i = 0; i < inner; i++) po[i] = v;
      }
      for (int d = rank - 2; d >= 0; d--) {
        if (++idx[d] < shape[d]) break;
        idx[d] = 0;
      }
    }
  });
}

}  // namespace

void BinaryOp(Binary op, const float* a, const float* b, float* out, int rank, const int64_t* shapeIn,
              const int64_t* aIn, const int64_t* bIn) {
  // Collapse adjacent dimensions that both inputs traverse the same way (contiguous or broadcast).
  int64_t shape[8], as[8], bs[8];
  int r = 0;
  for (int d = 0; d < rank; d++) {
    if (shapeIn[d] == 1) continue;
    if (r > 0) {
      const bool aMerge = (as[r - 1] == 0 && aIn[d] == 0) || (as[r - 1] == aIn[d] * shapeIn[d] && aIn[d] != 0);
      const bool bMerge = (bs[r - 1] == 0 && bIn[d] == 0) || (bs[r - 1] == bIn[d] * shapeIn[d] && bIn[d] != 0);
      if (aMerge && bMerge) {
        shape[r - 1] *= shapeIn[d];
        as[r - 1] = aIn[d];
        bs[r - 1] = bIn[d];
        continue;
      }
    }
    shape[r] = shapeIn[d];
    as[r] = aIn[d];
    bs[r] = bIn[d];
    r++;
  }
  if (r == 0) {
    shape[0] = 1;
    as[0] = bs[0] = 0;
    r = 1;
  }
  // The innermost loop needs unit or zero strides; otherwise add a trailing unit dimension.
  if ((as[r - 1] != 0 && as[r - 1] != 1) || (bs[r - 1] != 0 && bs[r - 1] != 1)) {
    shape[r] = 1;
    as[r] = bs[r] = 0;
    r++;
  }
  switch (op) {
    case Binary::Add: return BinaryLoop([](float x, float y) { return x + y; }, a, b, out, r, shape, as, bs);
    case Binary::Sub: return BinaryLoop([](float x, float y) { return x - y; }, a, b, out, r, shape, as, bs);
    case Binary::Mul: return BinaryLoop([](float x, float y) { return x * y; }, a, b, out, r, shape, as, bs);
    case Binary::Div: return BinaryLoop([](float x, float y) { return x / y; }, a, b, out, r, shape, as, bs);
    case Binary::Maximum:
      return BinaryLoop([](float x, float y) { return (x != x || y != y) ? NAN : std::max(x, y); }, a, b, out, r,
                        shape, as, bs);
    case Binary::Minimum:
      return BinaryLoop([](float x, float y) { return (x != x || y != y) ? NAN : std::min(x, y); }, a, b, out, r,
                        shape, as, bs);
    case Binary::SquaredDifference:
      return BinaryLoop([](float x, float y) { return (x - y) * (x - y); }, a, b, out, r, shape, as, bs);
  }
}

namespace {
template <typename Op>
void UnaryLoop(Op op, const float* x, float* out, int64_t size) {
  ParallelFor(size, double(size), [&](int, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) out[i] = op(x[i]);
  });
}
}  // namespace

void UnaryOp(Unary op, const float* x, float* out, int64_t size, float alpha) {
  switch (op) {
    case Unary::Relu: return UnaryLoop([](float v) { return v < 0.f ? 0.f : v; }, x, out, size);
    case Unary::Step:
      return UnaryLoop([alpha](float v) { return v > 0.f ? 1.f : (v != v ? v : alpha); }, x, out, size);
    case Unary::Sigmoid: return UnaryLoop([](float v) { return 1.f / (1.f + std::exp(-v)); }, x, out, size);
    case Unary::Exp: return UnaryLoop([](float v) { return std::exp(v); }, x, out, size);
    case Unary::Log: return UnaryLoop([](float v) { return std::log(v); }, x, out, size);
    case Unary::Neg: return UnaryLoop([](float v) { return -v; }, x, out, size);
    case Unary::Square: return UnaryLoop([](float v) { return v * v; }, x, out, size);
    case Unary::Sqrt: return UnaryLoop([](float v) { return std::sqrt(v); }, x, out, size);
    case Unary::Rsqrt: return UnaryLoop([](float v) { return 1.f / std::sqrt(v); }, x, out, size);
    case Unary::Abs: return UnaryLoop([](float v) { return std::fabs(v); }, x, out, size);
    case Unary::Tanh: return UnaryLoop([](float v) { return std::tanh(v); }, x, out, size);
    case Unary::Reciprocal: return UnaryLoop([](float v) { return 1.f / v; }, x, out, size);
  }
}

void AddN(int parts, const float* const* in, float* out, int64_t size) {
  ParallelFor(size, double(size) * parts, [&](int, int64_t b, int64_t e) {
    std::memcpy(out + b, in[0] + b, sizeof(float) * static_cast<size_t>(e - b));
    for (int p = 1; p < parts; p++) {
      const float* s = in[p];
      for (int64_t i = b; i < e; i++) out[i] += s[i];
    }
  });
}

void ReduceOp(Reduce op, const float* x, float* out, int64_t outer, int64_t reduce, int64_t inner) {
  const double work = double(outer) * reduce * inner;
  const bool isSum = op == Reduce::Sum || op == Reduce::Mean;
  const double scale = op == Reduce::Mean ? 1.0 / double(std::max<int64_t>(reduce, 1)) : 1.0;
  if (inner == 1) {
    // Row reductions: parallel over rows, or over chunks of the one row.
    if (outer >= 2 * Threads() || outer * 64 > reduce) {
      ParallelFor(outer, work, [&](int, int64_t b, int64_t e) {
        for (int64_t o = b; o < e; o++) {
          const float* row = x + o * reduce;
          if (isSum) {
            double s = 0;
            for (int64_t r = 0; r < reduce; r++) s += row[r];
            out[o] = static_cast<float>(s * scale);
          } else {
            float v = row[0];
            for (int64_t r = 1; r < reduce; r++) {
              const float u = row[r];
              if (u != u) { v = u; break; }
              v = op == Reduce::Max ? std::max(v, u) : std::min(v, u);
            }
            out[o] = v;
          }
        }
      });
      return;
    }
    for (int64_t o = 0; o < outer; o++) {
      const float* row = x + o * reduce;
      std::vector<double> part(static_cast<size_t>(Threads()), 0.0);
      std::vector<float> best(static_cast<size_t>(Threads()), row[0]);
      const int used = ParallelFor(reduce, double(reduce), [&](int t, int64_t b, int64_t e) {
        if (isSum) {
          double s = 0;
          for (int64_t r = b; r < e; r++) s += row[r];
          part[t] = s;
        } else {
          float v = row[b];
          for (int64_t r = b + 1; r < e; r++) {
            const float u = row[r];
            if (u != u) { v = u; break; }
            v = op == Reduce::Max ? std::max(v, u) : std::min(v, u);
          }
          best[t] = v;
        }
      });
      if (isSum) {
        double s = 0;
        for (int t = 0; t < used; t++) s += part[t];
        out[o] = static_cast<float>(s * scale);
      } else {
        float v = best[0];
        for (int t = 1; t < used; t++) {
          if (best[t] != best[t]) { v = best[t]; break; }
          v = op == Reduce::Max ? std::max(v, best[t]) : std::min(v, best[t]);
        }
        out[o] = v;
      }
    }
    return;
  }
  // Column reductions: out[o, i] = reduce_r x[o, r, i]; threads split the reduced rows.
  for (int64_t o = 0; o < outer; o++) {
    const float* block = x + o * reduce * inner;
    const int threads = Threads();
    std::vector<std::vector<double>> sums(static_cast<size_t>(threads));
    std::vector<std::vector<float>> best(static_cast<size_t>(threads));
    const int used = ParallelFor(reduce, double(reduce) * inner, [&](int t, int64_t b, int64_t e) {
      if (isSum) {
        auto& s = sums[t];
        s.assign(static_cast<size_t>(inner), 0.0);
        for (int64_t r = b; r < e; r++) {
          const float* row = block + r * inner;
          for (int64_t i = 0; i < inner; i++) s[i] += row[i];
        }
      } else {
        auto& v = best[t];
        v.assign(block + b * inner, block + (b + 1) * inner);
        for (int64_t r = b + 1; r < e; r++) {
          const float* row = block + r * inner;
          for (int64_t i = 0; i < inner; i++) {
            const float u = row[i];
            if (v[i] != v[i]) continue;
            v[i] = u != u ? u : (op == Reduce::Max ? std::max(v[i], u) : std::min(v[i], u));
          }
        }
      }
    });
    float* dst = out + o * inner;
    for (int64_t i = 0; i < inner; i++) {
      if (isSum) {
        double s = 0;
        for (int t = 0; t < used; t++) s += sums[t][i];
        dst[i] = static_cast<float>(s * scale);
      } else {
        float v = best[0][i];
        for (int t = 1; t < used; t++) {
          const float u = best[t][i];
          if (v != v) break;
          v = u != u ? u : (op == Reduce::Max ? std::max(v, u) : std::min(v, u));
        }
        dst[i] = v;
      }
    }
  }
  (void)work;
}

void MaxPool(const float* x, float* out, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw) {
  const int64_t oh = h / kh, ow = w / kw;
  ParallelFor(n * oh, double(n) * h * w * c, [&](int, int64_t b, int64_t e) {
    for (int64_t row = b; row < e; row++) {
      const int64_t bi = row / oh, i = row % oh;
      for (int64_t j = 0; j < ow; j++) {
        float* o = out + ((bi * oh + i) * ow + j) * c;
        const float* first = x + ((bi * h + i * kh) * w + j * kw) * c;
        std::memcpy(o, first, sizeof(float) * c);
        for (int64_t a = 0; a < kh; a++) {
          for (int64_t q = 0; q < kw; q++) {
            if (a == 0 && q == 0) continue;
            const float* s = x + ((bi * h + i * kh + a) * w + j * kw + q) * c;
            for (int64_t ch = 0; ch < c; ch++) {
              if (s[ch] > o[ch]) o[ch] = s[ch];
            }
          }
        }
      }
    }
  });
}

void AvgPool(const float* x, float* out, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw) {
  const int64_t oh = h / kh, ow = w / kw;
  if (oh == 1 && ow == 1 && kh * kw > 64) {
    // A full-window mean (per image and channel): a column reduction.
    for (int64_t bi = 0; bi < n; bi++) ReduceOp(Reduce::Mean, x + bi * h * w * c, out + bi * c, 1, h * w, c);
    return;
  }
  const float scale = 1.f / float(kh * kw);
  ParallelFor(n * oh, double(n) * h * w * c, [&](int, int64_t b, int64_t e) {
    std::vector<float> acc(static_cast<size_t>(c));
    for (int64_t row = b; row < e; row++) {
      const int64_t bi = row / oh, i = row % oh;
      for (int64_t j = 0; j < ow; j++) {
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t a = 0; a < kh; a++) {
          for (int64_t q = 0; q < kw; q++) {
            const float* s = x + ((bi * h + i * kh + a) * w + j * kw + q) * c;
            for (int64_t ch = 0; ch < c; ch++) acc[ch] += s[ch];
          }
        }
        float* o = out + ((bi * oh + i) * ow + j) * c;
        for (int64_t ch = 0; ch < c; ch++) o[ch] = acc[ch] * scale;
      }
    }
  });
}

void MaxPoolGrad(const float* x, const float* dy, float* dx, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh,
                 int64_t kw) {
  const int64_t oh = h / kh, ow = w / kw;
  std::memset(dx, 0, sizeof(float) * static_cast<size_t>(n * h * w * c));
  ParallelFor(n * oh, double(n) * h * w * c, [&](int, int64_t b, int64_t e) {
    for (int64_t row = b; row < e; row++) {
      const int64_t bi = row / oh, i = row % oh;
      for (int64_t j = 0; j < ow; j++) {
        const float* g = dy + ((bi * oh + i) * ow + j) * c;
        for (int64_t ch = 0; ch < c; ch++) {
          int64_t best = ((bi * h + i * kh) * w + j * kw) * c + ch;
          float v = x[best];
          for (int64_t a = 0; a < kh; a++) {
            for (int64_t q = 0; q < kw; q++) {
              const int64_t at = ((bi * h + i * kh + a) * w + j * kw + q) * c + ch;
              if (x[at] > v) {
                v = x[at];
                best = at;
              }
            }
          }
          dx[best] += g[ch];
        }
      }
    }
  });
}

void AvgPoolGrad(const float* dy, float* dx, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw) {
  const int64_t oh = h / kh, ow = w / kw;
  const float scale = 1.f / float(kh * kw);
  std::memset(dx, 0, sizeof(float) * static_cast<size_t>(n * h * w * c));
  ParallelFor(n * oh, double(n) * h * w * c, [&](int, int64_t b, int64_t e) {
    for (int64_t row = b; row < e; row++) {
      const int64_t bi = row / oh, i = row % oh;
      for (int64_t j = 0; j < ow; j++) {
        const float* g = dy + ((bi * oh + i) * ow + j) * c;
        for (int64_t a = 0; a < kh; a++) {
          for (int64_t q = 0; q < kw; q++) {
            float* d = dx + ((bi * h + i * kh + a) * w + j * kw + q) * c;
            for (int64_t ch = 0; ch < c; ch++) d[ch] = g[ch] * scale;
          }
        }
      }
    }
  });
}

void GatherResize(const float* x, float* out, int64_t n, int64_t h, int64_t w, int64_t c, int64_t outH,
                  int64_t outW, const int32_t* rows, const int32_t* cols) {
  ParallelFor(n * outH, double(n) * outH * outW * c, [&](int, int64_t b, int64_t e) {
    for (int64_t row = b; row < e; row++) {
      const int64_t bi = row / outH, i = row % outH;
      const float* src = x + (bi * h + rows[i]) * w * c;
      float* dst = out + row * outW * c;
      for (int64_t j = 0; j < outW; j++) std::memcpy(dst + j * c, src + int64_t(cols[j]) * c, sizeof(float) * c);
    }
  });
}

void CopyBox(const float* src, const int64_t* srcShapeIn, const int64_t* srcBeginIn, float* dst,
             const int64_t* dstShapeIn, const int64_t* dstBeginIn, const int64_t* sizeIn, int rank) {
  // Merge trailing dimensions the box covers completely in both arrays: longer contiguous runs.
  int64_t ss[8] = {0}, sb[8] = {0}, ds[8] = {0}, db[8] = {0}, sz[8] = {0};
  int r = rank;
  for (int d = 0; d < rank; d++) {
    ss[d] = srcShapeIn[d];
    sb[d] = srcBeginIn[d];
    ds[d] = dstShapeIn[d];
    db[d] = dstBeginIn[d];
    sz[d] = sizeIn[d];
  }
  while (r > 1 && sz[r - 1] == ss[r - 1] && sz[r - 1] == ds[r - 1]) {
    // Full coverage means begin 0 along r − 1; the merged axis's begins scale by its extent.
    sb[r - 2] *= sz[r - 1];
    db[r - 2] *= sz[r - 1];
    ss[r - 2] *= ss[r - 1];
    ds[r - 2] *= ds[r - 1];
    sz[r - 2] *= sz[r - 1];
    r--;
  }
  int64_t total = 1;
  for (int d = 0; d < r; d++) total *= sz[d];
  if (total == 0) return;
  const int64_t run = sz[r - 1];
  const int64_t rows = total / run;
  int64_t sStride[8], dStride[8];
  sStride[r - 1] = dStride[r - 1] = 1;
  for (int d = r - 2; d >= 0; d--) {
    sStride[d] = sStride[d + 1] * ss[d + 1];
    dStride[d] = dStride[d + 1] * ds[d + 1];
  }
  ParallelFor(rows, double(total), [&](int, int64_t b, int64_t e) {
    int64_t idx[8] = {0};
    int64_t rem = b;
    for (int d = r - 2; d >= 0; d--) {
      idx[d] = rem % sz[d];
      rem /= sz[d];
    }
    for (int64_t row = b; row < e; row++) {
      int64_t so = (sb[r - 1]) * sStride[r - 1], dof = (db[r - 1]) * dStride[r - 1];
      for (int d = 0; d < r - 1; d++) {
        so += (idx[d] + sb[d]) * sStride[d];
        dof += (idx[d] + db[d]) * dStride[d];
      }
      std::memcpy(dst + dof, src + so, sizeof(float) * static_cast<size_t>(run));
      for (int d = r - 2; d >= 0; d--) {
        if (++idx[d] < sz[d]) break;
        idx[d] = 0;
      }
    }
  });
}

void Fill(float* dst, int64_t size, float value) {
  ParallelFor(size, double(size), [&](int, int64_t b, int64_t e) { std::fill(dst + b, dst + e, value); });
}

void AdamStep(float* p, const float* g, float* m, float* v, int64_t size, float lr, double beta1d, double beta2d,
              float epsilon, double step) {
  const float c1 = static_cast<float>(1.0 / (1.0 - std::pow(beta1d, step)));
  const float c2 = static_cast<float>(1.0 / (1.0 - std::pow(beta2d, step)));
  const float beta1 = static_cast<float>(beta1d);
  const float beta2 = static_cast<float>(beta2d);
  ParallelFor(size, double(size) * 8, [&](int, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      const float gi = g[i];
      const float mi = beta1 * m[i] + (1.f - beta1) * gi;
      const float vi = beta2 * v[i] + (1.f - beta2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] -= lr * (mi * c1) / (std::sqrt(vi * c2) + epsilon);
    }
  });
}

}  // namespace fj
