// Self check of the test-only token minting (jwt_mint.hpp): HS256 against
// RFC 7515's example A.1, RS256 and ES256 verified with the public key
// through OpenSSL (independently of the minting code's own conversions).

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "tests/integration/jwt_mint.hpp"

using namespace phonon::integration;

namespace {

struct pkey_deleter {
  void operator()(EVP_PKEY* p) const noexcept {
    EVP_PKEY_free(p);
  }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;

pkey_ptr read_public_key(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free_all)> bio{
    BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free_all};
  REQUIRE(bio);
  return pkey_ptr{PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr)};
}

/// The three dot-separated parts of a compact JWS.
struct parts {
  std::string header;
  std::string claims;
  std::string signature;
  /// header.claims, what the signature covers.
  std::string signing_input;
};

parts split(const std::string& token) {
  auto a = token.find('.');
  REQUIRE(a != std::string::npos);
  auto b = token.find('.', a + 1);
  REQUIRE(b != std::string::npos);
  REQUIRE(token.find('.', b + 1) == std::string::npos);
  return {token.substr(0, a), token.substr(a + 1, b - a - 1),
          token.substr(b + 1), token.substr(0, b)};
}

/// EVP_DigestVerify with SHA-256 of `data` against `sig` (DER for EC).
bool digest_verify(EVP_PKEY* pkey, const std::string& data,
                   const std::string& sig) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{
    EVP_MD_CTX_new(), &EVP_MD_CTX_free};
  REQUIRE(ctx);
  REQUIRE(EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey)
          == 1);
  return EVP_DigestVerify(ctx.get(),
                          reinterpret_cast<const unsigned char*>(sig.data()),
                          sig.size(),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          data.size())
         == 1;
}

/// JOSE r||s (64 bytes) back to DER, the form OpenSSL verifies.
std::string jose_to_der(const std::string& raw) {
  REQUIRE(raw.size() == 64);
  auto bytes = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(bytes, 32, nullptr);
  BIGNUM* s = BN_bin2bn(bytes + 32, 32, nullptr);
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig{ECDSA_SIG_new(),
                                                           &ECDSA_SIG_free};
  REQUIRE(sig);
  REQUIRE(ECDSA_SIG_set0(sig.get(), r, s) == 1); // sig owns r and s now
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  REQUIRE(len > 0);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

/// The token with one character of its claims part changed.
std::string tampered(const std::string& token) {
  auto copy = token;
  auto at = copy.find('.') + 2;
  copy[at] = copy[at] == 'A' ? 'B' : 'A';
  return copy;
}

const std::string claims = R"({"sub":"42","exp":4102444800})";

} // namespace

TEST_CASE("base64url encodes without padding and round-trips",
          "[integration][jwt]") {
  CHECK(jwt::base64url("") == "");
  CHECK(jwt::base64url("f") == "Zg");
  CHECK(jwt::base64url("fo") == "Zm8");
  CHECK(jwt::base64url("foo") == "Zm9v");
  CHECK(jwt::base64url("foob") == "Zm9vYg");
  CHECK(jwt::base64url(std::string("\xfb\xff\xfe", 3)) == "-__-");
  std::string all;
  for (int i = 0; i < 256; ++i)
    all += static_cast<char>(i);
  for (size_t n = 0; n <= all.size(); n += 37)
    CHECK(jwt::base64url_decode(jwt::base64url(all.substr(0, n)))
          == all.substr(0, n));
  CHECK(jwt::base64url_decode("Zg==") == "f");
  CHECK_THROWS_AS(jwt::base64url_decode("Zm9v+"), std::invalid_argument);
  CHECK_THROWS_AS(jwt::base64url_decode("Z"), std::invalid_argument);
}

TEST_CASE("HS256 minting matches RFC 7515 example A.1",
          "[integration][jwt]") {
  // The header and claims byte for byte as the RFC shows them (CR LF and a
  // space inside), and the JWK's "k".
  const std::string header = "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
  const std::string payload = "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n"
                              " \"http://example.com/is_root\":true}";
  const auto secret = jwt::base64url_decode(
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUu"
    "TwjAzZr1Z9CAow");
  CHECK(secret.size() == 64);
  CHECK(jwt::mint(header, payload, jwt::key::hs256(secret))
        == "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
           ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
           "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
           ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
}

TEST_CASE("alg none tokens carry an empty signature", "[integration][jwt]") {
  auto token = jwt::mint(R"({"alg":"none"})", claims, jwt::key::none());
  CHECK(token == jwt::base64url(R"({"alg":"none"})") + "."
                   + jwt::base64url(claims) + ".");
}

TEST_CASE("RS256 tokens verify with the generated public key",
          "[integration][jwt]") {
  auto pair = jwt::make_rsa_key_pair();
  CHECK(pair.private_pem.rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);
  CHECK(pair.public_pem.rfind("-----BEGIN PUBLIC KEY-----", 0) == 0);
  auto pub = read_public_key(pair.public_pem);
  REQUIRE(pub);
  CHECK(EVP_PKEY_is_a(pub.get(), "RSA") == 1);
  CHECK(EVP_PKEY_get_bits(pub.get()) == 2048);

  auto token = jwt::mint(R"({"alg":"RS256","typ":"JWT"})", claims,
                         jwt::key::rs256(pair.private_pem));
  auto p = split(token);
  CHECK(jwt::base64url_decode(p.claims) == claims);
  auto sig = jwt::base64url_decode(p.signature);
  CHECK(sig.size() == 256);
  CHECK(digest_verify(pub.get(), p.signing_input, sig));
  CHECK_FALSE(digest_verify(pub.get(), split(tampered(token)).signing_input,
                            sig));
  // Another key pair's public half refuses it.
  auto other = read_public_key(jwt::make_rsa_key_pair().public_pem);
  CHECK_FALSE(digest_verify(other.get(), p.signing_input, sig));
  // An EC key is not an RSA key.
  CHECK_THROWS(jwt::mint("{}", claims,
                         jwt::key::rs256(
                           jwt::make_ec_p256_key_pair().private_pem)));
}

TEST_CASE("ES256 tokens carry r||s and verify with the public key",
          "[integration][jwt]") {
  auto pair = jwt::make_ec_p256_key_pair();
  auto pub = read_public_key(pair.public_pem);
  REQUIRE(pub);
  CHECK(EVP_PKEY_is_a(pub.get(), "EC") == 1);
  // ECDSA is randomized, and r or s with a leading zero byte (about one in
  // 128 signatures) must still come out as 32 bytes each.
  for (int i = 0; i < 64; ++i) {
    auto token = jwt::mint(R"({"alg":"ES256","typ":"JWT"})", claims,
                           jwt::key::es256(pair.private_pem));
    auto p = split(token);
    auto raw = jwt::base64url_decode(p.signature);
    REQUIRE(raw.size() == 64);
    auto der = jose_to_der(raw);
    REQUIRE(digest_verify(pub.get(), p.signing_input, der));
    REQUIRE_FALSE(
      digest_verify(pub.get(), split(tampered(token)).signing_input, der));
  }
  CHECK_THROWS(jwt::mint("{}", claims, jwt::key::es256("not a key")));
  CHECK_THROWS(jwt::mint("{}", claims,
                         jwt::key::es256(
                           jwt::make_rsa_key_pair().private_pem)));
}

TEST_CASE("HS256 may be keyed with any bytes (algorithm confusion rows)",
          "[integration][jwt]") {
  auto pair = jwt::make_rsa_key_pair();
  auto token = jwt::mint(R"({"alg":"HS256"})", claims,
                         jwt::key::hs256(pair.public_pem));
  auto p = split(token);
  CHECK(jwt::base64url_decode(p.signature)
        == jwt::hmac_sha256(pair.public_pem, p.signing_input));
}
