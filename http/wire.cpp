#include "http/wire.hpp"

#include <boost/beast/http/status.hpp>

namespace phonon::http {

void append_status_line(std::string& out, unsigned version, unsigned status) {
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  auto reason = boost::beast::http::obsolete_reason(
    static_cast<boost::beast::http::status>(status));
  out.append(reason.data(), reason.size());
  out += "\r\n";
}

void append_field(std::string& out, std::string_view name,
                  std::string_view value) {
  out.append(name);
  out += ": ";
  out.append(value);
  out += "\r\n";
}

void append_connection(std::string& out, unsigned version, bool keep_alive) {
  if (version >= 11 && !keep_alive)
    append_field(out, "Connection", "close");
  else if (version < 11 && keep_alive)
    append_field(out, "Connection", "keep-alive");
}

std::string file_fields(const file_plan& plan) {
  std::string out;
  out.reserve(192);
  for (const auto& [name, value] : plan.headers)
    append_field(out, name, value);
  if (plan.status != 304)
    append_field(out, "Content-Length", std::to_string(plan.length));
  return out;
}

} // namespace phonon::http
