// A small XML reader for S3's answers (error bodies, ListObjectsV2,
// InitiateMultipartUpload, CompleteMultipartUpload).
//
// Why by hand and not libxml2 or expat (both packaged by Debian): S3's
// documents are small (a listing page holds at most 1,000 keys),
// attribute-free and flat, and the client needs only element names and
// decoded text. What "correctly" demands of this subset is short: the five
// predefined entities and character references (keys arrive XML-escaped:
// "a&amp;b", "&#x1;"), CDATA sections, comments, the prolog, namespace
// prefixes and self-closing tags. That is ~150 lines tested in
// tests/unit/persistence/s3_client_test.cpp, against a new runtime
// dependency for the server, its Docker image and scripts/setup.sh. DTDs
// are refused outright, so no entity expansion attack applies, and nesting
// is capped so hostile input cannot exhaust the stack.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "persistence/s3/client.hpp"

namespace phonon::persistence::s3 {

namespace {

constexpr int max_depth = 32;

[[noreturn]] void malformed(const std::string& why) {
  throw std::runtime_error("malformed XML: " + why);
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    malformed("bad character reference");
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// Appends `raw` (character data between tags) with references decoded.
void append_decoded(std::string& out, std::string_view raw) {
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '&') {
      out += raw[i];
      continue;
    }
    auto semi = raw.find(';', i);
    if (semi == std::string_view::npos)
      malformed("unterminated reference");
    auto ref = raw.substr(i + 1, semi - i - 1);
    if (ref == "lt") {
      out += '<';
    } else if (ref == "gt") {
      out += '>';
    } else if (ref == "amp") {
      out += '&';
    } else if (ref == "quot") {
      out += '"';
    } else if (ref == "apos") {
      out += '\'';
    } else if (ref.size() >= 2 && ref[0] == '#') {
      bool hex = ref[1] == 'x';
      auto digits = ref.substr(hex ? 2 : 1);
      if (digits.empty() || digits.size() > 8)
        malformed("bad character reference");
      uint32_t cp = 0;
      for (char c : digits) {
        int d;
        if (c >= '0' && c <= '9')
          d = c - '0';
        else if (hex && c >= 'a' && c <= 'f')
          d = c - 'a' + 10;
        else if (hex && c >= 'A' && c <= 'F')
          d = c - 'A' + 10;
        else
          malformed("bad character reference");
        cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(d);
      }
      append_utf8(out, cp);
    } else {
      malformed("unknown entity &" + std::string{ref} + ";");
    }
    i = semi;
  }
}

class parser {
public:
  explicit parser(std::string_view doc) : s_(doc) {
    // nop
  }

  xml_node document() {
    skip_misc();
    if (starts("<!DOCTYPE"))
      malformed("DOCTYPE not accepted");
    if (!starts("<"))
      malformed("no root element");
    auto root = element(0);
    skip_misc();
    if (i_ != s_.size())
      malformed("content after the root element");
    return root;
  }

private:
  bool starts(std::string_view p) const {
    return s_.substr(i_, p.size()) == p;
  }

  /// Moves past the next `end`; throws when there is none.
  void skip_past(std::string_view end) {
    auto at = s_.find(end, i_);
    if (at == std::string_view::npos)
      malformed("missing '" + std::string{end} + "'");
    i_ = at + end.size();
  }

  void skip_space() {
    while (i_ < s_.size() && is_space(s_[i_]))
      ++i_;
  }

  /// Whitespace, processing instructions and comments between elements.
  void skip_misc() {
    for (;;) {
      skip_space();
      if (starts("<?"))
        skip_past("?>");
      else if (starts("<!--"))
        skip_past("-->");
      else
        return;
    }
  }

  std::string name() {
    auto b = i_;
    while (i_ < s_.size() && !is_space(s_[i_]) && s_[i_] != '/'
           && s_[i_] != '>' && s_[i_] != '=')
      ++i_;
    if (i_ == b)
      malformed("empty name");
    auto full = s_.substr(b, i_ - b);
    auto colon = full.rfind(':');
    return std::string{colon == std::string_view::npos
                         ? full
                         : full.substr(colon + 1)};
  }

  xml_node element(int depth) {
    if (depth > max_depth)
      malformed("nested too deeply");
    ++i_; // '<'
    xml_node node;
    node.name = name();
    // Attributes are skipped (S3 uses them only for xmlns).
    for (;;) {
      skip_space();
      if (i_ >= s_.size())
        malformed("unterminated tag <" + node.name);
      if (starts("/>")) {
        i_ += 2;
        return node;
      }
      if (s_[i_] == '>') {
        ++i_;
        break;
      }
      name();
      skip_space();
      if (i_ >= s_.size() || s_[i_] != '=')
        malformed("attribute without value in <" + node.name);
      ++i_;
      skip_space();
      if (i_ >= s_.size() || (s_[i_] != '"' && s_[i_] != '\''))
        malformed("unquoted attribute in <" + node.name);
      auto quote = s_[i_++];
      auto end = s_.find(quote, i_);
      if (end == std::string_view::npos)
        malformed("unterminated attribute in <" + node.name);
      i_ = end + 1;
    }
    // Content.
    for (;;) {
      if (i_ >= s_.size())
        malformed("unterminated element <" + node.name + ">");
      if (starts("</")) {
        i_ += 2;
        auto closing = name();
        skip_space();
        if (closing != node.name || i_ >= s_.size() || s_[i_] != '>')
          malformed("</" + closing + "> closes <" + node.name + ">");
        ++i_;
        return node;
      }
      if (starts("<!--")) {
        skip_past("-->");
      } else if (starts("<![CDATA[")) {
        i_ += 9;
        auto end = s_.find("]]>", i_);
        if (end == std::string_view::npos)
          malformed("unterminated CDATA");
        node.text.append(s_.substr(i_, end - i_));
        i_ = end + 3;
      } else if (starts("<?")) {
        skip_past("?>");
      } else if (starts("<!")) {
        malformed("declaration inside an element");
      } else if (s_[i_] == '<') {
        node.children.push_back(element(depth + 1));
      } else {
        auto end = s_.find('<', i_);
        if (end == std::string_view::npos)
          end = s_.size();
        append_decoded(node.text, s_.substr(i_, end - i_));
        i_ = end;
      }
    }
  }

  std::string_view s_;
  size_t i_ = 0;
};

} // namespace

const xml_node* xml_node::child(std::string_view child_name) const {
  for (const auto& c : children)
    if (c.name == child_name)
      return &c;
  return nullptr;
}

std::string xml_node::child_text(std::string_view child_name) const {
  auto* c = child(child_name);
  return c != nullptr ? c->text : std::string{};
}

xml_node parse_xml(std::string_view doc) {
  return parser{doc}.document();
}

} // namespace phonon::persistence::s3
