// IoThread: an io_context with its own thread(s), for users of the HTTP client that do not
// have an io_context to lend (tests, command-line tools). The daemon runs its own io_context
// and passes that to HttpClient::Create instead.
#pragma once

#include <memory>
#include <thread>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace tracepager::integrations::http {

class IoThread {
 public:
  // Starts `threads` threads running the context until destruction. REQUIRES: threads >= 1.
  explicit IoThread(int threads = 1);
  // Stops the context and joins the threads. Clients on it must be destroyed first and their
  // callbacks must have run (handlers still queued are destroyed without running).
  ~IoThread();

  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  boost::asio::io_context& context();

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::vector<std::thread> threads_;
};

}  // namespace tracepager::integrations::http
