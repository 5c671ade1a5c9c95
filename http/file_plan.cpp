#include "http/file_plan.hpp"

#include <algorithm>

#include <cctype>
#include <cstdio>
#include <ctime>

namespace phonon::http {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

/// Parses a run of digits; false on anything else or overflow.
bool parse_u64(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19)
    return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return false;
    out = out * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

enum class range_result { none, satisfiable, unsatisfiable };

/// Parses "bytes=a-b", "bytes=a-" or "bytes=-n" against `size`.
range_result parse_range(std::string_view header, uint64_t size,
                         uint64_t& first, uint64_t& last) {
  header = trim(header);
  constexpr std::string_view unit = "bytes=";
  if (header.size() < unit.size())
    return range_result::none;
  for (size_t i = 0; i < unit.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != unit[i])
      return range_result::none;
  auto spec = trim(header.substr(unit.size()));
  // Several ranges: answering with the whole file is allowed and simple.
  if (spec.find(',') != std::string_view::npos)
    return range_result::none;
  auto dash = spec.find('-');
  if (dash == std::string_view::npos)
    return range_result::none;
  auto a = trim(spec.substr(0, dash));
  auto b = trim(spec.substr(dash + 1));
  uint64_t x = 0;
  uint64_t y = 0;
  if (a.empty()) {
    if (!parse_u64(b, y))
      return range_result::none;
    if (y == 0 || size == 0)
      return range_result::unsatisfiable;
    first = y >= size ? 0 : size - y;
    last = size - 1;
    return range_result::satisfiable;
  }
  if (!parse_u64(a, x))
    return range_result::none;
  if (b.empty()) {
    y = size == 0 ? 0 : size - 1;
  } else if (!parse_u64(b, y) || y < x) {
    return range_result::none;
  }
  if (x >= size)
    return range_result::unsatisfiable;
  first = x;
  last = y >= size ? size - 1 : y;
  return range_result::satisfiable;
}


// -- HTTP dates (RFC 9110 section 5.6.7) --------------------------------------

constexpr std::string_view day_names[] = {"Sun", "Mon", "Tue", "Wed",
                                          "Thu", "Fri", "Sat"};

constexpr std::string_view long_day_names[] = {
  "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
  "Saturday"};

constexpr std::string_view month_names[] = {"Jan", "Feb", "Mar", "Apr",
                                            "May", "Jun", "Jul", "Aug",
                                            "Sep", "Oct", "Nov", "Dec"};

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// days_from_civil): exact for every year, no time_t or locale involved.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  auto yoe = static_cast<unsigned>(y - era * 400);
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

/// The inverse of days_from_civil.
void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  auto doe = static_cast<unsigned>(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2);
}

int64_t floor_div(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

bool leap_year(int64_t y) {
  return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

unsigned days_in_month(int64_t y, unsigned m) {
  static constexpr unsigned days[] = {31, 28, 31, 30, 31, 30,
                                      31, 31, 30, 31, 30, 31};
  return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

/// The fields of an HTTP-date before they become Unix seconds.
struct date_fields {
  int64_t year = 0;
  unsigned month = 0; // 1..12
  unsigned day = 0;
  unsigned hour = 0;
  unsigned minute = 0;
  unsigned second = 0;
};

int64_t to_unix(const date_fields& f) {
  return days_from_civil(f.year, f.month, f.day) * 86400
         + int64_t{f.hour} * 3600 + int64_t{f.minute} * 60 + f.second;
}

/// Reads an HTTP-date front to back. Every method consumes what it matched
/// and returns false, leaving the text in an unspecified place, when the
/// text does not match.
class date_reader {
public:
  explicit date_reader(std::string_view text) : s_(text) {
    // nop
  }

  bool done() const {
    return s_.empty();
  }

  bool literal(std::string_view x) {
    if (s_.substr(0, x.size()) != x)
      return false;
    s_.remove_prefix(x.size());
    return true;
  }

  /// Exactly `n` ASCII digits.
  bool digits(size_t n, unsigned& out) {
    if (s_.size() < n)
      return false;
    out = 0;
    for (size_t i = 0; i < n; ++i) {
      char c = s_[i];
      if (c < '0' || c > '9')
        return false;
      out = out * 10 + static_cast<unsigned>(c - '0');
    }
    s_.remove_prefix(n);
    return true;
  }

  /// One of `names` (case-sensitive, as RFC 9110 says HTTP-date is);
  /// `index` is its position.
  template <size_t N>
  bool name(const std::string_view (&names)[N], unsigned& index) {
    for (size_t i = 0; i < N; ++i)
      if (literal(names[i])) {
        index = static_cast<unsigned>(i);
        return true;
      }
    return false;
  }

  /// time-of-day = hour ":" minute ":" second (second 60 is a leap second).
  bool time_of_day(date_fields& f) {
    return digits(2, f.hour) && literal(":") && digits(2, f.minute)
           && literal(":") && digits(2, f.second) && f.hour < 24
           && f.minute < 60 && f.second <= 60;
  }

private:
  std::string_view s_;
};

bool valid_date(const date_fields& f) {
  return f.month >= 1 && f.month <= 12 && f.day >= 1
         && f.day <= days_in_month(f.year, f.month);
}

/// IMF-fixdate after its day name: ", 06 Nov 1994 08:49:37 GMT".
bool read_imf_fixdate(date_reader& in, date_fields& f) {
  unsigned year = 0;
  if (!(in.literal(", ") && in.digits(2, f.day) && in.literal(" ")
        && in.name(month_names, f.month) && in.literal(" ")
        && in.digits(4, year) && in.literal(" ") && in.time_of_day(f)
        && in.literal(" GMT")))
    return false;
  f.month += 1;
  f.year = year;
  return true;
}

/// rfc850-date after its day name: ", 06-Nov-94 08:49:37 GMT"; the year is
/// left as its two digits.
bool read_rfc850_date(date_reader& in, date_fields& f) {
  unsigned year = 0;
  if (!(in.literal(", ") && in.digits(2, f.day) && in.literal("-")
        && in.name(month_names, f.month) && in.literal("-")
        && in.digits(2, year) && in.literal(" ") && in.time_of_day(f)
        && in.literal(" GMT")))
    return false;
  f.month += 1;
  f.year = year;
  return true;
}

/// asctime-date after its day name: " Nov  6 08:49:37 1994" (the day is two
/// digits or a space and one digit).
bool read_asctime_date(date_reader& in, date_fields& f) {
  unsigned year = 0;
  if (!(in.literal(" ") && in.name(month_names, f.month) && in.literal(" ")))
    return false;
  if (!(in.literal(" ") ? in.digits(1, f.day) : in.digits(2, f.day)))
    return false;
  if (!(in.literal(" ") && in.time_of_day(f) && in.literal(" ")
        && in.digits(4, year)))
    return false;
  f.month += 1;
  f.year = year;
  return true;
}

/// RFC 9110: a two-digit RFC 850 year that would put the date more than
/// 50 years after `now` means the most recent past year with those digits.
/// So the year is the latest one ending in those digits whose date is at
/// most 50 years after `now`.
void resolve_two_digit_year(date_fields& f, std::time_t now) {
  auto now_secs = static_cast<int64_t>(now);
  auto now_days = floor_div(now_secs, 86400);
  int64_t now_year = 0;
  unsigned now_month = 0;
  unsigned now_day = 0;
  civil_from_days(now_days, now_year, now_month, now_day);
  // Now plus 50 calendar years (29 Feb counts on as 1 Mar).
  auto limit = days_from_civil(now_year + 50, now_month, now_day) * 86400
               + (now_secs - now_days * 86400);
  auto last = now_year + 50;
  auto year = floor_div(last, 100) * 100 + f.year;
  if (year > last)
    year -= 100;
  f.year = year;
  if (valid_date(f) && to_unix(f) > limit)
    f.year -= 100;
}

} // namespace

void append_inline_disposition(std::string& out, int64_t user,
                               int64_t phrase, std::string_view format) {
  out += "inline; filename=\"";
  out += std::to_string(user);
  out += '-';
  out += std::to_string(phrase);
  out += '.';
  out += format;
  out += '"';
}

std::string inline_disposition(int64_t user, int64_t phrase,
                               std::string_view format) {
  std::string r;
  append_inline_disposition(r, user, phrase, format);
  return r;
}

bool etag_matches(std::string_view list, const std::string& etag) {
  list = trim(list);
  if (list == "*")
    return true;
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = trim(list.substr(0, comma));
    if (item.substr(0, 2) == "W/")
      item.remove_prefix(2);
    if (item == etag)
      return true;
    if (comma == std::string_view::npos)
      break;
    list.remove_prefix(comma + 1);
  }
  return false;
}


std::string http_date(std::time_t unix_seconds) {
  // What an IMF-fixdate can say: years 0001 to 9999. Clamping also keeps the arithmetic below from overflowing for
  // any time_t (a fuzz finding).
  auto secs = std::clamp<int64_t>(static_cast<int64_t>(unix_seconds),
                                  INT64_C(-62135596800),
                                  INT64_C(253402300799));
  auto days = floor_div(secs, 86400);
  auto in_day = secs - days * 86400;
  int64_t year = 0;
  unsigned month = 0;
  unsigned day = 0;
  civil_from_days(days, year, month, day);
  // 1970-01-01 was a Thursday.
  auto weekday = static_cast<size_t>(((days % 7) + 11) % 7);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.3s, %02u %.3s %04lld %02d:%02d:%02d GMT",
                day_names[weekday].data(), day, month_names[month - 1].data(),
                static_cast<long long>(year), static_cast<int>(in_day / 3600),
                static_cast<int>(in_day / 60 % 60),
                static_cast<int>(in_day % 60));
  return buf;
}

std::optional<int64_t> parse_http_date(std::string_view text,
                                       std::time_t now) {
  date_reader in{trim(text)};
  date_fields f;
  unsigned weekday = 0;
  bool ok = false;
  // The day name tells the form: "Sun," IMF-fixdate, "Sunday," RFC 850,
  // "Sun " asctime. Long names first: "Sun" is a prefix of "Sunday".
  if (in.name(long_day_names, weekday)) {
    ok = read_rfc850_date(in, f);
    if (ok)
      resolve_two_digit_year(f, now);
  } else if (in.name(day_names, weekday)) {
    date_reader imf = in;
    ok = read_imf_fixdate(imf, f);
    if (ok)
      in = imf;
    else
      ok = read_asctime_date(in, f);
  }
  // The weekday is not checked against the date: RFC 9110 does not ask
  // recipients to, and strptime() before did not either.
  if (!ok || !in.done() || !valid_date(f))
    return std::nullopt;
  return to_unix(f);
}

std::optional<int64_t> parse_http_date(std::string_view text) {
  return parse_http_date(text, std::time(nullptr));
}

file_plan plan_file(const actors::file_ref& file, const file_request& req) {
  file_plan plan;
  plan.headers = {
    {"ETag", file.etag},
    {"Last-Modified", http_date(file.mtime)},
    {"Accept-Ranges", "bytes"},
    // Stored files never change under one ETag (a new upload gets a new
    // revision), but clients should revalidate so a replace shows up.
    {"Cache-Control", "private, no-cache"},
  };
  bool not_modified = false;
  if (!req.if_none_match.empty()) {
    not_modified = etag_matches(req.if_none_match, file.etag);
  } else if (!req.if_modified_since.empty()) {
    // A date that does not parse is ignored (RFC 9110 section 13.1.3).
    auto since = parse_http_date(req.if_modified_since);
    not_modified = since && file.mtime <= *since;
  }
  if (not_modified) {
    plan.status = 304;
    plan.send_body = false;
    return plan;
  }
  plan.headers.emplace_back("Content-Type", file.content_type);
  plan.length = file.size;
  bool use_range = !req.range.empty();
  if (use_range && !req.if_range.empty()) {
    // A date that does not parse cannot validate anything: the whole file
    // is sent, as for a validator that does not match.
    auto ir = trim(req.if_range);
    if (ir.empty()) {
      use_range = false;
    } else if (ir.front() == '"') {
      use_range = ir == file.etag;
    } else {
      auto date = parse_http_date(ir);
      use_range = date && *date >= file.mtime;
    }
  }
  if (use_range) {
    uint64_t first = 0;
    uint64_t last = 0;
    switch (parse_range(req.range, file.size, first, last)) {
      case range_result::none:
        break;
      case range_result::unsatisfiable:
        plan.status = 416;
        plan.send_body = false;
        plan.length = 0;
        plan.headers.emplace_back("Content-Range",
                                  "bytes */" + std::to_string(file.size));
        return plan;
      case range_result::satisfiable:
        plan.status = 206;
        plan.offset = first;
        plan.length = last - first + 1;
        plan.headers.emplace_back("Content-Range",
                                  "bytes " + std::to_string(first) + "-"
                                    + std::to_string(last) + "/"
                                    + std::to_string(file.size));
        break;
    }
  }
  plan.send_body = !req.head;
  return plan;
}

} // namespace phonon::http
