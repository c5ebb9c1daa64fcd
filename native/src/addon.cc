// N-API bindings of the native kernels. Every tensor argument is a Float32Array (Int32Array for
// index tables) in ordinary memory; its length is checked against the shape arguments before a
// kernel touches it, and a mismatch throws ERR_NATIVE_ARGS instead of reading out of bounds (a bug
// in the TypeScript glue, never a user error: the CLI prints its stack).
#include <cblas.h>
#include <node_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "conv_dnnl.h"
#include "kernels.h"
#include "parallel.h"

extern "C" char* openblas_get_corename(void);

namespace {

struct Fail {
  std::string message;
};

class Args {
 public:
  Args(napi_env env, napi_callback_info info, size_t expected, const char* name) : env_(env), name_(name) {
    size_t argc = 16;
    argv_.resize(argc);
    if (napi_get_cb_info(env, info, &argc, argv_.data(), nullptr, nullptr) != napi_ok || argc != expected)
      throw Fail{std::string(name) + ": expected " + std::to_string(expected) + " arguments"};
    argv_.resize(argc);
  }

  template <typename T>
  T* Typed(size_t i, int64_t length, napi_typedarray_type want, const char* what) {
    napi_typedarray_type type;
    size_t len = 0;
    void* data = nullptr;
    napi_value ab;
    size_t offset;
    if (napi_get_typedarray_info(env_, argv_[i], &type, &len, &data, &ab, &offset) != napi_ok || type != want)
      throw Fail{std::string(name_) + ": argument " + std::to_string(i) + " must be a " + what};
    if (length >= 0 && static_cast<int64_t>(len) != length)
      throw Fail{std::string(name_) + ": argument " + std::to_string(i) + " has " + std::to_string(len) +
                 " elements, expected " + std::to_string(length)};
    return static_cast<T*>(data);
  }
  float* F32(size_t i, int64_t length) { return Typed<float>(i, length, napi_float32_array, "Float32Array"); }
  int32_t* I32(size_t i, int64_t length) { return Typed<int32_t>(i, length, napi_int32_array, "Int32Array"); }
  int64_t Length(size_t i) {
    napi_typedarray_type type;
    size_t len = 0;
    void* data;
    napi_value ab;
    size_t offset;
    if (napi_get_typedarray_info(env_, argv_[i], &type, &len, &data, &ab, &offset) != napi_ok)
      throw Fail{std::string(name_) + ": argument " + std::to_string(i) + " must be a typed array"};
    return static_cast<int64_t>(len);
  }
  bool IsNull(size_t i) {
    napi_valuetype t;
    napi_typeof(env_, argv_[i], &t);
    return t == napi_null || t == napi_undefined;
  }
  int64_t Int(size_t i) {
    int64_t v;
    if (napi_get_value_int64(env_, argv_[i], &v) != napi_ok)
      throw Fail{std::string(name_) + ": argument " + std::to_string(i) + " must be a number"};
    return v;
  }
  double Num(size_t i) {
    double v;
    if (napi_get_value_double(env_, argv_[i], &v) != napi_ok)
      throw Fail{std::string(name_) + ": argument " + std::to_string(i) + " must be a number"};
    return v;
  }
  bool Bool(size_t i) {
    bool v;
    if (napi_get_value_bool(env_, argv_[i], &v) != napi_ok)
      throw Fail{std::string(name_) + ": argument " + std::to_string(i) + " must be a boolean"};
    return v;
  }
  std::vector<int64_t> Ints(size_t i) {
    uint32_t n = 0;
    if (napi_get_array_length(env_, argv_[i], &n) != napi_ok)
      throw Fail{std::string(name_) + ": argument " + std::to_string(i) + " must be an array of numbers"};
    std::vector<int64_t> out(n);
    for (uint32_t k = 0; k < n; k++) {
      napi_value v;
      if (napi_get_element(env_, argv_[i], k, &v) != napi_ok || napi_get_value_int64(env_, v, &out[k]) != napi_ok)
        throw Fail{std::string(name_) + ": argument " + std::to_string(i) + " must be an array of numbers"};
    }
    return out;
  }
  // An array of Float32Arrays.
  std::vector<napi_value> List(size_t i) {
    uint32_t n = 0;
    if (napi_get_array_length(env_, argv_[i], &n) != napi_ok || n == 0)
      throw Fail{std::string(name_) + ": argument " + std::to_string(i) + " must be a non-empty array"};
    std::vector<napi_value> out(n);
    for (uint32_t k = 0; k < n; k++) napi_get_element(env_, argv_[i], k, &out[k]);
    return out;
  }
  float* F32Value(napi_value v, int64_t length, const char* what) {
    napi_typedarray_type type;
    size_t len = 0;
    void* data = nullptr;
    napi_value ab;
    size_t offset;
    if (napi_get_typedarray_info(env_, v, &type, &len, &data, &ab, &offset) != napi_ok || type != napi_float32_array)
      throw Fail{std::string(name_) + ": " + what + " must be a Float32Array"};
    if (length >= 0 && static_cast<int64_t>(len) != length)
      throw Fail{std::string(name_) + ": " + what + " has " + std::to_string(len) + " elements, expected " +
                 std::to_string(length)};
    return static_cast<float*>(data);
  }
  int64_t LengthOf(napi_value v) {
    napi_typedarray_type type;
    size_t len = 0;
    void* data;
    napi_value ab;
    size_t offset;
    if (napi_get_typedarray_info(env_, v, &type, &len, &data, &ab, &offset) != napi_ok)
      throw Fail{std::string(name_) + ": expected a typed array"};
    return static_cast<int64_t>(len);
  }

 private:
  napi_env env_;
  const char* name_;
  std::vector<napi_value> argv_;
};

template <typename F>
napi_value Guard(napi_env env, F f) {
  try {
    f();
  } catch (const Fail& e) {
    napi_throw_error(env, "ERR_NATIVE_ARGS", e.message.c_str());
  } catch (const std::exception& e) {
    napi_throw_error(env, "ERR_NATIVE_KERNEL", e.what());
  }
  return nullptr;
}

fj::ConvGeometry Geometry(Args& a, size_t i) {
  const std::vector<int64_t> v = a.Ints(i);
  if (v.size() != 13) throw Fail{"conv: geometry must have 13 numbers"};
  for (int64_t e : v)
    if (e < 0) throw Fail{"conv: negative geometry"};
  fj::ConvGeometry g{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]};
  if (g.stride < 1 || g.dilation < 1) throw Fail{"conv: stride and dilation must be ≥ 1"};
  return g;
}

// conv2d(xs: Float32Array[], ws: Float32Array[], out, geometry): out = Σ conv(xs[i], ws[i]).
napi_value Conv2d(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 4, "conv2d");
    fj::ConvGeometry g = Geometry(a, 3);
    const auto xs = a.List(0), ws = a.List(1);
    if (xs.size() != ws.size() || xs.size() > 8) throw Fail{"conv2d: inputs and filters differ in number"};
    std::vector<const float*> xp, wp;
    std::vector<int64_t> channels;
    for (size_t i = 0; i < xs.size(); i++) {
      const int64_t pixels = g.n * g.h * g.w;
      const int64_t len = a.LengthOf(xs[i]);
      if (pixels == 0 || len % pixels != 0) throw Fail{"conv2d: input size does not match the geometry"};
      const int64_t c = len / pixels;
      channels.push_back(c);
      xp.push_back(a.F32Value(xs[i], len, "input"));
      wp.push_back(a.F32Value(ws[i], g.kh * g.kw * c * g.o, "filter"));
    }
    float* out = a.F32(2, g.n * g.outH * g.outW * g.o);
    fj::ConvForward(static_cast<int>(xs.size()), xp.data(), wp.data(), channels.data(), out, g);
  });
}

napi_value Conv2dFilterGrad(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 4, "conv2dFilterGrad");
    fj::ConvGeometry g = Geometry(a, 3);
    const float* x = a.F32(0, g.n * g.h * g.w * g.c);
    const float* dy = a.F32(1, g.n * g.outH * g.outW * g.o);
    float* dw = a.F32(2, g.kh * g.kw * g.c * g.o);
    fj::ConvFilterGrad(x, dy, dw, g);
  });
}

napi_value Conv2dInputGrad(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 4, "conv2dInputGrad");
    fj::ConvGeometry g = Geometry(a, 3);
    const float* dy = a.F32(0, g.n * g.outH * g.outW * g.o);
    const float* w = a.F32(1, g.kh * g.kw * g.c * g.o);
    float* dx = a.F32(2, g.n * g.h * g.w * g.c);
    fj::ConvInputGrad(dy, w, dx, g);
  });
}

// batchNorm(x, gamma, beta, y, mean, variance, groups, rows, channels, epsilon, relu)
napi_value BatchNorm(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 11, "batchNorm");
    const int64_t G = a.Int(6), M = a.Int(7), C = a.Int(8);
    if (G < 1 || M < 1 || C < 1) throw Fail{"batchNorm: empty shape"};
    fj::BatchNormForward(a.F32(0, G * M * C), a.F32(1, G * C), a.F32(2, G * C), G, M, C, static_cast<float>(a.Num(9)),
                         a.Bool(10), a.F32(3, G * M * C), a.F32(4, G * C), a.F32(5, G * C));
  });
}

// batchNormGrad(dy, x, y|null, mean, variance, gamma, dx, dgamma, dbeta, groups, rows, channels, epsilon, relu)
napi_value BatchNormGrad(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 14, "batchNormGrad");
    const int64_t G = a.Int(9), M = a.Int(10), C = a.Int(11);
    const bool relu = a.Bool(13);
    if (G < 1 || M < 1 || C < 1) throw Fail{"batchNormGrad: empty shape"};
    const float* y = relu ? a.F32(2, G * M * C) : nullptr;
    fj::BatchNormBackward(a.F32(0, G * M * C), a.F32(1, G * M * C), y, a.F32(3, G * C), a.F32(4, G * C),
                          a.F32(5, G * C), G, M, C, static_cast<float>(a.Num(12)), relu, a.F32(6, G * M * C),
                          a.F32(7, G * C), a.F32(8, G * C));
  });
}

int64_t Extent(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  int64_t last = 0;
  for (size_t d = 0; d < shape.size(); d++) {
    if (shape[d] < 1 || strides[d] < 0) throw Fail{"binary: bad shape or strides"};
    last += (shape[d] - 1) * strides[d];
  }
  return last + 1;
}

// binary(op, a, b, out, shape, aStrides, bStrides)
napi_value Binary(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 7, "binary");
    const int64_t op = a.Int(0);
    if (op < 0 || op > static_cast<int64_t>(fj::Binary::SquaredDifference)) throw Fail{"binary: unknown op"};
    const auto shape = a.Ints(4), as = a.Ints(5), bs = a.Ints(6);
    if (shape.empty() || shape.size() > 7 || as.size() != shape.size() || bs.size() != shape.size())
      throw Fail{"binary: rank must be 1..7 with one stride per dimension"};
    int64_t size = 1;
    for (int64_t d : shape) size *= d;
    const float* pa = a.F32(1, -1);
    const float* pb = a.F32(2, -1);
    if (a.Length(1) < Extent(shape, as) || a.Length(2) < Extent(shape, bs))
      throw Fail{"binary: strides reach outside an input"};
    float* out = a.F32(3, size);
    fj::BinaryOp(static_cast<fj::Binary>(op), pa, pb, out, static_cast<int>(shape.size()), shape.data(), as.data(),
                 bs.data());
  });
}

// unary(op, x, out, alpha)
napi_value Unary(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 4, "unary");
    const int64_t op = a.Int(0);
    if (op < 0 || op > static_cast<int64_t>(fj::Unary::Reciprocal)) throw Fail{"unary: unknown op"};
    const int64_t n = a.Length(1);
    fj::UnaryOp(static_cast<fj::Unary>(op), a.F32(1, n), a.F32(2, n), n, static_cast<float>(a.Num(3)));
  });
}

// addN(inputs, out)
napi_value AddN(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 2, "addN");
    const int64_t n = a.Length(1);
    const auto list = a.List(0);
    std::vector<const float*> in;
    for (napi_value v : list) in.push_back(a.F32Value(v, n, "input"));
    fj::AddN(static_cast<int>(in.size()), in.data(), a.F32(1, n), n);
  });
}

// reduce(op, x, out, outer, reduce, inner)
napi_value Reduce(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 6, "reduce");
    const int64_t op = a.Int(0), outer = a.Int(3), r = a.Int(4), inner = a.Int(5);
    if (op < 0 || op > static_cast<int64_t>(fj::Reduce::Min)) throw Fail{"reduce: unknown op"};
    if (outer < 1 || r < 1 || inner < 1) throw Fail{"reduce: empty shape"};
    fj::ReduceOp(static_cast<fj::Reduce>(op), a.F32(1, outer * r * inner), a.F32(2, outer * inner), outer, r, inner);
  });
}

// pool(kind 0 max | 1 avg, x, out, n, h, w, c, kh, kw)
napi_value Pool(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 9, "pool");
    const int64_t kind = a.Int(0), n = a.Int(3), h = a.Int(4), w = a.Int(5), c = a.Int(6), kh = a.Int(7),
                  kw = a.Int(8);
    if (kh < 1 || kw < 1 || h < kh || w < kw || n < 1 || c < 1) throw Fail{"pool: bad shape"};
    const float* x = a.F32(1, n * h * w * c);
    float* out = a.F32(2, n * (h / kh) * (w / kw) * c);
    if (kind == 0) fj::MaxPool(x, out, n, h, w, c, kh, kw);
    else fj::AvgPool(x, out, n, h, w, c, kh, kw);
  });
}

// poolGrad(kind 0 max | 1 avg, x|null, dy, dx, n, h, w, c, kh, kw)
napi_value PoolGrad(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 10, "poolGrad");
    const int64_t kind = a.Int(0), n = a.Int(4), h = a.Int(5), w = a.Int(6), c = a.Int(7), kh = a.Int(8),
                  kw = a.Int(9);
    if (kh < 1 || kw < 1 || h < kh || w < kw || n < 1 || c < 1) throw Fail{"poolGrad: bad shape"};
    const float* dy = a.F32(2, n * (h / kh) * (w / kw) * c);
    float* dx = a.F32(3, n * h * w * c);
    if (kind == 0) fj::MaxPoolGrad(a.F32(1, n * h * w * c), dy, dx, n, h, w, c, kh, kw);
    else fj::AvgPoolGrad(dy, dx, n, h, w, c, kh, kw);
  });
}

// resize(x, out, n, h, w, c, outH, outW, rows, cols): nearest-neighbour gather
napi_value Resize(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 10, "resize");
    const int64_t n = a.Int(2), h = a.Int(3), w = a.Int(4), c = a.Int(5), oh = a.Int(6), ow = a.Int(7);
    const int32_t* rows = a.I32(8, oh);
    const int32_t* cols = a.I32(9, ow);
    for (int64_t i = 0; i < oh; i++)
      if (rows[i] < 0 || rows[i] >= h) throw Fail{"resize: row index out of range"};
    for (int64_t j = 0; j < ow; j++)
      if (cols[j] < 0 || cols[j] >= w) throw Fail{"resize: column index out of range"};
    fj::GatherResize(a.F32(0, n * h * w * c), a.F32(1, n * oh * ow * c), n, h, w, c, oh, ow, rows, cols);
  });
}

// copy(src, srcShape, srcBegin, dst, dstShape, dstBegin, size): dst[dstBegin + i] = src[srcBegin + i] over the box
napi_value Copy(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 7, "copy");
    const auto ss = a.Ints(1), sb = a.Ints(2), ds = a.Ints(4), db = a.Ints(5), sz = a.Ints(6);
    const size_t rank = ss.size();
    if (rank < 1 || rank > 8 || sb.size() != rank || ds.size() != rank || db.size() != rank || sz.size() != rank)
      throw Fail{"copy: rank must be 1..8 with matching shapes"};
    int64_t sn = 1, dn = 1;
    for (size_t d = 0; d < rank; d++) {
      if (sz[d] < 0 || sb[d] < 0 || db[d] < 0 || sb[d] + sz[d] > ss[d] || db[d] + sz[d] > ds[d])
        throw Fail{"copy: box outside an array"};
      sn *= ss[d];
      dn *= ds[d];
    }
    fj::CopyBox(a.F32(0, sn), ss.data(), sb.data(), a.F32(3, dn), ds.data(), db.data(), sz.data(),
                static_cast<int>(rank));
  });
}

// fill(dst, value)
napi_value FillValue(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 2, "fill");
    const int64_t n = a.Length(0);
    fj::Fill(a.F32(0, n), n, static_cast<float>(a.Num(1)));
  });
}

// adam(p, g, m, v, lr, beta1, beta2, epsilon, step)
napi_value Adam(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 9, "adam");
    const int64_t n = a.Length(0);
    fj::AdamStep(a.F32(0, n), a.F32(1, n), a.F32(2, n), a.F32(3, n), n, static_cast<float>(a.Num(4)),
                 a.Num(5), a.Num(6), static_cast<float>(a.Num(7)), a.Num(8));
  });
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 1, "setThreads");
    fj::SetThreads(static_cast<int>(a.Int(0)));
    fj::DnnlSetThreads(fj::Threads());
    openblas_set_num_threads(1);
  });
}

napi_value UseOneDnn(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 1, "useOneDnn");
    fj::DnnlEnable(a.Bool(0));
  });
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj, v;
  napi_create_object(env, &obj);
  const char* cfg = openblas_get_config();
  napi_create_string_utf8(env, cfg ? cfg : "OpenBLAS", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "blas", v);
  const char* core = openblas_get_corename();
  napi_create_string_utf8(env, core ? core : "unknown", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "core", v);
  napi_create_int32(env, fj::Threads(), &v);
  napi_set_named_property(env, obj, "threads", v);
  napi_get_boolean(env, fj::DnnlAvailable(), &v);
  napi_set_named_property(env, obj, "onednn", v);
  return obj;
}

napi_value Init(napi_env env, napi_value exports) {
  openblas_set_num_threads(1);
  napi_property_descriptor props[] = {
      {"conv2d", nullptr, Conv2d, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dFilterGrad", nullptr, Conv2dFilterGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dInputGrad", nullptr, Conv2dInputGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNorm", nullptr, BatchNorm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNormGrad", nullptr, BatchNormGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"binary", nullptr, Binary, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unary", nullptr, Unary, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"addN", nullptr, AddN, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reduce", nullptr, Reduce, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"pool", nullptr, Pool, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"poolGrad", nullptr, PoolGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"resize", nullptr, Resize, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"copy", nullptr, Copy, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"fill", nullptr, FillValue, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adam", nullptr, Adam, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"useOneDnn", nullptr, UseOneDnn, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
