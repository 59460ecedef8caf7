#include "integrations/delivery/memory_outbox.h"

#include <fmt/format.h>

namespace tracepager::integrations::delivery {

Result<std::vector<int64_t>> MemoryOutbox::Commit(const std::vector<OutboxEntry>& updates,
                                                  const std::vector<OutboxEntry>& adds) {
  if (fail_next_commit_) {
    fail_next_commit_ = false;
    return Error::Unavailable("memory outbox: commit refused (test)");
  }
  for (const OutboxEntry& u : updates) {
    if (!entries_.count(u.id)) {
      return Error::Internal(fmt::format("memory outbox: no entry {} to update", u.id));
    }
  }
  for (const OutboxEntry& u : updates) {
    entries_[u.id].CopyProgressFrom(u);
  }
  std::vector<int64_t> ids;
  for (OutboxEntry a : adds) {
    a.id = next_id_++;
    ids.push_back(a.id);
    entries_[a.id] = std::move(a);
  }
  return ids;
}

Result<std::vector<OutboxEntry>> MemoryOutbox::LoadPending() {
  std::vector<OutboxEntry> out;
  for (const auto& [id, e] : entries_) {
    if (e.state == EntryState::kPending) out.push_back(e);
  }
  return out;
}

Result<bool> MemoryOutbox::HasSubmission(std::string_view submission) {
  for (const auto& [id, e] : entries_) {
    if (e.submission == submission) return true;
  }
  return false;
}

Result<std::vector<OutboxEntry>> MemoryOutbox::LoadGroup(std::string_view group) {
  std::vector<OutboxEntry> out;
  for (const auto& [id, e] : entries_) {
    if (e.group == group) out.push_back(e);
  }
  return out;
}

Result<std::vector<OutboxEntry>> MemoryOutbox::LoadUnresolvedTriggers(
    std::string_view alert_identity) {
  std::vector<OutboxEntry> out;
  for (const auto& [id, e] : entries_) {
    if (e.page.alert_identity == alert_identity && e.page.action == Page::Action::kTrigger &&
        !e.resolved) {
      out.push_back(e);
    }
  }
  return out;
}

Result<size_t> MemoryOutbox::Prune(int64_t cutoff_ns, int64_t open_cutoff_ns) {
  size_t n = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const OutboxEntry& e = it->second;
    const bool open =
        e.state == EntryState::kSent && e.page.action == Page::Action::kTrigger && !e.resolved;
    const bool drop = e.final() && e.finished_ns < (open ? open_cutoff_ns : cutoff_ns);
    if (drop) {
      it = entries_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

}  // namespace tracepager::integrations::delivery
