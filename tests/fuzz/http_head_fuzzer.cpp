// libFuzzer target: request heads through Beast's header parser, then the
// edge's pure decisions (admit, match_route, parse_id), checking that they
// never throw and that the decision is consistent with itself.
//
// fuzz-sources: http/admission.cpp http/router.cpp http/ids.cpp

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "http/admission.hpp"
#include "http/head_facts_of.hpp"
#include "http/ids.hpp"
#include "http/router.hpp"

namespace {

namespace bhttp = boost::beast::http;
using namespace phonon::http;

void check(bool ok) {
  if (!ok)
    std::abort();
}

void check_ids(std::string_view text) {
  if (auto id = parse_id(text)) {
    check(*id > 0);
    check(std::to_string(*id) == text);
  }
}

void check_admission(const head_facts& facts, const admission& a) {
  if (a.refused) {
    check(a.refused->status >= 400 && a.refused->status < 500);
    check(!a.refused->message.empty());
    check(a.body != body_kind::upload);
    if (a.refused->close)
      check(a.body == body_kind::none);
    if (a.refused->status == 405)
      check(!a.refused->allow.empty());
  } else {
    check(a.where.kind != route_kind::not_found);
    check(a.where.kind != route_kind::bad_id);
    check(allows(a.where, facts.method));
    check(match_route(a.path).kind == a.where.kind);
    if (a.where.kind == route_kind::recording
        || a.where.kind == route_kind::audio)
      check(a.where.user_id > 0 && a.where.phrase_id > 0);
    if (a.body == body_kind::upload)
      check(a.where.kind == route_kind::recording
            && (facts.method == "POST" || facts.method == "PUT"));
    if (a.content_length && a.body != body_kind::upload)
      check(*a.content_length <= small_body_limit);
  }
  check(!(a.chunked && a.content_length));
  if (a.body == body_kind::small)
    check(a.body_limit == small_body_limit);
  if (a.chunked)
    check(!facts.transfer_encoding.empty() && facts.version >= 11);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input{reinterpret_cast<const char*>(data), size};
  // The raw bytes as a target and as an id, too.
  if (auto parts = split_request_target(input)) {
    auto r = match_route(parts->first);
    if (r.kind == route_kind::recording || r.kind == route_kind::audio)
      check(r.user_id > 0 && r.phrase_id > 0);
  }
  check_ids(input);

  bhttp::request_parser<bhttp::empty_body> parser;
  parser.eager(false);
  parser.header_limit(16 * 1024);
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  boost::beast::error_code ec;
  auto rest = boost::asio::const_buffer{data, size};
  while (rest.size() > 0 && !parser.is_header_done()) {
    auto used = parser.put(rest, ec);
    rest += used;
    if (ec || used == 0)
      break;
  }
  if (ec || !parser.is_header_done())
    return 0;
  auto& req = parser.get();
  auto facts = facts_of(req);
  for (uint64_t max_upload : {uint64_t{1}, uint64_t{10} * 1024 * 1024,
                              std::numeric_limits<uint64_t>::max() / 2}) {
    admission_limits limits;
    limits.max_upload_size = max_upload;
    auto a = admit(facts, limits);
    check_admission(facts, a);
    // What the parser framed agrees with what admit() decided.
    if (!a.refused && a.chunked)
      check(parser.chunked());
    if (!a.refused && a.content_length) {
      auto framed = parser.content_length();
      check(framed && *framed == *a.content_length);
    }
  }
  auto [path, query] = split_target(facts.target);
  (void) query;
  auto r = match_route(path);
  (void) r;
  return 0;
}
