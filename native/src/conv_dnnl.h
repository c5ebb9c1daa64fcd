// oneDNN convolutions (./conv_dnnl.cc), compiled in when the build finds libdnnl-dev 2.x.
#pragma once

#include <cstdint>

#include "kernels.h"

namespace fj {

bool DnnlAvailable();
/** Turns the oneDNN path off (then every convolution takes the im2col + OpenBLAS path) or on. */
void DnnlEnable(bool on);
void DnnlSetThreads(int n);
// Same contracts as ConvForward / ConvInputGrad / ConvFilterGrad; false = not handled here.
bool DnnlConvForward(int parts, const float* const* x, const float* const* w, const int64_t* channels, float* out,
                     const ConvGeometry& g);
bool DnnlConvInputGrad(const float* dy, const float* w, float* dx, const ConvGeometry& g);
bool DnnlConvFilterGrad(const float* x, const float* dy, float* dw, const ConvGeometry& g);

}  // namespace fj
