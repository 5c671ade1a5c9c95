#pragma once

#include <string_view>

#include <boost/beast/http/message.hpp>

#include "http/admission.hpp"

namespace phonon::http {

/// A Beast string as a std::string_view (same bytes, no copy).
inline std::string_view view(boost::beast::string_view text) {
  return {text.data(), text.size()};
}

/// The facts admit() needs from a parsed request head. The views point into
/// `req`, which must outlive their use. Shared by the session and the head
/// fuzzer, so that the fuzzer admits exactly what the server would.
inline head_facts facts_of(
  const boost::beast::http::request_header<>& req) {
  namespace bhttp = boost::beast::http;
  head_facts facts;
  facts.method = view(req.method_string());
  facts.target = view(req.target());
  facts.version = req.version();
  facts.content_type = view(req[bhttp::field::content_type]);
  for (auto& f : req) {
    if (f.name() == bhttp::field::host)
      ++facts.host_count;
    else if (f.name() == bhttp::field::content_length)
      facts.content_length.push_back(view(f.value()));
    else if (f.name() == bhttp::field::transfer_encoding)
      facts.transfer_encoding.push_back(view(f.value()));
  }
  return facts;
}

} // namespace phonon::http
