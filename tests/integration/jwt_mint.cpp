#include "tests/integration/jwt_mint.hpp"

#include <array>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

namespace phonon::integration::jwt {

namespace {

// -- OpenSSL ownership ----------------------------------------------------------

struct bio_deleter {
  void operator()(BIO* p) const noexcept {
    BIO_free_all(p);
  }
};
struct pkey_deleter {
  void operator()(EVP_PKEY* p) const noexcept {
    EVP_PKEY_free(p);
  }
};
struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* p) const noexcept {
    EVP_MD_CTX_free(p);
  }
};
struct ecdsa_sig_deleter {
  void operator()(ECDSA_SIG* p) const noexcept {
    ECDSA_SIG_free(p);
  }
};
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, md_ctx_deleter>;
using ecdsa_sig_ptr = std::unique_ptr<ECDSA_SIG, ecdsa_sig_deleter>;

/// Throws std::runtime_error with `what` and OpenSSL's queued reasons, and
/// clears the queue so that the next call starts clean.
[[noreturn]] void fail(const std::string& what) {
  std::string text = "jwt_mint: " + what;
  while (unsigned long code = ERR_get_error()) {
    std::array<char, 256> buf{};
    ERR_error_string_n(code, buf.data(), buf.size());
    text += "; ";
    text += buf.data();
  }
  throw std::runtime_error(text);
}

pkey_ptr read_private_key(const std::string& pem) {
  bio_ptr bio{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
  if (!bio)
    fail("BIO_new_mem_buf");
  pkey_ptr pkey{PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)};
  if (!pkey)
    fail("the PEM private key does not parse");
  return pkey;
}

std::string to_pem(EVP_PKEY* pkey, bool private_part) {
  bio_ptr bio{BIO_new(BIO_s_mem())};
  if (!bio)
    fail("BIO_new");
  int ok = private_part ? PEM_write_bio_PrivateKey(bio.get(), pkey, nullptr,
                                                   nullptr, 0, nullptr,
                                                   nullptr)
                        : PEM_write_bio_PUBKEY(bio.get(), pkey);
  if (ok != 1)
    fail(private_part ? "PEM_write_bio_PrivateKey" : "PEM_write_bio_PUBKEY");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

key_pair to_pair(EVP_PKEY* pkey) {
  return {to_pem(pkey, true), to_pem(pkey, false)};
}

/// EVP_DigestSign with SHA-256; for EC keys the result is DER.
std::string digest_sign(EVP_PKEY* pkey, std::string_view data) {
  md_ctx_ptr ctx{EVP_MD_CTX_new()};
  if (!ctx)
    fail("EVP_MD_CTX_new");
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey)
      != 1)
    fail("EVP_DigestSignInit");
  auto in = reinterpret_cast<const unsigned char*>(data.data());
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()) != 1)
    fail("EVP_DigestSign (size)");
  std::string sig(len, '\0');
  auto out = reinterpret_cast<unsigned char*>(sig.data());
  if (EVP_DigestSign(ctx.get(), out, &len, in, data.size()) != 1)
    fail("EVP_DigestSign");
  sig.resize(len);
  return sig;
}

/// DER ECDSA-Sig-Value to JOSE's fixed-width r||s (RFC 7518 3.4).
std::string der_to_jose(const std::string& der, size_t half) {
  auto p = reinterpret_cast<const unsigned char*>(der.data());
  ecdsa_sig_ptr sig{d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()))};
  if (!sig)
    fail("d2i_ECDSA_SIG");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string out(2 * half, '\0');
  auto buf = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(r, buf, static_cast<int>(half)) != static_cast<int>(half)
      || BN_bn2binpad(s, buf + half, static_cast<int>(half))
           != static_cast<int>(half))
    fail("BN_bn2binpad");
  return out;
}

void require_type(EVP_PKEY* pkey, const char* name) {
  if (EVP_PKEY_is_a(pkey, name) != 1)
    throw std::runtime_error(std::string{"jwt_mint: the private key is not "}
                             + name);
}

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

} // namespace

// -- encoding -----------------------------------------------------------------

std::string base64url(std::string_view bytes) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "abcdefghijklmnopqrstuvwxyz"
                                     "0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) {
    return static_cast<unsigned>(static_cast<unsigned char>(bytes[k]));
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    unsigned v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += alphabet[v >> 18 & 63];
    out += alphabet[v >> 12 & 63];
    out += alphabet[v >> 6 & 63];
    out += alphabet[v & 63];
  }
  if (size_t rest = bytes.size() - i; rest == 1) {
    unsigned v = byte(i) << 16;
    out += alphabet[v >> 18 & 63];
    out += alphabet[v >> 12 & 63];
  } else if (rest == 2) {
    unsigned v = byte(i) << 16 | byte(i + 1) << 8;
    out += alphabet[v >> 18 & 63];
    out += alphabet[v >> 12 & 63];
    out += alphabet[v >> 6 & 63];
  }
  return out;
}

std::string base64url_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=')
    text.remove_suffix(1);
  if (text.size() % 4 == 1)
    throw std::invalid_argument("base64url: impossible length");
  std::string out;
  out.reserve(text.size() * 3 / 4);
  unsigned acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = b64_value(c);
    if (v < 0)
      throw std::invalid_argument("base64url: character outside the alphabet");
    acc = (acc << 6 | static_cast<unsigned>(v)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>(acc >> bits & 0xff);
    }
  }
  return out;
}

// -- keys ---------------------------------------------------------------------

key_pair make_rsa_key_pair(int bits) {
  pkey_ptr pkey{EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA",
                                  static_cast<size_t>(bits))};
  if (!pkey)
    fail("RSA key generation");
  return to_pair(pkey.get());
}

key_pair make_ec_p256_key_pair() {
  pkey_ptr pkey{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")};
  if (!pkey)
    fail("P-256 key generation");
  return to_pair(pkey.get());
}

// -- tokens -------------------------------------------------------------------

std::string hmac_sha256(std::string_view secret, std::string_view data) {
  std::string out(EVP_MAX_MD_SIZE, '\0');
  unsigned len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(),
            reinterpret_cast<unsigned char*>(out.data()), &len))
    fail("HMAC-SHA256");
  out.resize(len);
  return out;
}

std::string mint(const std::string& header_json,
                 const std::string& claims_json, const key& k) {
  auto input = base64url(header_json) + "." + base64url(claims_json);
  std::string sig;
  switch (k.alg) {
    case algorithm::none:
      break;
    case algorithm::hs256:
      sig = hmac_sha256(k.material, input);
      break;
    case algorithm::rs256: {
      auto pkey = read_private_key(k.material);
      require_type(pkey.get(), "RSA");
      sig = digest_sign(pkey.get(), input);
      break;
    }
    case algorithm::es256: {
      auto pkey = read_private_key(k.material);
      require_type(pkey.get(), "EC");
      std::array<char, 64> group{};
      size_t group_len = 0;
      if (EVP_PKEY_get_group_name(pkey.get(), group.data(), group.size(),
                                  &group_len)
            != 1
          || std::string_view{group.data(), group_len} != "prime256v1")
        throw std::runtime_error("jwt_mint: ES256 needs a P-256 key");
      sig = der_to_jose(digest_sign(pkey.get(), input), 32);
      break;
    }
  }
  return input + "." + base64url(sig);
}

} // namespace phonon::integration::jwt
