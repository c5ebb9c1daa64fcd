// Training batch normalisation over domain groups, optionally fused with the following ReLU.
// Each pass is one parallel region over all rows of all groups (threads keep per-group partial
// sums); sums run in float over blocks of rows, then in double. The statistics are shifted sums
// (around each group's first row), so the variance does not cancel catastrophically.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "parallel.h"

namespace fj {
namespace {

constexpr int64_t kBlock = 64;

// Row kernels with restrict pointers (vectorised, branch-free ReLU masks).
void ShiftedSums(const float* __restrict x, const float* __restrict shift, int64_t C, float* __restrict a,
                 float* __restrict q) {
  for (int64_t c = 0; c < C; c++) {
    const float d = x[c] - shift[c];
    a[c] += d;
    q[c] += d * d;
  }
}

void NormalizeRow(const float* __restrict x, const float* __restrict scale, const float* __restrict offset, int64_t C,
                  bool relu, float* __restrict out) {
  if (relu) {
    for (int64_t c = 0; c < C; c++) out[c] = std::max(x[c] * scale[c] + offset[c], 0.f);
  } else {
    for (int64_t c = 0; c < C; c++) out[c] = x[c] * scale[c] + offset[c];
  }
}

void GradSums(const float* __restrict dy, const float* __restrict x, const float* __restrict y,
              const float* __restrict mu, int64_t C, float* __restrict a, float* __restrict q) {
  if (y) {
    for (int64_t c = 0; c < C; c++) {
      const float gy = dy[c] * static_cast<float>(y[c] > 0.f);
      a[c] += gy;
      q[c] += gy * (x[c] - mu[c]);
    }
  } else {
    for (int64_t c = 0; c < C; c++) {
      a[c] += dy[c];
      q[c] += dy[c] * (x[c] - mu[c]);
    }
  }
}

void GradRow(const float* __restrict dy, const float* __restrict x, const float* __restrict y,
             const float* __restrict mu, const float* __restrict gr, const float* __restrict meanDy,
             const float* __restrict k, int64_t C, float* __restrict out) {
  if (y) {
    for (int64_t c = 0; c < C; c++) {
      const float gy = dy[c] * static_cast<float>(y[c] > 0.f);
      out[c] = gr[c] * (gy - meanDy[c]) - (x[c] - mu[c]) * k[c];
    }
  } else {
    for (int64_t c = 0; c < C; c++) out[c] = gr[c] * (dy[c] - meanDy[c]) - (x[c] - mu[c]) * k[c];
  }
}

// Per (group, channel) totals of two row functions f(row, g) → (a[C], b[C]) over all G·M rows.
template <typename F>
void GroupSums(int64_t groups, int64_t rows, int64_t C, F rowTerms, std::vector<double>& s1, std::vector<double>& s2) {
  const int threads = Threads();
  std::vector<std::vector<double>> p1(static_cast<size_t>(threads)), p2(static_cast<size_t>(threads));
  const int used = ParallelFor(groups * rows, double(groups) * rows * C * 2, [&](int t, int64_t b, int64_t e) {
    p1[t].assign(static_cast<size_t>(groups * C), 0.0);
    p2[t].assign(static_cast<size_t>(groups * C), 0.0);
    std::vector<float> a(static_cast<size_t>(C)), q(static_cast<size_t>(C));
    int64_t r = b;
    while (r < e) {
      const int64_t g = r / rows;
      const int64_t stop = std::min({e, (g + 1) * rows, r + kBlock});
      std::fill(a.begin(), a.end(), 0.f);
      std::fill(q.begin(), q.end(), 0.f);
      for (; r < stop; r++) rowTerms(r, g, a.data(), q.data());
      double* d1 = p1[t].data() + g * C;
      double* d2 = p2[t].data() + g * C;
      for (int64_t c = 0; c < C; c++) {
        d1[c] += a[c];
        d2[c] += q[c];
      }
    }
  });
  s1.assign(static_cast<size_t>(groups * C), 0.0);
  s2.assign(static_cast<size_t>(groups * C), 0.0);
  for (int t = 0; t < used; t++) {
    for (size_t i = 0; i < s1.size(); i++) {
      s1[i] += p1[t][i];
      s2[i] += p2[t][i];
    }
  }
}

}  // namespace

void BatchNormForward(const float* x, const float* gamma, const float* beta, int64_t groups, int64_t rows,
                      int64_t channels, float epsilon, bool relu, float* y, float* mean, float* variance) {
  const int64_t C = channels;
  std::vector<float> shift(static_cast<size_t>(groups * C));
  for (int64_t g = 0; g < groups; g++)
    for (int64_t c = 0; c < C; c++) shift[g * C + c] = x[g * rows * C + c];
  std::vector<double> s1, s2;
  GroupSums(groups, rows, C,
            [&](int64_t r, int64_t g, float* a, float* q) {
              ShiftedSums(x + r * C, shift.data() + g * C, C, a, q);
            },
            s1, s2);
  std::vector<float> scale(static_cast<size_t>(groups * C)), offset(static_cast<size_t>(groups * C));
  for (int64_t i = 0; i < groups * C; i++) {
    const double m1 = s1[i] / double(rows);
    const double var = std::max(0.0, s2[i] / double(rows) - m1 * m1);
    const double mu = double(shift[i]) + m1;
    mean[i] = static_cast<float>(mu);
    variance[i] = static_cast<float>(var);
    const double sc = double(gamma[i]) / std::sqrt(var + double(epsilon));
    scale[i] = static_cast<float>(sc);
    offset[i] = static_cast<float>(double(beta[i]) - mu * sc);
  }
  ParallelFor(groups * rows, double(groups) * rows * C, [&](int, int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const int64_t g = r / rows;
      const float* sc = scale.data() + g * C;
      const float* of = offset.data() + g * C;
      NormalizeRow(x + r * C, sc, of, C, relu, y + r * C);
    }
  });
}

void BatchNormBackward(const float* dy, const float* x, const float* y, const float* mean, const float* variance,
                       const float* gamma, int64_t groups, int64_t rows, int64_t channels, float epsilon, bool relu,
                       float* dx, float* dgamma, float* dbeta) {
  const int64_t C = channels;
  std::vector<double> s1, s2;
  GroupSums(groups, rows, C,
            [&](int64_t r, int64_t g, float* a, float* q) {
              GradSums(dy + r * C, x + r * C, relu ? y + r * C : nullptr, mean + g * C, C, a, q);
            },
            s1, s2);
  std::vector<float> gr(static_cast<size_t>(groups * C)), meanDy(static_cast<size_t>(groups * C)),
      k(static_cast<size_t>(groups * C));
  for (int64_t i = 0; i < groups * C; i++) {
    const double rstd = 1.0 / std::sqrt(double(variance[i]) + double(epsilon));
    const double a = double(gamma[i]) * rstd;
    dbeta[i] = static_cast<float>(s1[i]);
    dgamma[i] = static_cast<float>(s2[i] * rstd);
    gr[i] = static_cast<float>(a);
    meanDy[i] = static_cast<float>(s1[i] / double(rows));
    k[i] = static_cast<float>(a * rstd * rstd * s2[i] / double(rows));
  }
  ParallelFor(groups * rows, double(groups) * rows * C, [&](int, int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const int64_t g = r / rows;
      const float* d = dy + r * C;
      const float* xr = x + r * C;
      const float* mu = mean + g * C;
      const float* a = gr.data() + g * C;
      const float* md = meanDy.data() + g * C;
      const float* kk = k.data() + g * C;
      GradRow(d, xr, relu ? y + r * C : nullptr, mu, a, md, kk, C, dx + r * C);
    }
  });
}

}  // namespace fj
