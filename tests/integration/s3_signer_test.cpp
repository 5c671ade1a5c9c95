// The SigV4 signer (persistence/s3/sigv4.hpp) against a server that checks
// signatures: @20minutes/s3rver (npm, pinned in package-lock.json) started
// on 127.0.0.1 with a temporary folder, spoken to with libcurl, the
// transport issue 11's S3 client will use. The unit tests hold the signer
// to AWS's published vectors; this shows that what it signs is accepted
// (path-style PUT, GET, ranged GET, listing, multipart upload with
// valueless and unsorted parameters, presigned GET) and that a wrong secret
// or a tampered presigned URL is refused with 403 SignatureDoesNotMatch.

#include <catch2/catch.hpp>

#include <curl/curl.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "persistence/s3/sigv4.hpp"
#include "tests/integration/s3rver_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;
namespace s3 = phonon::persistence::s3;

namespace {

/// s3rver's only key pair.
const s3::credentials s3rver_creds{s3rver_key, s3rver_key, ""};

const std::string bucket = s3rver_bucket;

struct reply {
  long status = 0;
  std::string body;
  std::vector<std::string> header_lines;

  /// The value of response header `name` (case-insensitive), "" if absent.
  std::string header(const std::string& name) const {
    for (const auto& line : header_lines) {
      auto colon = line.find(':');
      if (colon == std::string::npos || colon != name.size())
        continue;
      if (strncasecmp(line.c_str(), name.c_str(), name.size()) != 0)
        continue;
      auto v = line.substr(colon + 1);
      auto b = v.find_first_not_of(" \t");
      auto e = v.find_last_not_of(" \t\r\n");
      return b == std::string::npos ? "" : v.substr(b, e - b + 1);
    }
    return "";
  }
};

size_t collect_body(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

size_t collect_header(char* data, size_t size, size_t n, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(data, size * n);
  return size * n;
}

/// One HTTP exchange with libcurl: `headers` are sent exactly (curl's own
/// Content-Type and Expect are suppressed), `body` too. Loopback only.
reply exchange(const std::string& method, const std::string& url,
               const s3::header_list& headers, const std::string& body = "") {
  static const bool initialized = [] {
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  }();
  REQUIRE(initialized);
  REQUIRE(url.rfind("http://127.0.0.1:", 0) == 0);
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl{curl_easy_init(),
                                                           &curl_easy_cleanup};
  REQUIRE(curl);
  curl_slist* list = nullptr;
  for (const auto& h : headers)
    list = curl_slist_append(list, (h.name + ": " + h.value).c_str());
  list = curl_slist_append(list, "Content-Type:");
  list = curl_slist_append(list, "Expect:");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> guard{
    list, &curl_slist_free_all};
  reply out;
  auto* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &collect_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &collect_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &out.header_lines);
  if (method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(body.size()));
  }
  auto rc = curl_easy_perform(c);
  INFO(method << " " << url << ": " << curl_easy_strerror(rc));
  REQUIRE(rc == CURLE_OK);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.status);
  return out;
}

s3::scope_params now_scope() {
  return {"us-east-1", "s3", std::time(nullptr)};
}

/// Signs and sends a path-style request: `decoded_path` is "/bucket/key"
/// before encoding; `query` is sent as the canonical query string.
reply signed_exchange(const s3rver& srv, const std::string& method,
                      const std::string& decoded_path, s3::query_list query,
                      const std::string& body = "",
                      s3::header_list extra = {},
                      const s3::credentials& creds = s3rver_creds,
                      bool sign_payload = true) {
  s3::request req;
  req.method = method;
  req.path = s3::encode_path(decoded_path);
  req.query = std::move(query);
  req.headers = {{"Host", srv.host()}};
  req.headers.insert(req.headers.end(), extra.begin(), extra.end());
  req.payload_hash = sign_payload ? s3::sha256_hex(body)
                                  : std::string{s3::unsigned_payload};
  auto signed_req = s3::sign(req, creds, now_scope());
  auto headers = req.headers;
  headers.insert(headers.end(), signed_req.headers_to_add.begin(),
                 signed_req.headers_to_add.end());
  auto qs = s3::canonical_query_string(req.query);
  auto url = srv.origin() + req.path + (qs.empty() ? "" : "?" + qs);
  return exchange(method, url, headers, body);
}

std::string xml_text(const std::string& xml, const std::string& tag) {
  auto open = "<" + tag + ">";
  auto b = xml.find(open);
  if (b == std::string::npos)
    return "";
  b += open.size();
  auto e = xml.find("</" + tag + ">", b);
  return e == std::string::npos ? "" : xml.substr(b, e - b);
}

} // namespace

TEST_CASE("s3 signer: s3rver accepts signed PUT, GET, ranged GET and listing",
          "[s3]") {
  s3rver srv;
  // A key that needs encoding: space, '$', parentheses.
  const std::string key = "/" + bucket + "/voice/a b$(1).txt";
  const std::string body = "hello, signed s3";

  auto put = signed_exchange(srv, "PUT", key, {}, body,
                             {{"x-amz-meta-phonon", "1"}});
  INFO(put.body);
  REQUIRE(put.status == 200);

  auto get = signed_exchange(srv, "GET", key, {}, "", {}, s3rver_creds,
                             false); // UNSIGNED-PAYLOAD
  INFO(get.body);
  CHECK(get.status == 200);
  CHECK(get.body == body);
  CHECK(get.header("x-amz-meta-phonon") == "1");

  auto range = signed_exchange(srv, "GET", key, {}, "",
                               {{"Range", "bytes=0-4"}});
  CHECK(range.status == 206);
  CHECK(range.body == "hello");

  // Unsorted parameters, one of them with a '/' to encode.
  auto list = signed_exchange(srv, "GET", "/" + bucket,
                              {{"prefix", "voice/"}, {"max-keys", "5"}});
  INFO(list.body);
  CHECK(list.status == 200);
  CHECK(xml_text(list.body, "Key") == "voice/a b$(1).txt");
}

TEST_CASE("s3 signer: s3rver accepts a multipart upload (?uploads, "
          "?partNumber&uploadId)",
          "[s3]") {
  s3rver srv;
  const std::string key = "/" + bucket + "/parts/one";

  // The valueless parameter curl 7.88's CURLOPT_AWS_SIGV4 signs wrongly.
  auto init = signed_exchange(srv, "POST", key, {{"uploads", ""}});
  INFO(init.body);
  REQUIRE(init.status == 200);
  auto upload_id = xml_text(init.body, "UploadId");
  REQUIRE_FALSE(upload_id.empty());

  const std::string part = "the only part";
  auto put_part = signed_exchange(
    srv, "PUT", key, {{"uploadId", upload_id}, {"partNumber", "1"}}, part);
  INFO(put_part.body);
  REQUIRE(put_part.status == 200);
  auto etag = put_part.header("ETag");
  REQUIRE_FALSE(etag.empty());

  auto complete = signed_exchange(
    srv, "POST", key, {{"uploadId", upload_id}},
    "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>" + etag
      + "</ETag></Part></CompleteMultipartUpload>");
  INFO(complete.body);
  REQUIRE(complete.status == 200);

  auto get = signed_exchange(srv, "GET", key, {});
  CHECK(get.status == 200);
  CHECK(get.body == part);
}

TEST_CASE("s3 signer: s3rver refuses a wrong secret with "
          "SignatureDoesNotMatch",
          "[s3]") {
  s3rver srv;
  auto wrong = s3rver_creds;
  wrong.secret_access_key = "S3RVEX";
  const std::string key = "/" + bucket + "/refused";

  auto put = signed_exchange(srv, "PUT", key, {}, "x", {}, wrong);
  CHECK(put.status == 403);
  CHECK(xml_text(put.body, "Code") == "SignatureDoesNotMatch");

  // Nothing was stored: the right key finds no object.
  auto get = signed_exchange(srv, "GET", key, {});
  CHECK(get.status == 404);
  CHECK(xml_text(get.body, "Code") == "NoSuchKey");

  auto get_wrong = signed_exchange(srv, "GET", key, {}, "", {}, wrong);
  CHECK(get_wrong.status == 403);
  CHECK(xml_text(get_wrong.body, "Code") == "SignatureDoesNotMatch");
}

TEST_CASE("s3 signer: s3rver serves a presigned GET and refuses a tampered "
          "one",
          "[s3]") {
  s3rver srv;
  const std::string key = "/" + bucket + "/shared/clip 1.mp3";
  const std::string body = "not really mp3";
  REQUIRE(signed_exchange(srv, "PUT", key, {}, body).status == 200);

  auto presigned_url = [&](const s3::credentials& creds) {
    s3::request req;
    req.method = "GET";
    req.path = s3::encode_path(key);
    req.headers = {{"Host", srv.host()}};
    auto p = s3::presign(req, creds, now_scope(), std::chrono::minutes{5});
    return srv.origin() + req.path + "?" + p.query_string;
  };

  auto url = presigned_url(s3rver_creds);
  auto ok = exchange("GET", url, {});
  INFO(url << "\n" << ok.body);
  CHECK(ok.status == 200);
  CHECK(ok.body == body);

  // One hex digit of X-Amz-Signature changed.
  auto tampered = url;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  auto bad = exchange("GET", tampered, {});
  CHECK(bad.status == 403);
  CHECK(xml_text(bad.body, "Code") == "SignatureDoesNotMatch");

  auto wrong = s3rver_creds;
  wrong.secret_access_key = "not-S3RVER";
  auto refused = exchange("GET", presigned_url(wrong), {});
  CHECK(refused.status == 403);
  CHECK(xml_text(refused.body, "Code") == "SignatureDoesNotMatch");
}
