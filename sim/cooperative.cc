#include "sim/cooperative.h"

#include <exception>

namespace etc::sim {
namespace {

thread_local CooperativeThread* current_program = nullptr;

}  // namespace

CooperativeThread::CooperativeThread(std::function<void()> body) : body_(std::move(body)) {
  thread_ = std::thread([this] { Main(); });
}

CooperativeThread::~CooperativeThread() {
  if (!finished_) {
    cancelled_ = true;
    Resume();
  }
  thread_.join();
}

void CooperativeThread::Main() {
  current_program = this;
  resume_.acquire();
  if (!cancelled_) {
    try {
      body_();
    } catch (const ProgramCancelled&) {
      // The run ended while the program waited.
    } catch (const std::exception& e) {
      uncaught_ = e.what();
    } catch (...) {
      uncaught_ = "an exception that is not a std::exception";
    }
  }
  finished_ = true;
  yielded_.release();
}

void CooperativeThread::Resume() {
  if (finished_) return;
  resume_.release();
  yielded_.acquire();
}

void CooperativeThread::Block() {
  yielded_.release();
  resume_.acquire();
  if (cancelled_) throw ProgramCancelled{};
}

CooperativeThread* CooperativeThread::Current() { return current_program; }

}  // namespace etc::sim
