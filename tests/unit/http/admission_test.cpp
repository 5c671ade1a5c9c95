#include "http/admission.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <string>
#include <vector>

using namespace phonon::http;

namespace {

head_facts get(std::string_view target) {
  head_facts h;
  h.method = "GET";
  h.target = target;
  h.version = 11;
  h.host_count = 1;
  return h;
}

head_facts post(std::string_view target) {
  auto h = get(target);
  h.method = "POST";
  return h;
}

admission run(const head_facts& h, uint64_t max_upload = 1000) {
  admission_limits limits;
  limits.max_upload_size = max_upload;
  return admit(h, limits);
}

/// Status of the refusal, 0 when admitted.
unsigned status(const admission& a) {
  return a.refused ? a.refused->status : 0u;
}

bool closes(const admission& a) {
  return a.refused && a.refused->close;
}

} // namespace

TEST_CASE("admit: a plain GET is routed with no body", "[unit][http]") {
  auto a = run(get("/healthz"));
  CHECK(status(a) == 0);
  CHECK(a.where.kind == route_kind::healthz);
  CHECK(a.body == body_kind::none);
  CHECK(a.path == "/healthz");
}

TEST_CASE("admit: absolute-form targets route on their path", "[unit][http]") {
  auto a = run(get("http://example.org:8080/audio/user/3/phrase/4?x=1"));
  CHECK(status(a) == 0);
  CHECK(a.where.kind == route_kind::recording);
  CHECK(a.where.user_id == 3);
  CHECK(a.where.phrase_id == 4);
  CHECK(a.query == "x=1");
  CHECK(run(get("HTTPS://h/healthz")).where.kind == route_kind::healthz);
  CHECK(run(get("http://h")).path == "/");
  CHECK(run(get("http://h?q")).query == "q");
  for (auto bad : {"*", "ftp://h/healthz", "http:///healthz", "http://",
                   "example.org:80", "healthz", "http:/healthz"}) {
    INFO(bad);
    auto r = run(get(bad));
    CHECK(status(r) == 400);
    CHECK_FALSE(closes(r));
  }
}

TEST_CASE("admit: HTTP/1.1 needs exactly one Host, HTTP/1.0 none",
          "[unit][http]") {
  auto h = get("/healthz");
  h.host_count = 0;
  CHECK(status(run(h)) == 400);
  CHECK(closes(run(h)));
  h.host_count = 2;
  CHECK(status(run(h)) == 400);
  h.version = 10;
  h.host_count = 0;
  CHECK(status(run(h)) == 0);
}

TEST_CASE("admit: Transfer-Encoding other than exactly chunked closes",
          "[unit][http]") {
  auto te = [](std::vector<std::string_view> values) {
    auto h = post("/audio/user/1/phrase/1");
    h.transfer_encoding = std::move(values);
    return run(h);
  };
  auto ok = te({"chunked"});
  CHECK(status(ok) == 0);
  CHECK(ok.chunked);
  CHECK(ok.body == body_kind::upload);
  CHECK(status(te({"Chunked"})) == 0);
  CHECK(status(te({" chunked "})) == 0);
  for (auto bad : std::vector<std::vector<std::string_view>>{
         {"xchunked"}, {"chunked, identity"}, {"identity"}, {"gzip, chunked"},
         {"chunked", "chunked"}, {""}, {"chunked,"}, {"chunked;q=1"}}) {
    INFO(bad.front());
    auto a = te(bad);
    CHECK(status(a) == 400);
    CHECK(closes(a));
    CHECK(a.body == body_kind::none);
  }
}

TEST_CASE("admit: Transfer-Encoding with Content-Length or on HTTP/1.0 "
          "closes",
          "[unit][http]") {
  auto h = get("/healthz");
  h.transfer_encoding = {"chunked"};
  h.content_length = {"5"};
  CHECK(status(run(h)) == 400);
  CHECK(closes(run(h)));
  h.content_length.clear();
  h.version = 10;
  h.host_count = 0;
  CHECK(status(run(h)) == 400);
  CHECK(closes(run(h)));
}

TEST_CASE("parse_content_length takes plain decimals only", "[unit][http]") {
  using v = std::vector<std::string_view>;
  CHECK(parse_content_length(v{"0"}) == uint64_t{0});
  CHECK(parse_content_length(v{"64000000000"}) == uint64_t{64000000000});
  CHECK(parse_content_length(v{"18446744073709551615"})
        == UINT64_C(18446744073709551615));
  CHECK(parse_content_length(v{"5", "5"}) == uint64_t{5});
  CHECK(parse_content_length(v{"5, 5"}) == uint64_t{5});
  for (auto bad : std::vector<v>{
         {}, {""}, {"+5"}, {"-5"}, {"0x10"}, {"5 5"}, {"5a"}, {"5", "6"},
         {"5, 6"}, {"5,"}, {"18446744073709551616"}, {"1e3"}, {" "}}) {
    INFO((bad.empty() ? "(none)" : bad.front()));
    CHECK_FALSE(parse_content_length(bad).has_value());
  }
}

TEST_CASE("admit: a bad Content-Length closes after a 400", "[unit][http]") {
  auto h = get("/healthz");
  h.content_length = {"0x10"};
  CHECK(status(run(h)) == 400);
  CHECK(closes(run(h)));
  h.content_length = {"3", "4"};
  CHECK(closes(run(h)));
}

TEST_CASE("admit: bodies on routes that take none", "[unit][http]") {
  auto h = get("/healthz");
  SECTION("up to 64 KiB is read and dropped") {
    h.content_length = {"65536"};
    auto a = run(h);
    CHECK(status(a) == 0);
    CHECK(a.body == body_kind::small);
    CHECK(a.body_limit == small_body_limit);
  }
  SECTION("more is 413 from the head and closes, unread") {
    for (auto n : {"65537", "64000000000", "18446744073709551615"}) {
      h.content_length = {n};
      auto a = run(h);
      CHECK(status(a) == 413);
      CHECK(closes(a));
      CHECK(a.body == body_kind::none);
    }
  }
  SECTION("chunked is counted up to 64 KiB") {
    h.transfer_encoding = {"chunked"};
    auto a = run(h);
    CHECK(status(a) == 0);
    CHECK(a.body == body_kind::small);
    CHECK(a.body_limit == small_body_limit);
  }
  SECTION("Content-Length 0 is no body") {
    h.content_length = {"0"};
    CHECK(run(h).body == body_kind::none);
  }
}

TEST_CASE("admit: uploads get the upload limit", "[unit][http]") {
  auto h = post("/audio/user/1/phrase/2");
  h.content_length = {"1000"};
  auto a = run(h, 1000);
  CHECK(status(a) == 0);
  CHECK(a.body == body_kind::upload);
  CHECK(a.body_limit == 1000);
  CHECK_FALSE(a.multipart);
  h.content_length = {"1001"};
  CHECK(status(run(h, 1000)) == 413);
  CHECK(closes(run(h, 1000)));
  h.content_type = "Multipart/form-data; boundary=x";
  auto m = run(h, 1000);
  CHECK(status(m) == 0);
  CHECK(m.multipart);
  CHECK(m.body_limit == 1000 + multipart_allowance);
  auto put = h;
  put.method = "PUT";
  CHECK(run(put).body == body_kind::upload);
  auto del = h;
  del.method = "DELETE";
  del.content_length = {"10"};
  CHECK(run(del).body == body_kind::small);
}

TEST_CASE("admit: routing refusals keep the connection when the body is "
          "small",
          "[unit][http]") {
  auto h = get("/no/such/path");
  CHECK(status(run(h)) == 404);
  CHECK_FALSE(closes(run(h)));
  h.content_length = {"10"};
  CHECK(run(h).body == body_kind::small);
  CHECK_FALSE(closes(run(h)));
  h.content_length = {"100000"};
  CHECK(closes(run(h)));
  CHECK(run(h).body == body_kind::none);
  h.content_length.clear();
  h.transfer_encoding = {"chunked"};
  CHECK(closes(run(h)));

  auto m = post("/healthz");
  auto a = run(m);
  CHECK(status(a) == 405);
  CHECK(a.refused->allow == "GET, HEAD, OPTIONS");
  CHECK(status(run(get("/audio/user/01/phrase/1"))) == 400);
  CHECK(run(get("/audio/user/01/phrase/1")).refused->code == "bad_id");
}

TEST_CASE("accept_pause pauses on descriptor and memory exhaustion",
          "[unit][http]") {
  CHECK(accept_pause(EMFILE).count() >= 50);
  CHECK(accept_pause(ENFILE).count() >= 50);
  CHECK(accept_pause(ENOBUFS).count() >= 50);
  CHECK(accept_pause(ECONNABORTED).count() == 0);
}

TEST_CASE("log_throttle lets one line a second through and counts the rest",
          "[unit][http]") {
  using std::chrono::milliseconds;
  log_throttle t{std::chrono::seconds{1}};
  auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours{1};
  CHECK(t.admit(t0) == uint64_t{0});
  for (int i = 1; i <= 1000; ++i)
    CHECK_FALSE(t.admit(t0 + milliseconds{i % 999}).has_value());
  CHECK(t.admit(t0 + milliseconds{1000}) == uint64_t{1000});
  CHECK_FALSE(t.admit(t0 + milliseconds{1500}).has_value());
  CHECK(t.admit(t0 + milliseconds{2100}) == uint64_t{1});
}

TEST_CASE("metrics label only the standard methods", "[unit][http]") {
  CHECK(method_label("GET") == "GET");
  CHECK(method_label("DELETE") == "DELETE");
  CHECK(method_label("M000123") == "other");
  CHECK(method_label(std::string(8192, 'X')) == "other");
  CHECK(method_label("get") == "other");
}

TEST_CASE("client text in log lines cannot forge fields", "[unit][http]") {
  CHECK(log_text("/audio/user/1?x=2") == "/audio/user/1?x=2");
  CHECK(log_text("/x\",\"level\":\"error") == "/x\\x22,\\x22level\\x22:"
                                             "\\x22error");
  CHECK(log_text("a b\r\n\\") == "a\\x20b\\x0d\\x0a\\x5c");
  CHECK(log_text("caf\xe9") == "caf\\xe9");
  CHECK(log_text(std::string(2000, 'a')).size() == 1024 + 3);
}
