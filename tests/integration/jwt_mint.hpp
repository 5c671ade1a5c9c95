// Test-only JSON Web Token minting with OpenSSL: HS256, RS256, ES256 and
// alg "none", with the header and claims given as raw JSON text so that a
// test can build any token, a wrong or hostile one included. Key pairs for
// RS256 and ES256 are generated at test time; no key lives in the tree.
//
// Nothing here verifies tokens; the server does that. Every function may be
// called from any thread (OpenSSL 3 needs no global locking).

#pragma once

#include <string>
#include <string_view>

namespace phonon::integration::jwt {

// -- encoding -----------------------------------------------------------------

/// Base64url without padding (RFC 7515 section 2) of `bytes`.
std::string base64url(std::string_view bytes);

/// Decodes base64url with or without padding; throws std::invalid_argument
/// on a character outside the alphabet or an impossible length.
std::string base64url_decode(std::string_view text);

// -- keys ---------------------------------------------------------------------

/// The algorithm mint() signs with.
enum class algorithm {
  /// No signature: the token ends with a '.' and an empty third part.
  none,
  /// HMAC-SHA256 with a shared secret.
  hs256,
  /// RSASSA-PKCS1-v1_5 with SHA-256 and an RSA private key.
  rs256,
  /// ECDSA with P-256 and SHA-256; the signature is the JOSE form r||s.
  es256,
};

/// What mint() signs with. The algorithm is independent of the token's
/// header, so a test can write `"alg":"HS256"` and sign with anything.
struct key {
  /// How to sign.
  algorithm alg = algorithm::none;
  /// The secret bytes (hs256) or the PEM private key text (rs256, es256);
  /// unused for none.
  std::string material;

  /// A shared-secret key; any bytes (a PEM public key too, for algorithm
  /// confusion tests).
  static key hs256(std::string secret) {
    return {algorithm::hs256, std::move(secret)};
  }

  /// An RSA private key in PEM (PKCS#8 or traditional).
  static key rs256(std::string private_pem) {
    return {algorithm::rs256, std::move(private_pem)};
  }

  /// A P-256 private key in PEM (PKCS#8 or SEC1).
  static key es256(std::string private_pem) {
    return {algorithm::es256, std::move(private_pem)};
  }

  /// No key: the token carries an empty signature.
  static key none() {
    return {algorithm::none, {}};
  }
};

/// A private key and its public half, both PEM text.
struct key_pair {
  /// PKCS#8 "-----BEGIN PRIVATE KEY-----".
  std::string private_pem;
  /// SubjectPublicKeyInfo "-----BEGIN PUBLIC KEY-----" (what
  /// auth.public_key_file holds).
  std::string public_pem;
};

/// A fresh RSA key pair of `bits` bits (2048 unless told). Throws
/// std::runtime_error with OpenSSL's reason when generation fails.
key_pair make_rsa_key_pair(int bits = 2048);

/// A fresh EC key pair on P-256 (prime256v1). Throws std::runtime_error
/// with OpenSSL's reason when generation fails.
key_pair make_ec_p256_key_pair();

// -- tokens -------------------------------------------------------------------

/// HMAC-SHA256 of `data` with `secret`: the 32 raw bytes.
std::string hmac_sha256(std::string_view secret, std::string_view data);

/// The compact JWS `b64url(header_json).b64url(claims_json).b64url(sig)`
/// where sig signs the first two parts with `k`. The JSON texts are encoded
/// byte for byte as given (never re-serialized). Throws std::runtime_error
/// when the PEM does not parse, does not fit the algorithm, or signing
/// fails.
std::string mint(const std::string& header_json,
                 const std::string& claims_json, const key& k);

} // namespace phonon::integration::jwt
