// Native kernels of fedjoint's `native` engine: plain functions over float arrays in ordinary
// memory (the tensors of the tfjs backend in src/model/engine/native/), multi-threaded with
// ./parallel.h, convolutions as im2col + OpenBLAS SGEMM. Layout NHWC everywhere; filters
// [KH, KW, C, O] (TensorFlow's).
#pragma once

#include <cstdint>

namespace fj {

struct ConvGeometry {
  int64_t n, h, w, c;        // input
  int64_t kh, kw, o;         // filter
  int64_t outH, outW;        // output
  int64_t stride, dilation;  // same in both directions
  int64_t padTop, padLeft;
};

// out = Σ_i conv(x_i, w_i), every pair with the same geometry except the input channels c_i.
void ConvForward(int parts, const float* const* x, const float* const* w, const int64_t* channels,
                 float* out, const ConvGeometry& g);
// dw = im2col(x)ᵀ · dy
void ConvFilterGrad(const float* x, const float* dy, float* dw, const ConvGeometry& g);
// dx = col2im(dy · wᵀ): the adjoint of ConvForward for one input.
void ConvInputGrad(const float* dy, const float* w, float* dx, const ConvGeometry& g);

// Training batch norm over G groups of M rows of C channels (x is [G, M, C]):
// y = γ(x − μ)/√(σ² + ε) + β, optionally followed by ReLU; μ, σ² (biased) are [G, C].
void BatchNormForward(const float* x, const float* gamma, const float* beta, int64_t groups, int64_t rows,
                      int64_t channels, float epsilon, bool relu, float* y, float* mean, float* variance);
// Gradient of BatchNormForward; y (the forward output) is read only with relu.
void BatchNormBackward(const float* dy, const float* x, const float* y, const float* mean, const float* variance,
                       const float* gamma, int64_t groups, int64_t rows, int64_t channels, float epsilon, bool relu,
                       float* dx, float* dgamma, float* dbeta);

enum class Binary { Add, Sub, Mul, Div, Maximum, Minimum, SquaredDifference };
// out[i] = a[ia] op b[ib] with broadcasting: shape is the output shape (rank ≤ 8), aStrides and
// bStrides the element strides of a and b for each output dimension (0 where broadcast).
void BinaryOp(Binary op, const float* a, const float* b, float* out, int rank, const int64_t* shape,
              const int64_t* aStrides, const int64_t* bStrides);

enum class Unary { Relu, Step, Sigmoid, Exp, Log, Neg, Square, Sqrt, Rsqrt, Abs, Tanh, Reciprocal };
void UnaryOp(Unary op, const float* x, float* out, int64_t size, float alpha);

// out[k] = Σ_i in_i[k]
void AddN(int parts, const float* const* in, float* out, int64_t size);

enum class Reduce { Sum, Mean, Max, Min };
// x is [outer, reduce, inner]; out is [outer, inner].
void ReduceOp(Reduce op, const float* x, float* out, int64_t outer, int64_t reduce, int64_t inner);

// Non-overlapping pooling, window kh×kw, stride kh×kw, no padding: x [N,H,W,C] → [N,H/kh,W/kw,C].
void MaxPool(const float* x, float* out, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw);
void AvgPool(const float* x, float* out, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw);
// dy goes to the first maximum of each window (TensorFlow's rule).
void MaxPoolGrad(const float* x, const float* dy, float* dx, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh,
                 int64_t kw);
void AvgPoolGrad(const float* dy, float* dx, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw);

// out[b, i, j, :] = x[b, rows[i], cols[j], :]
void GatherResize(const float* x, float* out, int64_t n, int64_t h, int64_t w, int64_t c, int64_t outH,
                  int64_t outW, const int32_t* rows, const int32_t* cols);

// Copies the box `size` at srcBegin of src (shape srcShape) to dstBegin of dst (shape dstShape),
// rank ≤ 8: slices, padding and concatenation.
void CopyBox(const float* src, const int64_t* srcShape, const int64_t* srcBegin, float* dst, const int64_t* dstShape,
             const int64_t* dstBegin, const int64_t* size, int rank);
void Fill(float* dst, int64_t size, float value);

// In-place Adam step (PyTorch's formula and bias correction) on size elements. β1 and β2 come as
// doubles: the bias corrections 1/(1 − β^t) are computed in double from them, then rounded (the
// coordinator's server Adam, src/aggregation/server-optimizer.ts, does the same, bit for bit).
void AdamStep(float* p, const float* g, float* m, float* v, int64_t size, float lr, double beta1, double beta2,
              float epsilon, double step);

}  // namespace fj
