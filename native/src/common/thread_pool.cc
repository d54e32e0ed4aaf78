#include "thread_pool.h"

#include <algorithm>

namespace bnn {

namespace {
thread_local bool in_task = false;
}

size_t ThreadPool::default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

ThreadPool& ThreadPool::global() {
  static ThreadPool pool(default_threads());
  return pool;
}

ThreadPool::ThreadPool(size_t threads) { start_workers(threads == 0 ? default_threads() : threads); }

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::set_threads(size_t n) {
  if (n == 0) n = default_threads();
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  if (n == threads_) return;
  stop_workers();
  start_workers(n);
}

// Called with no job running (constructor, or set_threads under run_mutex_). Each new
// worker starts from the current generation, passed by value: reading generation_ in the
// new thread could see a later job's generation and miss that job (its caller would then
// wait forever), and starting from 0 would run a stale job and decrement busy_workers_
// once too often.
void ThreadPool::start_workers(size_t n) {
  unsigned long generation;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    threads_ = std::max<size_t>(1, n);
    stopping_ = false;
    generation = generation_;
  }
  for (size_t i = 1; i < threads_; ++i) {
    workers_.emplace_back([this, i, generation] { worker_loop(i, generation); });
  }
}

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void ThreadPool::work_on_current_job() {
  in_task = true;
  for (;;) {
    const size_t task = next_.fetch_add(1, std::memory_order_relaxed);
    if (task >= tasks_) break;
    try {
      call_(fn_, task);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }
  in_task = false;
}

void ThreadPool::worker_loop(size_t index, unsigned long seen) {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      if (index > job_workers_) continue;  // not needed for this job
    }
    work_on_current_job();
    std::lock_guard<std::mutex> lock(mutex_);
    if (--busy_workers_ == 0) done_.notify_one();
  }
}

void ThreadPool::run(size_t tasks, size_t max_threads, Trampoline call, void* fn) {
  if (tasks == 0) return;
  if (in_task) {  // a nested call runs inline
    for (size_t t = 0; t < tasks; ++t) call(fn, t);
    return;
  }
  // threads_ is read under run_mutex_ so a concurrent set_threads cannot change the
  // worker count between choosing `use` and waiting for that many workers.
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  size_t use = threads_;
  if (max_threads != 0) use = std::min(use, max_threads);
  use = std::min(use, tasks);
  if (use <= 1) {  // inline, marked as a task so nested calls do not take run_mutex_ again
    in_task = true;
    try {
      for (size_t t = 0; t < tasks; ++t) call(fn, t);
    } catch (...) {
      in_task = false;
      throw;
    }
    in_task = false;
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    call_ = call;
    fn_ = fn;
    tasks_ = tasks;
    next_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    job_workers_ = use - 1;
    busy_workers_ = use - 1;
    ++generation_;
  }
  wake_.notify_all();
  work_on_current_job();
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return busy_workers_ == 0; });
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace bnn
