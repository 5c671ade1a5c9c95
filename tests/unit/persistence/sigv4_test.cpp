#include <catch2/catch.hpp>

#include <ctime>
#include <initializer_list>
#include <ostream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "persistence/s3/sigv4.hpp"

// Every expected string below is AWS's published material, copied, never
// produced by this signer:
//
// * The generic SigV4 test suite (originally "Signature Version 4 Test
//   Suite" of the AWS General Reference, now maintained by AWS in
//   github.com/awslabs/aws-c-auth, tests/aws-signing-test-suite/v4/<case>/,
//   read at commit 3281f8692e6fd10562c4585a4dded5c16b322698): request.txt,
//   header-canonical-request.txt, header-string-to-sign.txt,
//   header-signature.txt, header-signed-request.txt and the query-*
//   (presigned) files. Credentials AKIDEXAMPLE /
//   wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20150830T123600Z, us-east-1,
//   service "service". context.json's "normalize" picks the path rule and
//   "sign_body" whether x-amz-content-sha256 is signed.
// * Amazon S3 API Reference, "Signature Calculations for the Authorization
//   Header: Transferring Payload in a Single Chunk" (sig-v4-header-based-
//   auth.html), its four examples, and "Authenticating Requests: Using Query
//   Parameters" (sigv4-query-string-auth.html), its presigned URL: key
//   AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY,
//   20130524T000000Z, us-east-1, bucket examplebucket. The first page could
//   not be read whole here: its canonical requests, string-to-sign hashes and
//   signatures were taken from copies of it quoted by several unrelated
//   projects, which agree with each other and with the parts of the page
//   that could be read (the GET Object example in full).
// * AWS General Reference, "Examples of how to derive a signing key for
//   Signature Version 4" (secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
//   20120215, us-east-1, iam).
//
// A canonical request is compared twice: as text, and through the
// string to sign, whose last line is AWS's SHA-256 of AWS's canonical
// request, so a byte that differs anywhere cannot pass.

using namespace phonon::persistence::s3;

namespace {

std::time_t utc(int year, int month, int day, int hour, int min, int sec) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  return timegm(&tm);
}

/// The lines of a multi-line vector joined by '\n' (no final newline, as in
/// AWS's files).
std::string lines(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) {
    if (&p != parts.begin())
      out += '\n';
    out += p;
  }
  return out;
}

// -- the generic suite ------------------------------------------------------

const credentials suite_creds{"AKIDEXAMPLE",
                              "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};

scope_params suite_scope() {
  return {"us-east-1", "service", utc(2015, 8, 30, 12, 36, 0)};
}

const std::string suite_empty_hash{empty_payload_sha256};

struct suite_case {
  const char* name;
  request req;
  path_rule rule;           // "normalize": true -> generic_normalized
  bool sign_body;           // "sign_body": adds x-amz-content-sha256
  std::string session_token;
  std::string creq;         // header-canonical-request.txt
  std::string sts;          // header-string-to-sign.txt
  std::string signature;    // header-signature.txt
};

request get(std::string path, query_list query = {},
            header_list extra = {}) {
  header_list headers{{"Host", "example.amazonaws.com"}};
  headers.insert(headers.end(), extra.begin(), extra.end());
  return request{"GET", std::move(path), std::move(query), std::move(headers),
                 suite_empty_hash};
}

request post(header_list extra = {}, query_list query = {}) {
  auto r = get("/", std::move(query), std::move(extra));
  r.method = "POST";
  return r;
}

/// The canonical request of a suite case with only host and x-amz-date
/// signed: everything but the method, path and query is the same.
std::string plain_creq(const std::string& method, const std::string& uri,
                       const std::string& query) {
  return lines({method, uri, query, "host:example.amazonaws.com",
                "x-amz-date:20150830T123600Z", "", "host;x-amz-date",
                suite_empty_hash});
}

std::string suite_sts(const std::string& creq_hash) {
  return lines({"AWS4-HMAC-SHA256", "20150830T123600Z",
                "20150830/us-east-1/service/aws4_request", creq_hash});
}

const std::string sts_token
  = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKW"
    "HGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4"
    "IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE"
    "8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yj"
    "c8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

std::vector<suite_case> suite_cases() {
  const auto n = path_rule::generic_normalized;
  const auto u = path_rule::generic;
  const std::string ethiopic = "\xE1\x88\xB4"; // U+1234, UTF-8
  const std::string unreserved
    = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::vector<suite_case> v;
  v.push_back(
    {"get-vanilla", get("/"), n, false, "", plain_creq("GET", "/", ""),
     suite_sts(
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"),
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"});
  v.push_back(
    {"get-vanilla-query-order-key-case",
     get("/", {{"Param2", "value2"}, {"Param1", "value1"}}), n, false, "",
     plain_creq("GET", "/", "Param1=value1&Param2=value2"),
     suite_sts(
       "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0"),
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"});
  // The request line carries %E1%88%B4; the signer takes decoded names.
  v.push_back(
    {"get-vanilla-query-order-encoded",
     get("/", {{"Param-3", "Value3"}, {"Param", "Value2"},
               {ethiopic, "Value1"}}),
     n, false, "",
     plain_creq("GET", "/", "%E1%88%B4=Value1&Param=Value2&Param-3=Value3"),
     suite_sts(
       "868294f5c38bd141c4972a373a76654f1418a8e4fc18b2e7903ae45e8ae0ec71"),
     "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"});
  v.push_back(
    {"get-vanilla-query-unreserved", get("/", {{unreserved, unreserved}}), n,
     false, "", plain_creq("GET", "/", unreserved + "=" + unreserved),
     suite_sts(
       "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177"),
     "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"});
  v.push_back(
    {"get-vanilla-empty-query-key", get("/", {{"Param1", "value1"}}), n,
     false, "", plain_creq("GET", "/", "Param1=value1"),
     suite_sts(
       "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab"),
     "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"});
  v.push_back(
    {"get-vanilla-utf8-query", get("/", {{ethiopic, "bar"}}), n, false, "",
     plain_creq("GET", "/", "%E1%88%B4=bar"),
     suite_sts(
       "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073"),
     "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"});
  v.push_back(
    {"get-unreserved", get("/" + unreserved), n, false, "",
     plain_creq("GET", "/" + unreserved, ""),
     suite_sts(
       "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9"),
     "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"});
  v.push_back(
    {"get-utf8", get("/" + ethiopic), n, false, "",
     plain_creq("GET", "/%E1%88%B4", ""),
     suite_sts(
       "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102"),
     "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"});
  for (auto rule : {n, u})
    v.push_back(
      {rule == n ? "get-space-normalized" : "get-space-unnormalized",
       get("/example space/"), rule, false, "",
       plain_creq("GET", "/example%20space/", ""),
       suite_sts(
         "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86"),
       "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"});
  v.push_back(
    {"get-header-value-trim",
     get("/", {},
         {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}}),
     n, false, "",
     lines({"GET", "/", "", "host:example.amazonaws.com", "my-header1:value1",
            "my-header2:\"a b c\"", "x-amz-date:20150830T123600Z", "",
            "host;my-header1;my-header2;x-amz-date", suite_empty_hash}),
     suite_sts(
       "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7"),
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"});
  v.push_back(
    {"get-header-key-duplicate",
     get("/", {},
         {{"My-Header1", "value2"}, {"My-Header1", "value2"},
          {"My-Header1", "value1"}}),
     n, false, "",
     lines({"GET", "/", "", "host:example.amazonaws.com",
            "my-header1:value2,value2,value1", "x-amz-date:20150830T123600Z",
            "", "host;my-header1;x-amz-date", suite_empty_hash}),
     suite_sts(
       "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c"),
     "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"});
  v.push_back(
    {"get-header-value-order",
     get("/", {},
         {{"My-Header1", "value4"}, {"My-Header1", "value1"},
          {"My-Header1", "value3"}, {"My-Header1", "value2"}}),
     n, false, "",
     lines({"GET", "/", "", "host:example.amazonaws.com",
            "my-header1:value4,value1,value3,value2",
            "x-amz-date:20150830T123600Z", "", "host;my-header1;x-amz-date",
            suite_empty_hash}),
     suite_sts(
       "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86"),
     "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"});
  // The request folds the value over three lines.
  v.push_back(
    {"get-header-value-multiline",
     get("/", {}, {{"My-Header1", "value1\n  value2\n     value3"}}), n,
     false, "",
     lines({"GET", "/", "", "host:example.amazonaws.com",
            "my-header1:value1 value2 value3", "x-amz-date:20150830T123600Z",
            "", "host;my-header1;x-amz-date", suite_empty_hash}),
     suite_sts(
       "e99419459a677bc11de234014be3c4e72c1ea5b454ceb58b613061f5d7a162e8"),
     "cfd34249e4b1c8d6b91ef74165d41a32e5fab3306300901bb65a51a73575eefd"});
  v.push_back(
    {"post-vanilla", post(), n, false, "", plain_creq("POST", "/", ""),
     suite_sts(
       "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87"),
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"});
  v.push_back(
    {"post-vanilla-query", post({}, {{"Param1", "value1"}}), n, false, "",
     plain_creq("POST", "/", "Param1=value1"),
     suite_sts(
       "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd"),
     "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"});
  v.push_back(
    {"post-header-key-sort", post({{"My-Header1", "value1"}}), n, false, "",
     lines({"POST", "/", "", "host:example.amazonaws.com", "my-header1:value1",
            "x-amz-date:20150830T123600Z", "", "host;my-header1;x-amz-date",
            suite_empty_hash}),
     suite_sts(
       "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65"),
     "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"});
  v.push_back(
    {"post-header-value-case", post({{"My-Header1", "VALUE1"}}), n, false, "",
     lines({"POST", "/", "", "host:example.amazonaws.com", "my-header1:VALUE1",
            "x-amz-date:20150830T123600Z", "", "host;my-header1;x-amz-date",
            suite_empty_hash}),
     suite_sts(
       "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93"),
     "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"});
  // Body "Param1=value1"; its hash is checked in its own test case below.
  const std::string form_hash
    = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";
  for (bool charset : {false, true}) {
    std::string type = "application/x-www-form-urlencoded";
    if (charset)
      type += "; charset=utf-8";
    request r{"POST",
              "/",
              {},
              {{"Content-Type", type},
               {"Host", "example.amazonaws.com"},
               {"Content-Length", "13"}},
              form_hash};
    v.push_back(
      {charset ? "post-x-www-form-urlencoded-parameters"
               : "post-x-www-form-urlencoded",
       r, n, true, "",
       lines({"POST", "/", "", "content-length:13", "content-type:" + type,
              "host:example.amazonaws.com",
              "x-amz-content-sha256:" + form_hash,
              "x-amz-date:20150830T123600Z", "",
              "content-length;content-type;host;x-amz-content-sha256;"
              "x-amz-date",
              form_hash}),
       suite_sts(
         charset
           ? "a89f1a5b53e37702ee6363ce1da3ce8f54386f3c8f352ae652153c2982a0bc4d"
           : "b1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d1"
             "6cfb"),
       charset
         ? "328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422"
         : "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"});
  }
  const std::string short_token
    = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
  v.push_back(
    {"get-vanilla-with-session-token", get("/"), n, false, short_token,
     lines({"GET", "/", "", "host:example.amazonaws.com",
            "x-amz-date:20150830T123600Z",
            "x-amz-security-token:" + short_token, "",
            "host;x-amz-date;x-amz-security-token", suite_empty_hash}),
     suite_sts(
       "067b36aa60031588cea4a4cde1f21215227a047690c72247f1d70b32fbbfad2b"),
     "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"});
  v.push_back(
    {"post-sts-header-before", post(), n, false, sts_token,
     lines({"POST", "/", "", "host:example.amazonaws.com",
            "x-amz-date:20150830T123600Z", "x-amz-security-token:" + sts_token,
            "", "host;x-amz-date;x-amz-security-token", suite_empty_hash}),
     suite_sts(
       "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6"),
     "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"});
  // Path normalization: the same request line signed with and without it.
  struct path_case {
    const char* normalized;
    const char* unnormalized;
    const char* path;
    const char* unnormalized_uri;
    const char* normalized_uri;
    const char* normalized_creq_hash;
    const char* normalized_sig;
    const char* unnormalized_creq_hash;
    const char* unnormalized_sig;
  };
  const std::string vanilla_hash
    = "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63";
  const std::string vanilla_sig
    = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
  const path_case paths[] = {
    {"get-relative-normalized", "get-relative-unnormalized", "/example/..",
     "/example/..", "/", vanilla_hash.c_str(), vanilla_sig.c_str(),
     "0511f456aa502b456d135fcb9d749374a55228f9dbeedda1eacf659e05b0615b",
     "eca7ead57bb5aa5c8e28007acd4ff04e1ff9a0ff3b237ec1554a184887ff9282"},
    {"get-relative-relative-normalized", "get-relative-relative-unnormalized",
     "/example1/example2/../..", "/example1/example2/../..", "/",
     vanilla_hash.c_str(), vanilla_sig.c_str(),
     "76115030c0f3ff06c20fdff5ceb6d5e0b835a1743e00b94fea7c7f381269437b",
     "dc33e0856fd4baca4d7aa2146c38958283844764f38c74252a333df5e613003b"},
    {"get-slash-dot-slash-normalized", "get-slash-dot-slash-unnormalized",
     "/./", "/./", "/", vanilla_hash.c_str(), vanilla_sig.c_str(),
     "d67825e2268bd77a97c7688b8d72c31a3c1855b309808505ba0a9747d2465aa7",
     "68714168e6557f8f2de0ef956fc24dc2593a4bd2961f8df51898d8a134695145"},
    {"get-slash-pointless-dot-normalized",
     "get-slash-pointless-dot-unnormalized", "/./example", "/./example",
     "/example",
     "214d50c111a8edc4819da6a636336472c916b5240f51e9a51b5c3305180cf702",
     "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5",
     "73895e0e829507e28e39fd24669aedc2434a8e179e547e3c075b42921f952cdb",
     "beb03f223f7deae4146464f06e29eebbee9c8afbe15c290cf07aa8b119e14cff"},
    {"get-slash-normalized", "get-slash-unnormalized", "//", "//", "/",
     vanilla_hash.c_str(), vanilla_sig.c_str(),
     "80cb39203d058af815de2b79250ff56e1b73eb9b4718c86556cdc6f150c5d209",
     "c88bcd3d312d75078c0cd961d6deae3f4c754924b01669efcfcb439fd5e5b76e"},
    {"get-slashes-normalized", "get-slashes-unnormalized", "//example//",
     "//example//", "/example/",
     "cb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015",
     "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
     "528ec3105ee1f34ab014bb0a1a45da0ed2742a4fea3555149e5b4d5d201eb240",
     "87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5"},
  };
  for (const auto& p : paths) {
    v.push_back({p.normalized, get(p.path), n, false, "",
                 plain_creq("GET", p.normalized_uri, ""),
                 suite_sts(p.normalized_creq_hash), p.normalized_sig});
    v.push_back({p.unnormalized, get(p.path), u, false, "",
                 plain_creq("GET", p.unnormalized_uri, ""),
                 suite_sts(p.unnormalized_creq_hash), p.unnormalized_sig});
  }
  return v;
}

// -- the S3 examples ----------------------------------------------------------

const credentials s3_creds{"AKIAIOSFODNN7EXAMPLE",
                           "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};

scope_params s3_scope() {
  return {"us-east-1", "s3", utc(2013, 5, 24, 0, 0, 0)};
}

const std::string s3_host = "examplebucket.s3.amazonaws.com";

std::string s3_sts(const std::string& creq_hash) {
  return lines({"AWS4-HMAC-SHA256", "20130524T000000Z",
                "20130524/us-east-1/s3/aws4_request", creq_hash});
}

/// The GET Object example: the baseline the perturbation tests vary.
request s3_get_object() {
  return request{"GET",
                 "/test.txt",
                 {},
                 {{"Host", s3_host}, {"Range", "bytes=0-9"}},
                 std::string{empty_payload_sha256}};
}

const std::string s3_get_object_signature
  = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

// -- detecting a printable type -----------------------------------------------

template <class T, class = void>
struct is_streamable : std::false_type {};

template <class T>
struct is_streamable<T, std::void_t<decltype(std::declval<std::ostream&>()
                                             << std::declval<const T&>())>>
  : std::true_type {};

} // namespace

TEST_CASE("sigv4 reproduces AWS's generic SigV4 test suite",
          "[unit][persistence][sigv4]") {
  for (const auto& c : suite_cases()) {
    DYNAMIC_SECTION(c.name) {
      auto creds = suite_creds;
      creds.session_token = c.session_token;
      sign_options opts;
      opts.path = c.rule;
      opts.content_sha256_header = c.sign_body;
      auto s = sign(c.req, creds, suite_scope(), opts);
      CHECK(s.canonical_request == c.creq);
      CHECK(s.string_to_sign == c.sts);
      CHECK(s.signature == c.signature);
    }
  }
}

TEST_CASE("sigv4 builds the suite's Authorization header and added headers",
          "[unit][persistence][sigv4]") {
  sign_options opts;
  opts.path = path_rule::generic_normalized;
  opts.content_sha256_header = false;
  auto s = sign(get("/"), suite_creds, suite_scope(), opts);
  // get-vanilla/header-signed-request.txt
  CHECK(s.authorization
        == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
           "service/aws4_request, SignedHeaders=host;x-amz-date, "
           "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1"
           "d763fbf31");
  CHECK(s.signed_headers == "host;x-amz-date");
  REQUIRE(s.headers_to_add.size() == 2);
  CHECK(s.headers_to_add[0].name == "x-amz-date");
  CHECK(s.headers_to_add[0].value == "20150830T123600Z");
  CHECK(s.headers_to_add[1].name == "Authorization");
  CHECK(s.headers_to_add[1].value == s.authorization);
}

TEST_CASE("sigv4 hashes the suite's form body to its published digest",
          "[unit][persistence][sigv4]") {
  // post-x-www-form-urlencoded: body "Param1=value1", payload hash in
  // header-canonical-request.txt.
  CHECK(sha256_hex("Param1=value1")
        == "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  sha256_hasher h;
  h.update("Param1=");
  h.update("value1");
  CHECK(h.hex_digest()
        == "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  CHECK(sha256_hex("") == empty_payload_sha256);
}

TEST_CASE("sigv4 presigns the suite's query-signing cases",
          "[unit][persistence][sigv4]") {
  // <case>/query-canonical-request.txt, query-string-to-sign.txt,
  // query-signature.txt: X-Amz-Expires=3600, payload hash of the empty body.
  SECTION("get-vanilla") {
    auto p = presign(get("/"), suite_creds, suite_scope(),
                     std::chrono::seconds{3600},
                     path_rule::generic_normalized);
    CHECK(p.canonical_request
          == lines({"GET", "/",
                    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
                    "AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_"
                    "request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&"
                    "X-Amz-SignedHeaders=host",
                    "host:example.amazonaws.com", "", "host",
                    suite_empty_hash}));
    CHECK(p.string_to_sign
          == suite_sts("bb7705b4aa3cb8e8f5e1e0b3d4c0b64030797a313c8ceee43e331"
                       "17cc43eadc5"));
    CHECK(p.signature ==
        "e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d");
  }
  SECTION("get-vanilla-query-order-key-case") {
    auto p = presign(get("/", {{"Param2", "value2"}, {"Param1", "value1"}}),
                     suite_creds, suite_scope(), std::chrono::seconds{3600},
                     path_rule::generic_normalized);
    CHECK(p.canonical_request
          == lines({"GET", "/",
                    "Param1=value1&Param2=value2&X-Amz-Algorithm=AWS4-HMAC-"
                    "SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-"
                    "1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&"
                    "X-Amz-Expires=3600&X-Amz-SignedHeaders=host",
                    "host:example.amazonaws.com", "", "host",
                    suite_empty_hash}));
    CHECK(p.string_to_sign
          == suite_sts("b82878ecb2ab7ad194b9fe79b2946c2a36ee1627a219408089b2d"
                       "774c1a0cedb"));
    CHECK(p.signature ==
        "86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5");
  }
}

TEST_CASE("sigv4 derives AWS's example signing key",
          "[unit][persistence][sigv4]") {
  auto key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                         "20120215", "us-east-1", "iam");
  REQUIRE(key.size() == 32);
  std::string hex;
  for (unsigned char c : key) {
    const char* digits = "0123456789abcdef";
    hex += digits[c >> 4];
    hex += digits[c & 0x0f];
  }
  CHECK(hex
        == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

TEST_CASE("sigv4 reproduces the S3 single-chunk examples",
          "[unit][persistence][sigv4]") {
  const std::string empty{empty_payload_sha256};

  SECTION("GET Object with a Range header") {
    auto s = sign(s3_get_object(), s3_creds, s3_scope());
    CHECK(s.canonical_request
          == lines({"GET", "/test.txt", "", "host:" + s3_host,
                    "range:bytes=0-9", "x-amz-content-sha256:" + empty,
                    "x-amz-date:20130524T000000Z", "",
                    "host;range;x-amz-content-sha256;x-amz-date", empty}));
    CHECK(s.string_to_sign
          == s3_sts("7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc4396"
                    "4946972"));
    CHECK(s.signature == s3_get_object_signature);
    // AWS shows the header without spaces after the commas; S3 accepts
    // both, this signer writes the suite's form.
    CHECK(s.authorization
          == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
             "us-east-1/s3/aws4_request, SignedHeaders=host;range;"
             "x-amz-content-sha256;x-amz-date, Signature="
             + s3_get_object_signature);
    REQUIRE(s.headers_to_add.size() == 3);
    CHECK(s.headers_to_add[0].name == "x-amz-date");
    CHECK(s.headers_to_add[0].value == "20130524T000000Z");
    CHECK(s.headers_to_add[1].name == "x-amz-content-sha256");
    CHECK(s.headers_to_add[1].value == empty);
    CHECK(s.headers_to_add[2].name == "Authorization");
  }

  SECTION("PUT Object: '$' in the key, payload hash, storage class") {
    const std::string body_hash
      = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    CHECK(sha256_hex("Welcome to Amazon S3.") == body_hash);
    // The key is test$file.text; the example's request line and canonical
    // URI both carry it encoded once.
    CHECK(encode_path("/test$file.text") == "/test%24file.text");
    request put{"PUT",
                encode_path("/test$file.text"),
                {},
                {{"Host", s3_host},
                 {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                 {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                body_hash};
    auto s = sign(put, s3_creds, s3_scope());
    CHECK(s.canonical_request
          == lines({"PUT", "/test%24file.text", "",
                    "date:Fri, 24 May 2013 00:00:00 GMT", "host:" + s3_host,
                    "x-amz-content-sha256:" + body_hash,
                    "x-amz-date:20130524T000000Z",
                    "x-amz-storage-class:REDUCED_REDUNDANCY", "",
                    "date;host;x-amz-content-sha256;x-amz-date;"
                    "x-amz-storage-class",
                    body_hash}));
    CHECK(s.string_to_sign
          == s3_sts("9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158"
                    "342019d"));
    CHECK(s.signature ==
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
  }

  SECTION("GET Bucket Lifecycle: a valueless parameter") {
    request lifecycle{"GET", "/", {{"lifecycle", ""}}, {{"Host", s3_host}},
                      empty};
    auto s = sign(lifecycle, s3_creds, s3_scope());
    CHECK(s.canonical_request
          == lines({"GET", "/", "lifecycle=", "host:" + s3_host,
                    "x-amz-content-sha256:" + empty,
                    "x-amz-date:20130524T000000Z", "",
                    "host;x-amz-content-sha256;x-amz-date", empty}));
    CHECK(s.string_to_sign
          == s3_sts("9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c"
                    "77395ca"));
    CHECK(s.signature ==
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  }

  SECTION("GET Bucket (List Objects): max-keys and prefix, given unsorted") {
    request list{"GET",
                 "/",
                 {{"prefix", "J"}, {"max-keys", "2"}},
                 {{"Host", s3_host}},
                 empty};
    auto s = sign(list, s3_creds, s3_scope());
    CHECK(s.canonical_request
          == lines({"GET", "/", "max-keys=2&prefix=J", "host:" + s3_host,
                    "x-amz-content-sha256:" + empty,
                    "x-amz-date:20130524T000000Z", "",
                    "host;x-amz-content-sha256;x-amz-date", empty}));
    CHECK(s.string_to_sign
          == s3_sts("df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7"
                    "df1b9b7"));
    CHECK(s.signature ==
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
  }
}

TEST_CASE("sigv4 reproduces the S3 presigned URL example",
          "[unit][persistence][sigv4]") {
  request r{"GET", "/test.txt", {}, {{"Host", s3_host}},
            std::string{unsigned_payload}};
  auto p = presign(r, s3_creds, s3_scope(), std::chrono::hours{24});
  const std::string query
    = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE"
      "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"
      "&X-Amz-Expires=86400&X-Amz-SignedHeaders=host";
  CHECK(p.canonical_request
        == lines({"GET", "/test.txt", query, "host:" + s3_host, "", "host",
                  "UNSIGNED-PAYLOAD"}));
  CHECK(p.string_to_sign
        == s3_sts("3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf5"
                  "8ad04"));
  CHECK(p.signature
        == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  CHECK("https://" + s3_host + r.path + "?" + p.query_string
        == "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm="
           "AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%"
           "2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&"
           "X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature="
           "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST_CASE("sigv4 signature changes with the secret, date, region, header",
          "[unit][persistence][sigv4]") {
  // Each variant changes one input of the GET Object example, whose
  // published signature the baseline must still reproduce.
  auto sig = [](request r, credentials c, scope_params sc) {
    return sign(r, c, sc).signature;
  };
  REQUIRE(sig(s3_get_object(), s3_creds, s3_scope())
          == s3_get_object_signature);

  auto other_secret = s3_creds;
  other_secret.secret_access_key.back() = 'X';
  CHECK(sig(s3_get_object(), other_secret, s3_scope())
        != s3_get_object_signature);

  auto next_second = s3_scope();
  next_second.time += 1; // same day: only x-amz-date changes
  CHECK(sig(s3_get_object(), s3_creds, next_second)
        != s3_get_object_signature);

  auto next_day = s3_scope();
  next_day.time += 86400; // scope date and signing key change too
  CHECK(sig(s3_get_object(), s3_creds, next_day) != s3_get_object_signature);

  auto other_region = s3_scope();
  other_region.region = "eu-west-1";
  CHECK(sig(s3_get_object(), s3_creds, other_region)
        != s3_get_object_signature);

  auto other_service = s3_scope();
  other_service.service = "s3-object-lambda";
  CHECK(sig(s3_get_object(), s3_creds, other_service)
        != s3_get_object_signature);

  auto other_range = s3_get_object();
  other_range.headers[1].value = "bytes=0-10";
  CHECK(sig(other_range, s3_creds, s3_scope()) != s3_get_object_signature);

  auto extra_header = s3_get_object();
  extra_header.headers.push_back({"x-amz-meta-a", "1"});
  CHECK(sig(extra_header, s3_creds, s3_scope()) != s3_get_object_signature);

  auto other_path = s3_get_object();
  other_path.path = "/test.txu";
  CHECK(sig(other_path, s3_creds, s3_scope()) != s3_get_object_signature);

  auto other_payload = s3_get_object();
  other_payload.payload_hash = std::string{unsigned_payload};
  CHECK(sig(other_payload, s3_creds, s3_scope()) != s3_get_object_signature);

  // The access key id is not part of the signature, only of the header.
  auto other_id = s3_creds;
  other_id.access_key_id = "AKIAOTHER";
  auto s = sign(s3_get_object(), other_id, s3_scope());
  CHECK(s.signature == s3_get_object_signature);
  CHECK(s.authorization.find("Credential=AKIAOTHER/") != std::string::npos);
}

TEST_CASE("sigv4 encodes paths and queries by AWS's UriEncode rules",
          "[unit][persistence][sigv4]") {
  // The rules as AWS states them: unreserved A-Z a-z 0-9 - . _ ~ stay,
  // everything else is %XY with upper-case hex, a space is %20 (never '+'),
  // '/' is encoded everywhere but in the object key's path.
  CHECK(uri_encode("aZ09-._~", false) == "aZ09-._~");
  CHECK(uri_encode("a b+c*", false) == "a%20b%2Bc%2A");
  CHECK(uri_encode("a/b", false) == "a%2Fb");
  CHECK(uri_encode("a/b", true) == "a/b");
  CHECK(uri_encode("\xC3\xA9\x1a", false) == "%C3%A9%1A");
  CHECK(encode_path("/bucket/user 1/ä?#") == "/bucket/user%201/%C3%A4%3F%23");

  SECTION("S3 encodes the path once, the generic rule twice") {
    CHECK(canonical_uri("/test%24file.text", path_rule::s3)
          == "/test%24file.text");
    CHECK(canonical_uri("/test%24file.text", path_rule::generic)
          == "/test%2524file.text");
    CHECK(canonical_uri("", path_rule::s3) == "/");
  }
  SECTION("S3 keeps dot segments and double slashes of a key") {
    CHECK(canonical_uri("/b/a//../c", path_rule::s3) == "/b/a//../c");
    CHECK(canonical_uri("/b/a//../c", path_rule::generic_normalized)
          == "/b/c");
  }
  SECTION("valueless and repeated parameters") {
    // S3's ?uploads and ?uploadId=...&partNumber=... are the cases curl's
    // CURLOPT_AWS_SIGV4 gets wrong.
    CHECK(canonical_query_string({{"uploads", ""}}) == "uploads=");
    CHECK(canonical_query_string({{"uploadId", "a/b+c"}, {"partNumber", "2"}})
          == "partNumber=2&uploadId=a%2Fb%2Bc");
    CHECK(canonical_query_string({{"a", "2"}, {"a", "1"}, {"B", ""}})
          == "B=&a=1&a=2");
    CHECK(canonical_query_string({}).empty());
  }
}

TEST_CASE("sigv4 refuses requests it cannot sign correctly",
          "[unit][persistence][sigv4]") {
  auto r = s3_get_object();
  SECTION("no host header") {
    r.headers.erase(r.headers.begin());
    CHECK_THROWS_AS(sign(r, s3_creds, s3_scope()), std::invalid_argument);
    CHECK_THROWS_AS(presign(r, s3_creds, s3_scope(), std::chrono::seconds{1}),
                    std::invalid_argument);
  }
  SECTION("a header the signer sets") {
    for (const char* name : {"X-Amz-Date", "x-amz-content-sha256",
                             "Authorization", "X-Amz-Security-Token"}) {
      auto with = r;
      with.headers.push_back({name, "x"});
      CHECK_THROWS_AS(sign(with, s3_creds, s3_scope()),
                      std::invalid_argument);
    }
  }
  SECTION("an authentication parameter in a presigned query") {
    r.query.push_back({"X-Amz-Expires", "5"});
    CHECK_THROWS_AS(presign(r, s3_creds, s3_scope(), std::chrono::seconds{1}),
                    std::invalid_argument);
  }
  SECTION("an expiry outside 1 s to 7 days") {
    CHECK_THROWS_AS(presign(r, s3_creds, s3_scope(), std::chrono::seconds{0}),
                    std::invalid_argument);
    CHECK_THROWS_AS(
      presign(r, s3_creds, s3_scope(), std::chrono::seconds{604801}),
      std::invalid_argument);
    CHECK_NOTHROW(
      presign(r, s3_creds, s3_scope(), std::chrono::seconds{604800}));
  }
  SECTION("no region or service") {
    auto sc = s3_scope();
    sc.region.clear();
    CHECK_THROWS_AS(sign(r, s3_creds, sc), std::invalid_argument);
  }
}

TEST_CASE("sigv4 keeps the secret out of everything it returns",
          "[unit][persistence][sigv4]") {
  static_assert(!is_streamable<credentials>::value,
                "credentials must not be printable");
  const auto& secret = s3_creds.secret_access_key;
  auto s = sign(s3_get_object(), s3_creds, s3_scope());
  for (const auto* text : {&s.canonical_request, &s.string_to_sign,
                           &s.signature, &s.signed_headers, &s.authorization})
    CHECK(text->find(secret) == std::string::npos);
  for (const auto& h : s.headers_to_add)
    CHECK(h.value.find(secret) == std::string::npos);
  request r{"GET", "/test.txt", {}, {{"Host", s3_host}},
            std::string{unsigned_payload}};
  auto p = presign(r, s3_creds, s3_scope(), std::chrono::seconds{60});
  for (const auto* text : {&p.canonical_request, &p.string_to_sign,
                           &p.signature, &p.query_string})
    CHECK(text->find(secret) == std::string::npos);
}

TEST_CASE("sigv4 formats the x-amz-date timestamp",
          "[unit][persistence][sigv4]") {
  CHECK(amz_date(utc(2015, 8, 30, 12, 36, 0)) == "20150830T123600Z");
  CHECK(amz_date(utc(2013, 5, 24, 0, 0, 0)) == "20130524T000000Z");
  CHECK(credential_scope("20130524", "us-east-1", "s3")
        == "20130524/us-east-1/s3/aws4_request");
}
