#include "parallel.h"

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace fj {
namespace {

class Pool {
 public:
  ~Pool() { Resize(1); }

  int size() const { return size_; }

  void Resize(int n) {
    n = std::max(1, std::min(n, 64));
    if (n == size_) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      generation_++;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    stop_ = false;
    size_ = n;
    for (int t = 1; t < n; t++) workers_.emplace_back([this, t] { Loop(t); });
  }

  // Runs job(t) on threads 0..parts-1 (0 = caller) and waits for all of them.
  void Run(int parts, const std::function<void(int)>& job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &job;
      parts_ = parts;
      pending_ = parts - 1;
      generation_++;
    }
    wake_.notify_all();
    job(0);
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void Loop(int t) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        if (t >= parts_) continue;
        job = job_;
      }
      (*job)(t);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (--pending_ == 0) done_.notify_one();
      }
    }
  }

  std::mutex mu_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* job_ = nullptr;
  uint64_t generation_ = 0;
  int parts_ = 0, pending_ = 0, size_ = 1;
  bool stop_ = false;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

void SetThreads(int n) { pool().Resize(n); }
int Threads() { return pool().size(); }

int ParallelFor(int64_t total, double work, const std::function<void(int, int64_t, int64_t)>& fn) {
  const int threads = static_cast<int>(std::min<int64_t>(pool().size(), total));
  if (total <= 0) return 0;
  if (threads < 2 || work < kParallelWork) {
    fn(0, 0, total);
    return 1;
  }
  const int64_t per = (total + threads - 1) / threads;
  const int parts = static_cast<int>((total + per - 1) / per);
  pool().Run(parts, [&](int t) {
    const int64_t b = t * per, e = std::min(total, b + per);
    if (b < e) fn(t, b, e);
  });
  return parts;
}

}  // namespace fj
