// An Outbox in memory, for tests and for running without a state directory. Nothing survives
// the process. Not thread-safe (Delivery serialises its calls).
#pragma once

#include <map>

#include "integrations/delivery/outbox.h"

namespace tracepager::integrations::delivery {

class MemoryOutbox final : public Outbox {
 public:
  Result<std::vector<int64_t>> Commit(const std::vector<OutboxEntry>& updates,
                                      const std::vector<OutboxEntry>& adds) override;
  Result<std::vector<OutboxEntry>> LoadPending() override;
  Result<bool> HasSubmission(std::string_view submission) override;
  Result<std::vector<OutboxEntry>> LoadGroup(std::string_view group) override;
  Result<std::vector<OutboxEntry>> LoadUnresolvedTriggers(std::string_view alert_identity) override;
  Result<size_t> Prune(int64_t cutoff_ns, int64_t open_cutoff_ns) override;

  // Every entry, by id (tests inspect them).
  const std::map<int64_t, OutboxEntry>& entries() const { return entries_; }
  // The next Commit fails with kUnavailable (a full disk), once.
  void FailNextCommit() { fail_next_commit_ = true; }

 private:
  std::map<int64_t, OutboxEntry> entries_;
  int64_t next_id_ = 1;
  bool fail_next_commit_ = false;
};

}  // namespace tracepager::integrations::delivery
