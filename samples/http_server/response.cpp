// Response heads, content types and static path checks (response.hpp).
#include "response.hpp"

#include <cstdio>

namespace http {

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

void append_head(std::string& out, int status, std::string_view content_type, std::uint64_t content_length,
                 connection_header conn, std::string_view extra) {
  char line[64];
  int n = std::snprintf(line, sizeof line, "HTTP/1.1 %d ", status);
  out.append(line, static_cast<std::size_t>(n));
  out += reason_phrase(status);
  out += "\r\n";
  if (!content_type.empty()) {
    out += "Content-Type: ";
    out += content_type;
    out += "\r\n";
  }
  n = std::snprintf(line, sizeof line, "Content-Length: %llu\r\n", static_cast<unsigned long long>(content_length));
  out.append(line, static_cast<std::size_t>(n));
  if (conn == connection_header::close) out += "Connection: close\r\n";
  if (conn == connection_header::keep_alive) out += "Connection: keep-alive\r\n";
  out += extra;
  out += "\r\n";
}

void append_text(std::string& out, int status, std::string_view body, connection_header conn, bool with_body,
                 std::string_view content_type, std::string_view extra) {
  append_head(out, status, content_type, body.size(), conn, extra);
  if (with_body) out += body;
}

void append_error(std::string& out, int status, connection_header conn, bool with_body, std::string_view detail,
                  std::string_view extra) {
  std::string body(reason_phrase(status));
  if (!detail.empty()) {
    body += ": ";
    body += detail;
  }
  body += '\n';
  append_text(out, status, body, conn, with_body, "text/plain; charset=utf-8", extra);
}

std::string_view path_of(std::string_view target) {
  if (!target.starts_with('/')) {
    // absolute-form (RFC 9112 §3.2.2): a server must accept "http://host:port/path?query".
    auto lower_starts = [target](std::string_view prefix) {
      if (target.size() < prefix.size()) return false;
      for (std::size_t i = 0; i < prefix.size(); ++i)
        if ((target[i] | 0x20) != prefix[i]) return false;  // ASCII lower case; the target has no controls
      return true;
    };
    std::size_t scheme = lower_starts("http://") ? 4 : lower_starts("https://") ? 5 : std::string_view::npos;
    if (scheme != std::string_view::npos) {
      std::size_t slash = target.find('/', scheme + 3);
      std::size_t query = target.find('?', scheme + 3);
      if (slash == std::string_view::npos || (query != std::string_view::npos && query < slash)) return "/";
      target.remove_prefix(slash);
    }
  }
  return target.substr(0, target.find('?'));
}

std::string_view content_type_for(std::string_view file_name) {
  struct entry {
    std::string_view ext, type;
  };
  static constexpr entry kTypes[] = {
      {".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},   {".js", "text/javascript; charset=utf-8"},
      {".json", "application/json"},         {".txt", "text/plain; charset=utf-8"},
      {".png", "image/png"},                 {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},               {".svg", "image/svg+xml"},
      {".wasm", "application/wasm"},         {".md", "text/markdown; charset=utf-8"},
  };
  std::size_t slash = file_name.rfind('/');
  std::string_view base = slash == std::string_view::npos ? file_name : file_name.substr(slash + 1);
  std::size_t dot = base.rfind('.');
  if (dot != std::string_view::npos) {
    std::string ext(base.substr(dot));
    for (char& c : ext) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    for (const entry& e : kTypes)
      if (ext == e.ext) return e.type;
  }
  return "application/octet-stream";
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  auto hex = [](char c) {
    return (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
  };
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return false;
    out += c;
  }
  return true;
}

int static_relative_path(std::string_view url_path, std::string& rel) {
  rel.clear();
  std::string decoded;
  if (!percent_decode(url_path, decoded)) return 400;
  std::string_view rest = decoded;
  bool hidden = false;
  while (!rest.empty()) {
    std::size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    rest.remove_prefix(slash == std::string_view::npos ? rest.size() : slash + 1);
    if (seg == "..") return 403;
    if (seg.empty() || seg == ".") continue;
    if (seg.starts_with('.')) hidden = true;  // after the loop: a ".." further on is still 403
    if (!rel.empty()) rel += '/';
    rel += seg;
  }
  if (hidden) return 404;
  // A path that ends in '/' names a directory: its index.html (a file named so fails with
  // ENOTDIR, a 404, as a file is no directory).
  if (decoded.empty() || decoded.back() == '/') rel += rel.empty() ? "index.html" : "/index.html";
  return 0;
}

bool is_inside(std::string_view real, std::string_view root) {
  if (real.substr(0, root.size()) != root) return false;
  if (real.size() == root.size()) return true;
  return root == "/" || real[root.size()] == '/';
}

}  // namespace http
