// libFuzzer target: the intake log's segment reader (daemon/intake.h DecodeIntakeSegment), which
// reads whatever a crash, a disk or a person left in <state_dir>/intake at start. Checks the
// reader's contract: it never reads past the input, the records it returns end where it says,
// their sequence numbers strictly increase, and each one is exactly the bytes the encoder writes
// for it (so what is replayed is what was acknowledged).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "daemon/intake.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  tracepager::daemon::IntakeSegmentContents c = tracepager::daemon::DecodeIntakeSegment(bytes);
  if (c.valid_bytes > size) std::abort();
  if (c.valid_bytes < size && c.stop_reason.empty()) std::abort();
  size_t at = 0;
  uint64_t last_seq = 0;
  for (const tracepager::daemon::IntakeRecord& r : c.records) {
    if (r.seq <= last_seq) std::abort();
    last_seq = r.seq;
    std::string encoded = tracepager::daemon::EncodeIntakeRecord(r.seq, r.batch);
    if (bytes.substr(at, encoded.size()) != encoded) std::abort();
    at += encoded.size();
  }
  if (at != c.valid_bytes) std::abort();
  return 0;
}
