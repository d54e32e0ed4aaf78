// A persistent pool of worker threads for the kernels. parallel_for hands out task
// indices from an atomic counter (dynamic scheduling), the calling thread works too, and
// it returns when every task is done. Calls from inside a task run inline (no nesting);
// concurrent callers from different threads are serialised.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace bnn {

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Total threads that run tasks, the caller included (>= 1).
  size_t threads() const { return threads_; }
  // Resizes the pool; n == 0 means std::thread::hardware_concurrency().
  void set_threads(size_t n);

  // Runs fn(task) for every task in [0, tasks), on at most max_threads threads
  // (0 = all). Rethrows the first exception a task threw, after all tasks finished.
  template <class Fn>
  void parallel_for(size_t tasks, Fn&& fn, size_t max_threads = 0) {
    run(tasks, max_threads, &invoke<std::remove_reference_t<Fn>>, &fn);
  }

  // The process-wide pool the kernels use (hardware_concurrency threads at first).
  static ThreadPool& global();
  static size_t default_threads();

 private:
  using Trampoline = void (*)(void*, size_t);
  template <class Fn>
  static void invoke(void* fn, size_t task) { (*static_cast<Fn*>(fn))(task); }

  void run(size_t tasks, size_t max_threads, Trampoline call, void* fn);
  void start_workers(size_t n);
  void stop_workers();
  void worker_loop(size_t index, unsigned long seen);
  void work_on_current_job();

  size_t threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one parallel_for at a time

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  bool stopping_ = false;
  unsigned long generation_ = 0;
  size_t job_workers_ = 0;   // workers that take part in the current job
  size_t busy_workers_ = 0;  // of those, still running it
  Trampoline call_ = nullptr;
  void* fn_ = nullptr;
  size_t tasks_ = 0;
  std::atomic<size_t> next_{0};
  std::exception_ptr error_;
};

}  // namespace bnn
