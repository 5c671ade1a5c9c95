// fuzz-sources: http/multipart.cpp

// The multipart/form-data parser (http/multipart.*). The upload path feeds
// it the body in whatever pieces the socket delivers, so the result must
// not depend on how the body is cut: the whole input in one piece and the
// same input in pieces whose sizes are derived from the input must give the
// same outcome, error, filename, part Content-Type and content bytes.
// Also parses the input as a Content-Type for multipart_boundary().
//
// Input layout (FuzzedDataProvider takes integers from the end): the body,
// then one byte choosing the boundary and field, then 4 bytes seeding the
// chunk sizes. A seed file is therefore a readable body plus 5 bytes.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "http/multipart.hpp"

namespace {

using phonon::http::multipart_boundary;
using phonon::http::multipart_parser;

/// Everything a parse produced that the upload path acts on.
struct outcome {
  bool ok = false;
  multipart_parser::error error = multipart_parser::error::none;
  std::string filename;
  std::string content_type;
  size_t part_size = 0;
  std::string data;
};

// Boundaries of the kinds clients send; "--" and a space inside are legal
// and the odd ones that find framing bugs.
constexpr const char* boundaries[] = {
  "b",
  "XyZ",
  "----WebKitFormBoundary7MA4YWxkTrZu0gW",
  "--",
  "a b",
  "------------------------d74496d66958873e",
  "=_Part_0_1.2",
};
constexpr const char* fields[] = {"audio_file", "a", ""};

/// Feeds `body` in pieces of sizes `sizes` (0 means "all that is left"),
/// stopping at the first failed feed as the upload path does.
outcome parse(const std::string& boundary, const std::string& field,
              std::string_view body, const std::vector<size_t>& sizes) {
  outcome result;
  multipart_parser parser{boundary, field,
                          [&](const char* data, size_t size) {
                            result.data.append(data, size);
                          }};
  size_t at = 0;
  size_t i = 0;
  bool fed = true;
  while (fed && at < body.size()) {
    size_t n = i < sizes.size() ? sizes[i++] : 0;
    if (n == 0 || n > body.size() - at)
      n = body.size() - at;
    fed = parser.feed(body.data() + at, n);
    at += n;
  }
  result.ok = parser.finish();
  result.error = parser.last_error();
  result.filename = parser.filename();
  result.content_type = parser.part_content_type();
  result.part_size = parser.part_size();
  // Invariants of a single parse.
  if (result.part_size != result.data.size())
    abort();
  if (result.ok != (result.error == multipart_parser::error::none))
    abort();
  return result;
}

[[noreturn]] void mismatch(const char* what, const outcome& whole,
                           const outcome& pieces) {
  std::fprintf(stderr,
               "multipart: %s differs: whole ok=%d error=%d size=%zu, "
               "pieces ok=%d error=%d size=%zu\n",
               what, whole.ok, static_cast<int>(whole.error),
               whole.data.size(), pieces.ok, static_cast<int>(pieces.error),
               pieces.data.size());
  abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The raw input as a Content-Type header: must not crash, and a boundary
  // it yields must be one the parser accepts (1..70 characters).
  if (auto b = multipart_boundary(
        std::string_view{reinterpret_cast<const char*>(data), size})) {
    if (b->empty() || b->size() > 70)
      abort();
  }

  FuzzedDataProvider fdp{data, size};
  auto seed = fdp.ConsumeIntegral<uint32_t>();
  auto choice = fdp.ConsumeIntegral<uint8_t>();
  auto body = fdp.ConsumeRemainingBytesAsString();
  std::string boundary =
    boundaries[choice % (sizeof(boundaries) / sizeof(boundaries[0]))];
  std::string field = fields[(choice / 16) % 3];

  // Piece sizes from the seed: mostly small (the interesting cuts are at
  // delimiters and CRLFs), sometimes large.
  std::minstd_rand rng{seed};
  std::vector<size_t> sizes;
  for (size_t total = 0; total < body.size();) {
    auto r = rng();
    size_t n = (r & 3) == 0 ? 1 + (r >> 8) % 4096 : 1 + (r >> 8) % 8;
    sizes.push_back(n);
    total += n;
  }

  auto whole = parse(boundary, field, body, {});
  auto pieces = parse(boundary, field, body, sizes);
  if (whole.ok != pieces.ok)
    mismatch("result", whole, pieces);
  if (whole.error != pieces.error)
    mismatch("error", whole, pieces);
  if (whole.filename != pieces.filename)
    mismatch("filename", whole, pieces);
  if (whole.content_type != pieces.content_type)
    mismatch("part content type", whole, pieces);
  if (whole.data != pieces.data)
    mismatch("content", whole, pieces);
  return 0;
}
