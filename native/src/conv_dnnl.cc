// Convolutions through oneDNN (the library PyTorch's CPU convolutions use), when the build found
// libdnnl-dev 2.x: direct convolutions on NHWC activations with the filters reordered from
// TensorFlow's [KH, KW, C, O] to oneDNN's preferred blocked layout. Primitives are created once
// per geometry and cached. Every entry point returns false for what it does not handle (then
// ./conv.cc's im2col + OpenBLAS path runs).
#include "conv_dnnl.h"

#ifdef FJ_DNNL

#include <omp.h>

#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>

#if DNNL_VERSION_MAJOR != 2
#error "fedjoint's oneDNN convolutions are written against oneDNN 2.x"
#endif

namespace fj {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& Engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream& Stream() {
  static dnnl::stream s(Engine());
  return s;
}

struct Dims {
  memory::dims src, wei, dst, strides, dilates, padL, padR;
};

// oneDNN's geometry of one convolution with `channels` input channels; false when the right
// padding would be negative (an input larger than the output needs).
bool Describe(const ConvGeometry& g, int64_t channels, Dims* d) {
  const int64_t effH = (g.kh - 1) * g.dilation + 1, effW = (g.kw - 1) * g.dilation + 1;
  const int64_t padB = (g.outH - 1) * g.stride + effH - g.h - g.padTop;
  const int64_t padR = (g.outW - 1) * g.stride + effW - g.w - g.padLeft;
  if (padB < 0 || padR < 0) return false;
  d->src = {g.n, channels, g.h, g.w};
  d->wei = {g.o, channels, g.kh, g.kw};
  d->dst = {g.n, g.o, g.outH, g.outW};
  d->strides = {g.stride, g.stride};
  d->dilates = {g.dilation - 1, g.dilation - 1};
  d->padL = {g.padTop, g.padLeft};
  d->padR = {padB, padR};
  return true;
}

using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int64_t>;

Key MakeKey(int kind, const ConvGeometry& g, int64_t channels) {
  return Key{kind, g.n, g.h, g.w, channels, g.kh, g.kw, g.o, g.outH, g.outW, g.stride, g.dilation, g.padTop, g.padLeft};
}

memory::desc Nhwc(const memory::dims& d) { return memory::desc(d, dt::f32, tag::nhwc); }
memory::desc Hwio(const memory::dims& d) { return memory::desc(d, dt::f32, tag::hwio); }
memory::desc Any(const memory::dims& d) { return memory::desc(d, dt::f32, tag::any); }

dnnl::convolution_forward::primitive_desc ForwardDesc(const Dims& d, bool accumulate) {
  dnnl::primitive_attr attr;
  if (accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.f);
    attr.set_post_ops(ops);
  }
  dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                       Nhwc(d.src), Any(d.wei), Nhwc(d.dst), d.strides, d.dilates, d.padL, d.padR);
  return dnnl::convolution_forward::primitive_desc(desc, attr, Engine());
}

// A primitive plus, when oneDNN wants the filters in another layout, the reorder into a buffer.
struct Cached {
  dnnl::primitive prim;
  memory::desc weights;  // the layout the primitive reads/writes filters in
  bool reorder = false;
  std::unique_ptr<memory> blocked;
  dnnl::primitive toBlocked;    // hwio → blocked (forward, input gradient)
  dnnl::primitive fromBlocked;  // blocked → hwio (filter gradient)
};

std::mutex gMutex;
bool gEnabled = true;
std::map<Key, std::unique_ptr<Cached>> gCache;

Cached* Lookup(const Key& key) {
  auto it = gCache.find(key);
  return it == gCache.end() ? nullptr : it->second.get();
}

void PrepareWeights(Cached* c, const memory::desc& user, bool toBlocked) {
  c->reorder = c->weights != user;
  if (!c->reorder) return;
  c->blocked = std::make_unique<memory>(c->weights, Engine());
  if (toBlocked) c->toBlocked = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), user, Engine(), c->weights));
  else c->fromBlocked = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), c->weights, Engine(), user));
}

}  // namespace

bool DnnlAvailable() { return gEnabled; }
void DnnlEnable(bool on) { gEnabled = on; }

void DnnlSetThreads(int n) { omp_set_num_threads(n); }

bool DnnlConvForward(int parts, const float* const* x, const float* const* w, const int64_t* channels, float* out,
                     const ConvGeometry& g) {
  if (!gEnabled) return false;
  std::lock_guard<std::mutex> lock(gMutex);
  try {
    std::vector<Cached*> prims;
    std::vector<Dims> dims(static_cast<size_t>(parts));
    for (int i = 0; i < parts; i++) {
      if (!Describe(g, channels[i], &dims[i])) return false;
      const Key key = MakeKey(i == 0 ? 0 : 1, g, channels[i]);
      Cached* c = Lookup(key);
      if (!c) {
        auto pd = ForwardDesc(dims[i], i > 0);
        auto entry = std::make_unique<Cached>();
        entry->prim = dnnl::convolution_forward(pd);
        entry->weights = pd.weights_desc();
        PrepareWeights(entry.get(), Hwio(dims[i].wei), true);
        c = entry.get();
        gCache[key] = std::move(entry);
      }
      prims.push_back(c);
    }
    auto& s = Stream();
    memory dst(Nhwc(dims[0].dst), Engine(), out);
    for (int i = 0; i < parts; i++) {
      Cached* c = prims[i];
      memory src(Nhwc(dims[i].src), Engine(), const_cast<float*>(x[i]));
      memory wUser(Hwio(dims[i].wei), Engine(), const_cast<float*>(w[i]));
      if (c->reorder) c->toBlocked.execute(s, {{DNNL_ARG_FROM, wUser}, {DNNL_ARG_TO, *c->blocked}});
      c->prim.execute(s, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, c->reorder ? *c->blocked : wUser}, {DNNL_ARG_DST, dst}});
    }
    s.wait();
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

bool DnnlConvInputGrad(const float* dy, const float* w, float* dx, const ConvGeometry& g) {
  if (!gEnabled) return false;
  std::lock_guard<std::mutex> lock(gMutex);
  try {
    Dims d;
    if (!Describe(g, g.c, &d)) return false;
    const Key key = MakeKey(2, g, g.c);
    Cached* c = Lookup(key);
    if (!c) {
      auto hint = ForwardDesc(d, false);
      dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, Nhwc(d.src), Any(d.wei),
                                                 Nhwc(d.dst), d.strides, d.dilates, d.padL, d.padR);
      dnnl::convolution_backward_data::primitive_desc pd(desc, Engine(), hint);
      auto entry = std::make_unique<Cached>();
      entry->prim = dnnl::convolution_backward_data(pd);
      entry->weights = pd.weights_desc();
      PrepareWeights(entry.get(), Hwio(d.wei), true);
      c = entry.get();
      gCache[key] = std::move(entry);
    }
    auto& s = Stream();
    memory diffDst(Nhwc(d.dst), Engine(), const_cast<float*>(dy));
    memory wUser(Hwio(d.wei), Engine(), const_cast<float*>(w));
    memory diffSrc(Nhwc(d.src), Engine(), dx);
    if (c->reorder) c->toBlocked.execute(s, {{DNNL_ARG_FROM, wUser}, {DNNL_ARG_TO, *c->blocked}});
    c->prim.execute(s, {{DNNL_ARG_DIFF_DST, diffDst},
                        {DNNL_ARG_WEIGHTS, c->reorder ? *c->blocked : wUser},
                        {DNNL_ARG_DIFF_SRC, diffSrc}});
    s.wait();
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

bool DnnlConvFilterGrad(const float* x, const float* dy, float* dw, const ConvGeometry& g) {
  if (!gEnabled) return false;
  std::lock_guard<std::mutex> lock(gMutex);
  try {
    Dims d;
    if (!Describe(g, g.c, &d)) return false;
    const Key key = MakeKey(3, g, g.c);
    Cached* c = Lookup(key);
    if (!c) {
      auto hint = ForwardDesc(d, false);
      dnnl::convolution_backward_weights::desc desc(dnnl::algorithm::convolution_direct, Nhwc(d.src), Any(d.wei),
                                                    Nhwc(d.dst), d.strides, d.dilates, d.padL, d.padR);
      dnnl::convolution_backward_weights::primitive_desc pd(desc, Engine(), hint);
      auto entry = std::make_unique<Cached>();
      entry->prim = dnnl::convolution_backward_weights(pd);
      entry->weights = pd.diff_weights_desc();
      PrepareWeights(entry.get(), Hwio(d.wei), false);
      c = entry.get();
      gCache[key] = std::move(entry);
    }
    auto& s = Stream();
    memory src(Nhwc(d.src), Engine(), const_cast<float*>(x));
    memory diffDst(Nhwc(d.dst), Engine(), const_cast<float*>(dy));
    memory dwUser(Hwio(d.wei), Engine(), dw);
    c->prim.execute(s, {{DNNL_ARG_SRC, src},
                        {DNNL_ARG_DIFF_DST, diffDst},
                        {DNNL_ARG_DIFF_WEIGHTS, c->reorder ? *c->blocked : dwUser}});
    if (c->reorder) c->fromBlocked.execute(s, {{DNNL_ARG_FROM, *c->blocked}, {DNNL_ARG_TO, dwUser}});
    s.wait();
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

}  // namespace fj

#else  // no oneDNN in this build

namespace fj {
bool DnnlAvailable() { return false; }
void DnnlEnable(bool) {}
void DnnlSetThreads(int) {}
bool DnnlConvForward(int, const float* const*, const float* const*, const int64_t*, float*, const ConvGeometry&) {
  return false;
}
bool DnnlConvInputGrad(const float*, const float*, float*, const ConvGeometry&) { return false; }
bool DnnlConvFilterGrad(const float*, const float*, float*, const ConvGeometry&) { return false; }
}  // namespace fj

#endif
