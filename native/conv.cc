// Native convolution kernels for fedjoint's wasm engine: im2col in bounded chunks + OpenBLAS
// SGEMM (multi-threaded). They operate directly on the WebAssembly heap of
// tfjs-backend-wasm (zero copy): every pointer argument is a byte offset into `heap`.
// Layout NHWC, filters [KH, KW, C, O], TensorFlow padding given as explicit top/left pads.
#include <cblas.h>
#include <node_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace {

// Threads are ours, not OpenBLAS's: OpenBLAS runs single-threaded inside each of our workers.
// OpenBLAS's own pool spin-waits, which collapses when several training processes share the
// cores (a simulated federation runs three sites on one machine); joined std::threads just block.
int gThreads = 1;
constexpr int kMaxThreads = 64;
std::vector<float> gScratch[kMaxThreads];

float* Scratch(int t, size_t floats) {
  if (gScratch[t].size() < floats) gScratch[t].resize(floats);
  return gScratch[t].data();
}

// Runs fn(t, begin, end) over [0, total) split into contiguous ranges, one per thread; small work
// (under ~4M multiply-adds) stays on the calling thread.
template <typename F>
int ParallelFor(int64_t total, double work, F fn) {
  int threads = static_cast<int>(std::min<int64_t>(gThreads, total));
  if (work < 4e6 || threads < 2) {
    fn(0, int64_t{0}, total);
    return 1;
  }
  std::vector<std::thread> pool;
  const int64_t per = (total + threads - 1) / threads;
  for (int t = 1; t < threads; t++) {
    const int64_t b = t * per, e = std::min(total, b + per);
    if (b < e) pool.emplace_back([=, &fn] { fn(t, b, e); });
  }
  fn(0, int64_t{0}, std::min(total, per));
  for (auto& th : pool) th.join();
  return threads;
}

struct Geometry {
  int64_t n, h, w, c;        // input
  int64_t kh, kw, o;         // filter
  int64_t outH, outW;        // output
  int64_t stride, dilation;  // same in both directions
  int64_t padTop, padLeft;
};

// Rows [row0, row0 + rows) of the im2col matrix (row = output pixel, col = (a, b, c)).
void im2col(const float* x, const Geometry& g, int64_t row0, int64_t rows, float* cols) {
  const int64_t k = g.kh * g.kw * g.c;
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
        float* d = dst + (a * g.kw + b) * g.c;
        if (y < 0 || y >= g.h || xx < 0 || xx >= g.w) {
          std::memset(d, 0, sizeof(float) * g.c);
        } else {
          std::memcpy(d, x + ((n * g.h + y) * g.w + xx) * g.c, sizeof(float) * g.c);
        }
      }
    }
  }
}

bool pointwise(const Geometry& g) {
  return g.kh == 1 && g.kw == 1 && g.stride == 1 && g.padTop == 0 && g.padLeft == 0 && g.outH == g.h && g.outW == g.w;
}

int64_t chunkRows(int64_t k) {
  // ~4 MiB of im2col per chunk, at least 256 rows.
  return std::max<int64_t>(256, (int64_t{1} << 20) / std::max<int64_t>(k, 1));
}

// out[M, O] = im2col(x)[M, K] · w[K, O]
void convForward(const float* x, const float* w, float* out, const Geometry& g) {
  const int64_t m = g.n * g.outH * g.outW;
  const int64_t k = g.kh * g.kw * g.c;
  const int64_t chunk = chunkRows(k);
  ParallelFor(m, double(m) * k * g.o, [&](int t, int64_t begin, int64_t end) {
    if (pointwise(g)) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, end - begin, g.o, k, 1.f, x + begin * k, k, w, g.o, 0.f,
                  out + begin * g.o, g.o);
      return;
    }
    float* cols = Scratch(t, static_cast<size_t>(std::min(chunk, end - begin) * k));
    for (int64_t r0 = begin; r0 < end; r0 += chunk) {
      const int64_t rows = std::min(chunk, end - r0);
      im2col(x, g, r0, rows, cols);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, g.o, k, 1.f, cols, k, w, g.o, 0.f, out + r0 * g.o,
                  g.o);
    }
  });
}

// dw[K, O] = im2col(x)ᵀ[K, M] · dy[M, O]; each thread sums its rows into its own partial.
void convFilterGrad(const float* x, const float* dy, float* dw, const Geometry& g) {
  const int64_t m = g.n * g.outH * g.outW;
  const int64_t k = g.kh * g.kw * g.c;
  const int64_t chunk = chunkRows(k);
  std::vector<std::vector<float>> partial(static_cast<size_t>(gThreads));
  const int used = ParallelFor(m, double(m) * k * g.o, [&](int t, int64_t begin, int64_t end) {
    float* target = dw;
    if (t > 0) {
      partial[t].assign(static_cast<size_t>(k * g.o), 0.f);
      target = partial[t].data();
    }
    if (pointwise(g)) {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, g.o, end - begin, 1.f, x + begin * k, k,
                  dy + begin * g.o, g.o, 0.f, target, g.o);
      return;
    }
    float* cols = Scratch(t, static_cast<size_t>(std::min(chunk, end - begin) * k));
    for (int64_t r0 = begin; r0 < end; r0 += chunk) {
      const int64_t rows = std::min(chunk, end - r0);
      im2col(x, g, r0, rows, cols);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, g.o, rows, 1.f, cols, k, dy + r0 * g.o, g.o,
                  r0 == begin ? 0.f : 1.f, target, g.o);
    }
  });
  for (int t = 1; t < used; t++) {
    if (partial[t].empty()) continue;
    const float* p = partial[t].data();
    for (int64_t i = 0; i < k * g.o; i++) dw[i] += p[i];
  }
}

// dx = col2im(dy[M, O] · wᵀ[O, K]): the exact adjoint of convForward. Threads split the batch so
// that their scatter-adds never touch the same image.
void convInputGrad(const float* dy, const float* w, float* dx, const Geometry& g) {
  const int64_t k = g.kh * g.kw * g.c;
  const int64_t perImage = g.outH * g.outW;
  const int64_t chunk = chunkRows(k);
  ParallelFor(g.n, double(g.n) * perImage * k * g.o, [&](int t, int64_t n0, int64_t n1) {
    const int64_t begin = n0 * perImage, end = n1 * perImage;
    if (pointwise(g)) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, end - begin, k, g.o, 1.f, dy + begin * g.o, g.o, w, g.o,
                  0.f, dx + begin * k, k);
      return;
    }
    std::memset(dx + n0 * g.h * g.w * g.c, 0, sizeof(float) * static_cast<size_t>((n1 - n0) * g.h * g.w * g.c));
    float* cols = Scratch(t, static_cast<size_t>(std::min(chunk, end - begin) * k));
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

// Gradient of 2×2/stride-2 max-pooling: dy goes to the first maximum of each window (TensorFlow's rule).
void maxPool2x2Grad(const float* x, const float* dy, float* dx, int64_t n, int64_t h, int64_t w, int64_t c) {
  const int64_t oh = h / 2, ow = w / 2;
  std::memset(dx, 0, sizeof(float) * static_cast<size_t>(n * h * w * c));
  for (int64_t b = 0; b < n; b++) {
    for (int64_t i = 0; i < oh; i++) {
      for (int64_t j = 0; j < ow; j++) {
        const float* g = dy + ((b * oh + i) * ow + j) * c;
        const int64_t base00 = ((b * h + 2 * i) * w + 2 * j) * c;
        const int64_t offs[4] = {base00, base00 + c, base00 + w * c, base00 + w * c + c};
        for (int64_t ch = 0; ch < c; ch++) {
          int best = 0;
          float v = x[offs[0] + ch];
          for (int t = 1; t < 4; t++) {
            const float u = x[offs[t] + ch];
            if (u > v) { v = u; best = t; }
          }
          dx[offs[best] + ch] += g[ch];
        }
      }
    }
  }
}

napi_value Throw(napi_env env, const char* message) {
  napi_throw_error(env, "FJ_NATIVE_CONV", message);
  return nullptr;
}

// args: heap (ArrayBuffer), xOff, wOrDyOff, outOff (byte offsets), geometry Int32Array-like array of 13 ints
bool ReadArgs(napi_env env, napi_callback_info info, uint8_t** heap, size_t* heapLen, int64_t off[3], Geometry* g) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 5) return false;
  void* data = nullptr;
  if (napi_get_arraybuffer_info(env, argv[0], &data, heapLen) != napi_ok) return false;
  *heap = static_cast<uint8_t*>(data);
  for (int i = 0; i < 3; i++) {
    if (napi_get_value_int64(env, argv[1 + i], &off[i]) != napi_ok) return false;
  }
  int64_t vals[13];
  for (uint32_t i = 0; i < 13; i++) {
    napi_value v;
    if (napi_get_element(env, argv[4], i, &v) != napi_ok || napi_get_value_int64(env, v, &vals[i]) != napi_ok) return false;
  }
  *g = Geometry{vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6],
                vals[7], vals[8], vals[9], vals[10], vals[11], vals[12]};
  return true;
}

bool InBounds(size_t heapLen, int64_t off, int64_t floats) {
  return off >= 0 && floats >= 0 && static_cast<uint64_t>(off) + static_cast<uint64_t>(floats) * 4 <= heapLen;
}

enum class Role { Input, Filter, Output };

int64_t Floats(Role r, const Geometry& g) {
  switch (r) {
    case Role::Input: return g.n * g.h * g.w * g.c;
    case Role::Filter: return g.kh * g.kw * g.c * g.o;
    case Role::Output: return g.n * g.outH * g.outW * g.o;
  }
  return 0;
}

// The three convolution entry points share one shape: (heap, a, b, out, geometry), where a, b and
// out play the roles given; each is bounds-checked against the heap before the kernel runs.
template <void (*Kernel)(const float*, const float*, float*, const Geometry&)>
napi_value RunConv(napi_env env, napi_callback_info info, const char* name, Role a, Role b, Role out) {
  uint8_t* heap;
  size_t len;
  int64_t off[3];
  Geometry g;
  if (!ReadArgs(env, info, &heap, &len, off, &g)) return Throw(env, name);
  if (!InBounds(len, off[0], Floats(a, g)) || !InBounds(len, off[1], Floats(b, g)) ||
      !InBounds(len, off[2], Floats(out, g)))
    return Throw(env, name);
  Kernel(reinterpret_cast<float*>(heap + off[0]), reinterpret_cast<float*>(heap + off[1]),
         reinterpret_cast<float*>(heap + off[2]), g);
  return nullptr;
}

napi_value Conv2d(napi_env env, napi_callback_info info) {
  return RunConv<convForward>(env, info, "conv2d: bad arguments or tensor outside the heap", Role::Input,
                              Role::Filter, Role::Output);
}

napi_value Conv2dFilterGrad(napi_env env, napi_callback_info info) {
  return RunConv<convFilterGrad>(env, info, "conv2dFilterGrad: bad arguments or tensor outside the heap",
                                 Role::Input, Role::Output, Role::Filter);
}

napi_value Conv2dInputGrad(napi_env env, napi_callback_info info) {
  return RunConv<convInputGrad>(env, info, "conv2dInputGrad: bad arguments or tensor outside the heap",
                                Role::Output, Role::Filter, Role::Input);
}

// args: heap, xOff, dyOff, dxOff, [n, h, w, c]
napi_value MaxPoolGrad(napi_env env, napi_callback_info info) {
  uint8_t* heap;
  size_t len;
  int64_t off[3];
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 5) return Throw(env, "maxPool2x2Grad: bad arguments");
  void* data = nullptr;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok) return Throw(env, "maxPool2x2Grad: bad heap");
  heap = static_cast<uint8_t*>(data);
  int64_t d[4];
  for (int i = 0; i < 3; i++) napi_get_value_int64(env, argv[1 + i], &off[i]);
  for (uint32_t i = 0; i < 4; i++) {
    napi_value v;
    napi_get_element(env, argv[4], i, &v);
    napi_get_value_int64(env, v, &d[i]);
  }
  const int64_t size = d[0] * d[1] * d[2] * d[3];
  if (!InBounds(len, off[0], size) || !InBounds(len, off[1], size / 4) || !InBounds(len, off[2], size))
    return Throw(env, "maxPool2x2Grad: tensor outside the heap");
  maxPool2x2Grad(reinterpret_cast<float*>(heap + off[0]), reinterpret_cast<float*>(heap + off[1]),
                 reinterpret_cast<float*>(heap + off[2]), d[0], d[1], d[2], d[3]);
  return nullptr;
}

// In-place Adam step on one variable: p, m, v, g are float32 arrays of `size` on the heap.
// args: heap, pOff, gOff, mOff, vOff, size, lr, beta1, beta2, epsilon, step (1-based)
napi_value AdamStep(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 11) return Throw(env, "adam: bad arguments");
  void* data = nullptr;
  size_t len = 0;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok) return Throw(env, "adam: bad heap");
  int64_t off[4], size;
  double lr, b1, b2, eps, step;
  for (int i = 0; i < 4; i++) napi_get_value_int64(env, argv[1 + i], &off[i]);
  napi_get_value_int64(env, argv[5], &size);
  napi_get_value_double(env, argv[6], &lr);
  napi_get_value_double(env, argv[7], &b1);
  napi_get_value_double(env, argv[8], &b2);
  napi_get_value_double(env, argv[9], &eps);
  napi_get_value_double(env, argv[10], &step);
  for (int i = 0; i < 4; i++)
    if (!InBounds(len, off[i], size)) return Throw(env, "adam: tensor outside the heap");
  uint8_t* heap = static_cast<uint8_t*>(data);
  float* p = reinterpret_cast<float*>(heap + off[0]);
  const float* g = reinterpret_cast<const float*>(heap + off[1]);
  float* m = reinterpret_cast<float*>(heap + off[2]);
  float* v = reinterpret_cast<float*>(heap + off[3]);
  const float c1 = static_cast<float>(1.0 / (1.0 - std::pow(b1, step)));
  const float c2 = static_cast<float>(1.0 / (1.0 - std::pow(b2, step)));
  const float fb1 = static_cast<float>(b1), fb2 = static_cast<float>(b2), flr = static_cast<float>(lr), feps = static_cast<float>(eps);
  for (int64_t i = 0; i < size; i++) {
    const float gi = g[i];
    const float mi = fb1 * m[i] + (1.f - fb1) * gi;
    const float vi = fb2 * v[i] + (1.f - fb2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= flr * (mi * c1) / (std::sqrt(vi * c2) + feps);
  }
  return nullptr;
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t n = 1;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 1 ||
      napi_get_value_int32(env, argv[0], &n) != napi_ok)
    return Throw(env, "setThreads: expected a number");
  gThreads = std::max(1, std::min(kMaxThreads, static_cast<int>(n)));
  openblas_set_num_threads(1);
  return nullptr;
}

napi_value GetConfig(napi_env env, napi_callback_info) {
  napi_value s;
  const char* cfg = openblas_get_config();
  napi_create_string_utf8(env, cfg ? cfg : "openblas", NAPI_AUTO_LENGTH, &s);
  return s;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"conv2d", nullptr, Conv2d, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dFilterGrad", nullptr, Conv2dFilterGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dInputGrad", nullptr, Conv2dInputGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPool2x2Grad", nullptr, MaxPoolGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamStep", nullptr, AdamStep, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"config", nullptr, GetConfig, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
