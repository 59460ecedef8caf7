// CivilDate: a calendar date (YYYY-MM-DD) without a time zone, for `reviewed` dates.
// routing/ has no clock: "today" always comes in from the caller.
#pragma once

#include <compare>
#include <optional>
#include <string>
#include <string_view>

namespace tracepager::routing {

struct CivilDate {
  int year = 1970;
  int month = 1;  // 1..12
  int day = 1;    // 1..days in month

  // Parses exactly "YYYY-MM-DD" (a real date, years 1900..9999); nullopt otherwise.
  static std::optional<CivilDate> Parse(std::string_view text);
  // Days since 1970-01-01 (negative before).
  long DaysSinceEpoch() const;
  static CivilDate FromDaysSinceEpoch(long days);
  std::string ToString() const;  // "YYYY-MM-DD"

  friend auto operator<=>(const CivilDate&, const CivilDate&) = default;
};

// b - a in days.
inline long DaysBetween(const CivilDate& a, const CivilDate& b) {
  return b.DaysSinceEpoch() - a.DaysSinceEpoch();
}

}  // namespace tracepager::routing
