#include "persistence/s3/presigned_url.hpp"

#include <stdexcept>

namespace phonon::persistence::s3 {

namespace {

struct endpoint_parts {
  std::string scheme;
  std::string authority;
};

endpoint_parts parse_endpoint(std::string_view endpoint) {
  auto sep = endpoint.find("://");
  if (sep == std::string_view::npos)
    throw std::invalid_argument("s3 endpoint: no scheme (http:// or "
                                "https://)");
  endpoint_parts p{std::string{endpoint.substr(0, sep)},
                   std::string{endpoint.substr(sep + 3)}};
  if (p.scheme != "http" && p.scheme != "https")
    throw std::invalid_argument("s3 endpoint: scheme must be http or https");
  while (!p.authority.empty() && p.authority.back() == '/')
    p.authority.pop_back();
  if (p.authority.empty()
      || p.authority.find_first_of("/?#@") != std::string::npos)
    throw std::invalid_argument("s3 endpoint: host[:port] only, no path");
  return p;
}

std::string host_of(const settings& cfg, const endpoint_parts& ep) {
  if (cfg.bucket.empty())
    throw std::invalid_argument("s3 bucket: empty");
  return cfg.path_style ? ep.authority : cfg.bucket + "." + ep.authority;
}

} // namespace

std::string presigned_origin(const settings& cfg) {
  auto ep = parse_endpoint(cfg.endpoint);
  return ep.scheme + "://" + host_of(cfg, ep);
}

std::string presigned_get_url(const settings& cfg, std::string_view key,
                              const query_list& response_headers,
                              std::chrono::seconds ttl, std::time_t now) {
  if (key.empty())
    throw std::invalid_argument("s3: empty object key");
  auto ep = parse_endpoint(cfg.endpoint);
  auto host = host_of(cfg, ep);
  std::string prefix = cfg.prefix;
  if (!prefix.empty() && prefix.back() != '/')
    prefix += '/';
  // The same path the client's requests use (client.cpp path_of).
  std::string decoded = cfg.path_style ? "/" + cfg.bucket : "";
  decoded += "/" + prefix + std::string{key};
  request req;
  req.method = "GET";
  req.path = encode_path(decoded);
  req.query = response_headers;
  req.headers = {{"host", host}};
  req.payload_hash = std::string{unsigned_payload};
  auto signed_req = presign(req, {cfg.access_key, cfg.secret_key, ""},
                            {cfg.region, "s3", now}, ttl);
  return ep.scheme + "://" + host + req.path + "?" + signed_req.query_string;
}

url_parts split_url(std::string_view url) {
  auto sep = url.find("://");
  if (sep == std::string_view::npos)
    throw std::invalid_argument("url: no scheme");
  url_parts p;
  p.scheme = std::string{url.substr(0, sep)};
  auto rest = url.substr(sep + 3);
  auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0)
    throw std::invalid_argument("url: no host or path");
  p.host = std::string{rest.substr(0, slash)};
  rest.remove_prefix(slash);
  auto q = rest.find('?');
  p.path = std::string{rest.substr(0, q)};
  if (q != std::string_view::npos)
    p.query = std::string{rest.substr(q + 1)};
  return p;
}

} // namespace phonon::persistence::s3
