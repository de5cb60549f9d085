// Writing HTTP/1.1 responses, and the pure helpers the routes need: reason phrases, content
// types by file extension, percent-decoding and the static-file path check. Nothing here
// touches sockets or the runtime, so it is unit-testable and fuzzable like the parser.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace http {

/// The exact reply to `GET /` on a kept-alive connection (the epoll baseline sends the same bytes).
inline constexpr std::string_view kHelloResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\n\r\nhello from weft\n";
inline constexpr std::string_view kHelloBody = "hello from weft\n";

/// How the connection continues after a response, which decides its Connection header.
enum class connection_header {
  none,        ///< HTTP/1.1 keep-alive: nothing to say
  keep_alive,  ///< HTTP/1.0 client that asked for keep-alive: "Connection: keep-alive"
  close,       ///< the server closes after this response: "Connection: close"
};

/// The reason phrase of `status` ("Not Found"); "Unknown" for codes this server never sends.
std::string_view reason_phrase(int status);

/// Appends a status line and headers ending with the blank line: Content-Type (if not
/// empty), Content-Length, the Connection header, then `extra` (complete "Name: value\r\n"
/// lines, may be empty).
void append_head(std::string& out, int status, std::string_view content_type, std::uint64_t content_length,
                 connection_header conn, std::string_view extra = {});

/// Appends a complete text/plain response; the body is omitted for HEAD (`with_body` false)
/// while Content-Length still counts it.
void append_text(std::string& out, int status, std::string_view body, connection_header conn, bool with_body,
                 std::string_view content_type = "text/plain; charset=utf-8", std::string_view extra = {});

/// Appends a complete error response whose text/plain body is the reason phrase, then
/// ": `detail`" if given: "Not Found\n", "Bad Request: invalid method\n".
void append_error(std::string& out, int status, connection_header conn, bool with_body, std::string_view detail = {},
                  std::string_view extra = {});

/// The path of a request target without its query: "/a/b" for "/a/b?x=1", and for the
/// absolute-form that a server must accept, "http://host:8080/a/b?x=1", too ("/" when it has no
/// path). The asterisk-form "*" (OPTIONS) and anything else come back as they are.
std::string_view path_of(std::string_view target);

/// The Content-Type for a file name by its extension (html, css, js, json, txt, png, jpg,
/// svg, wasm), application/octet-stream otherwise.
std::string_view content_type_for(std::string_view file_name);

/// Percent-decodes a URL path. False for a bad escape or a decoded NUL.
bool percent_decode(std::string_view in, std::string& out);

/// Turns the part of a URL path after "/static/" into a relative path under the root: decoded,
/// "." and empty segments dropped, "index.html" added when it ends in '/' (or is empty). Returns
/// 0 with `rel` set, 404 for a hidden name (a segment starting with '.': .git, .env), 403 for a
/// ".." segment (before or after decoding), 400 for a bad escape. The result never starts with
/// '/' and never contains "..", but symlinks can still lead out: check the realpath too.
int static_relative_path(std::string_view url_path, std::string& rel);

/// True if `real` (a realpath) is `root` (a realpath) or lies inside it.
bool is_inside(std::string_view real, std::string_view root);

}  // namespace http
