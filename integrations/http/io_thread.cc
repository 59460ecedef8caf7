#include "integrations/http/io_thread.h"

#include <pthread.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>

namespace tracepager::integrations::http {

namespace net = boost::asio;

struct IoThread::State {
  net::io_context io;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
};

IoThread::IoThread(int threads) : state_(std::make_unique<State>()) {
  state_->work.emplace(state_->io.get_executor());
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([state = state_.get()] {
      pthread_setname_np(pthread_self(), "tp-client-io");
      state->io.run();
    });
  }
}

IoThread::~IoThread() {
  // Let queued work (a client's shutdown, the callbacks it runs) finish before stopping.
  state_->work.reset();
  for (auto& t : threads_) t.join();
}

net::io_context& IoThread::context() { return state_->io; }

}  // namespace tracepager::integrations::http
