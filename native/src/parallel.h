// A small persistent thread pool for the native kernels. Workers block on a condition variable
// between jobs (no spinning): several training processes often share the cores (a simulated
// federation runs three sites on one machine), and spin-waiting pools collapse under that.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>

namespace fj {

/** Sets the number of threads (the caller counts as one); 1 runs everything inline. */
void SetThreads(int n);
int Threads();

/**
 * Runs fn(t, begin, end) over [0, total) split into at most Threads() contiguous ranges, one per
 * thread t (t = 0 on the calling thread). Work under `minWork` (an estimate in arbitrary units,
 * e.g. multiply-adds or bytes) stays on the calling thread. Returns the number of ranges used.
 */
int ParallelFor(int64_t total, double work, const std::function<void(int, int64_t, int64_t)>& fn);

/** Below this much work a kernel does not wake the pool. */
constexpr double kParallelWork = 1 << 17;

}  // namespace fj
