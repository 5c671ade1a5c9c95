#include "http/multipart.hpp"

#include <optional>
#include <utility>
#include <vector>

namespace phonon::http {

namespace {

/// Largest header block of one part, from the end of its delimiter up to and
/// including the blank line that ends it.
constexpr size_t max_header_block = 8 * 1024;

/// Longest boundary RFC 2046 allows.
constexpr size_t max_boundary = 70;

char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view x, std::string_view y) {
  if (x.size() != y.size())
    return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (to_lower(x[i]) != to_lower(y[i]))
      return false;
  return true;
}

bool is_space(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_space(text.back()))
    text.remove_suffix(1);
  return text;
}

/// One `name=value` parameter of a header value such as Content-Type or
/// Content-Disposition.
struct parameter {
  std::string_view name;
  std::string value;
};

/// Reads a quoted string starting after its opening quote; `\"` and `\\`
/// are unescaped, any other backslash is kept (browsers send Windows paths
/// unescaped). Returns false when the closing quote is missing.
bool read_quoted(std::string_view& text, std::string& out) {
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = text[i];
    if (c == '"') {
      text.remove_prefix(i + 1);
      return true;
    }
    if (c == '\\' && i + 1 < text.size()
        && (text[i + 1] == '"' || text[i + 1] == '\\')) {
      out += text[++i];
      continue;
    }
    out += c;
  }
  return false;
}

/// Splits "type; a=1; b=\"x; y\"" into its leading token (returned) and
/// parameters (appended to `params`). Returns nullopt when a quoted value is
/// not terminated or a parameter has no name.
std::optional<std::string_view>
parse_header_value(std::string_view text, std::vector<parameter>& params) {
  auto semi = text.find(';');
  auto head = trim(text.substr(0, semi));
  if (semi == std::string_view::npos)
    return head;
  text.remove_prefix(semi + 1);
  for (;;) {
    text = trim(text);
    if (text.empty())
      break;
    if (text.front() == ';') {
      text.remove_prefix(1);
      continue;
    }
    auto eq = text.find_first_of("=;");
    if (eq == std::string_view::npos || text[eq] == ';') {
      // A bare token without a value: ignore it.
      if (eq == std::string_view::npos)
        break;
      text.remove_prefix(eq + 1);
      continue;
    }
    parameter param;
    param.name = trim(text.substr(0, eq));
    if (param.name.empty())
      return std::nullopt;
    text.remove_prefix(eq + 1);
    text = trim(text);
    if (!text.empty() && text.front() == '"') {
      text.remove_prefix(1);
      if (!read_quoted(text, param.value))
        return std::nullopt;
      // Skip anything up to the next ';'.
      auto next = text.find(';');
      text.remove_prefix(next == std::string_view::npos ? text.size() : next);
    } else {
      auto next = text.find(';');
      param.value = std::string{trim(text.substr(0, next))};
      text.remove_prefix(next == std::string_view::npos ? text.size() : next);
    }
    params.emplace_back(std::move(param));
  }
  return head;
}

const parameter* find_param(const std::vector<parameter>& params,
                            std::string_view name) {
  for (auto& param : params)
    if (iequals(param.name, name))
      return &param;
  return nullptr;
}

} // namespace

std::optional<std::string> multipart_boundary(std::string_view content_type) {
  std::vector<parameter> params;
  auto type = parse_header_value(content_type, params);
  if (!type || !iequals(*type, "multipart/form-data"))
    return std::nullopt;
  auto boundary = find_param(params, "boundary");
  if (boundary == nullptr)
    return std::nullopt;
  auto& value = boundary->value;
  if (value.empty() || value.size() > max_boundary || value.back() == ' ')
    return std::nullopt;
  // Be lenient about RFC 2046's bchars, but a control or non-ASCII character
  // could never be matched reliably.
  for (auto c : value) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f)
      return std::nullopt;
  }
  return value;
}

multipart_parser::multipart_parser(std::string boundary,
                                   std::string field_name, data_sink on_data)
  : delimiter_("\r\n--" + boundary),
    field_name_(std::move(field_name)),
    on_data_(std::move(on_data)) {
  // The body may start with the first delimiter without a leading CRLF:
  // pretend one was there.
  buf_ = "\r\n";
}

bool multipart_parser::fail(error e) {
  state_ = state::failed;
  error_ = e;
  buf_.clear();
  buf_.shrink_to_fit();
  return false;
}

bool multipart_parser::feed(const char* data, size_t size) {
  switch (state_) {
    case state::failed:
      return false;
    case state::epilogue:
      return true;
    default:
      break;
  }
  buf_.append(data, size);
  for (;;) {
    switch (state_) {
      case state::preamble:
      case state::body: {
        auto pos = buf_.find(delimiter_);
        if (pos == std::string::npos) {
          // Everything but a tail that may begin a delimiter is content.
          auto keep = delimiter_.size() - 1;
          if (buf_.size() > keep) {
            auto n = buf_.size() - keep;
            if (state_ == state::body && in_wanted_) {
              if (on_data_)
                on_data_(buf_.data(), n);
              part_size_ += n;
            }
            buf_.erase(0, n);
          }
          return true;
        }
        if (state_ == state::body && in_wanted_ && pos > 0) {
          if (on_data_)
            on_data_(buf_.data(), pos);
          part_size_ += pos;
        }
        buf_.erase(0, pos + delimiter_.size());
        in_wanted_ = false;
        state_ = state::headers;
        break;
      }
      case state::headers: {
        // Directly after a delimiter: "--" closes, else optional transport
        // padding, CRLF and the header block up to an empty line.
        if (buf_.size() < 2) {
          if (!buf_.empty() && buf_[0] != '-' && buf_[0] != '\r'
              && !is_space(buf_[0]))
            return fail(error::malformed);
          return true;
        }
        if (buf_[0] == '-') {
          if (buf_[1] != '-')
            return fail(error::malformed);
          state_ = state::epilogue;
          buf_.clear();
          buf_.shrink_to_fit();
          return true;
        }
        size_t i = 0;
        while (i < buf_.size() && is_space(buf_[i]))
          ++i;
        if (i >= max_header_block)
          return fail(error::malformed);
        if (i + 2 > buf_.size()) {
          if (i < buf_.size() && buf_[i] != '\r')
            return fail(error::malformed);
          return true;
        }
        if (buf_[i] != '\r' || buf_[i + 1] != '\n')
          return fail(error::malformed);
        // Searching from the CRLF that ends the delimiter line lets an empty
        // header block ("\r\n\r\n") match as well.
        auto end = buf_.find("\r\n\r\n", i);
        if (end == std::string::npos) {
          if (buf_.size() >= max_header_block)
            return fail(error::malformed);
          return true;
        }
        if (end + 4 > max_header_block)
          return fail(error::malformed);
        std::string_view block;
        if (end > i)
          block = std::string_view{buf_}.substr(i + 2, end - i - 2);
        if (!parse_headers(block))
          return false;
        buf_.erase(0, end + 4);
        state_ = state::body;
        break;
      }
      case state::epilogue:
        buf_.clear();
        return true;
      case state::failed:
        return false;
    }
  }
}

bool multipart_parser::finish() {
  switch (state_) {
    case state::failed:
      return false;
    case state::epilogue:
      if (!found_)
        return fail(error::missing_part);
      return true;
    default:
      return fail(error::malformed);
  }
}

bool multipart_parser::parse_headers(std::string_view block) {
  std::string disposition;
  std::string content_type;
  bool has_disposition = false;
  bool has_content_type = false;
  // Unfold obsolete line folding first: a line starting with a space or tab
  // continues the previous header.
  std::string name;
  std::string value;
  auto commit = [&]() -> bool {
    if (name.empty())
      return true;
    if (iequals(name, "content-disposition") && !has_disposition) {
      has_disposition = true;
      disposition = value;
    } else if (iequals(name, "content-type") && !has_content_type) {
      has_content_type = true;
      content_type = std::string{trim(value)};
    }
    name.clear();
    value.clear();
    return true;
  };
  while (!block.empty()) {
    auto eol = block.find("\r\n");
    auto line = block.substr(0, eol);
    block.remove_prefix(eol == std::string_view::npos ? block.size()
                                                      : eol + 2);
    if (!line.empty() && is_space(line.front())) {
      if (name.empty())
        return fail(error::malformed);
      value += ' ';
      value += trim(line);
      continue;
    }
    commit();
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return fail(error::malformed);
    name = std::string{trim(line.substr(0, colon))};
    if (name.empty())
      return fail(error::malformed);
    value = std::string{trim(line.substr(colon + 1))};
  }
  commit();
  if (!has_disposition) {
    // RFC 7578 requires one; a part without it cannot be the wanted one.
    in_wanted_ = false;
    return true;
  }
  std::vector<parameter> params;
  auto type = parse_header_value(disposition, params);
  if (!type)
    return fail(error::malformed);
  auto part_name = find_param(params, "name");
  if (!iequals(*type, "form-data") || part_name == nullptr
      || part_name->value != field_name_) {
    in_wanted_ = false;
    return true;
  }
  if (found_)
    return fail(error::duplicate_part);
  found_ = true;
  in_wanted_ = true;
  if (auto fname = find_param(params, "filename"))
    filename_ = fname->value;
  part_content_type_ = std::move(content_type);
  return true;
}

} // namespace phonon::http
