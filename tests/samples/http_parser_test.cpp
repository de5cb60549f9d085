// Unit tests of the http_server sample's incremental request parser: every split point of a
// pipelined pair, Content-Length and chunked bodies, keep-alive rules, the size limits (413,
// 431) and malformed input (400, 414, 417, 501, 505), with no sockets and no runtime; and of the
// response helpers: the static-file path check, percent-decoding, content types, heads.
#include "request_parser.hpp"
#include "response.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using http::parse_status;

// A request copied out of the parser's views, so it outlives the next feed().
struct owned_request {
  std::string method, target, body;
  int version_minor = 0;
  bool keep_alive = false;
  std::vector<std::pair<std::string, std::string>> headers;
  bool operator==(const owned_request&) const = default;
};

owned_request own(const http::request& r) {
  owned_request o{std::string(r.method), std::string(r.target), std::string(r.body), r.version_minor, r.keep_alive, {}};
  for (const auto& h : r.headers) o.headers.emplace_back(std::string(h.name), std::string(h.value));
  return o;
}

// Feeds `input` in pieces cut at `cuts` (sorted offsets), draining requests after each piece.
// Returns the requests and the status of the last next().
std::vector<owned_request> parse_split(std::string_view input, const std::vector<std::size_t>& cuts,
                                       parse_status& last, http::request_parser& p) {
  std::vector<owned_request> out;
  http::request r;
  std::size_t at = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(input.size());
  last = parse_status::need_more;
  for (std::size_t end : ends) {
    p.feed(input.substr(at, end - at));
    at = end;
    while ((last = p.next(r)) == parse_status::complete) out.push_back(own(r));
    EXPECT_LE(p.consumed(), p.fed());
    if (last == parse_status::error) break;
  }
  return out;
}

std::vector<owned_request> parse_all(std::string_view input, parse_status& last, http::request_parser& p) {
  return parse_split(input, {}, last, p);
}

// The status a whole input ends with (complete requests are drained; need_more if none failed).
int error_of(std::string_view input, http::request_limits limits = {}) {
  http::request_parser p(limits);
  parse_status last;
  parse_all(input, last, p);
  return last == parse_status::error ? p.error_status() : 0;
}

const std::string kGet = "GET /a?x=1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n";
const std::string kPost = "POST /form HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";

TEST(HttpParserTest, ParsesRequestLineHeadersAndKeepAlive) {
  http::request_parser p;
  parse_status last;
  auto rs = parse_all(kGet, last, p);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(last, parse_status::need_more);
  EXPECT_EQ(rs[0].method, "GET");
  EXPECT_EQ(rs[0].target, "/a?x=1");
  EXPECT_EQ(rs[0].version_minor, 1);
  EXPECT_TRUE(rs[0].keep_alive);
  ASSERT_EQ(rs[0].headers.size(), 2u);
  EXPECT_EQ(rs[0].headers[0], (std::pair<std::string, std::string>{"Host", "localhost"}));
  EXPECT_EQ(p.consumed(), kGet.size());
  EXPECT_FALSE(p.has_partial());
}

TEST(HttpParserTest, EveryByteSplitOfAPipelinedPairParsesTheSame) {
  const std::string both = kGet + kPost;
  http::request_parser whole;
  parse_status last;
  auto expected = parse_all(both, last, whole);
  ASSERT_EQ(expected.size(), 2u);
  EXPECT_EQ(expected[1].body, "hello");
  EXPECT_FALSE(expected[1].keep_alive);
  for (std::size_t i = 0; i <= both.size(); ++i) {
    for (std::size_t j = i; j <= both.size(); j += 7) {  // a second cut, every 7th byte after the first
      http::request_parser p;
      auto got = parse_split(both, {i, j}, last, p);
      ASSERT_EQ(got, expected) << "cuts at " << i << " and " << j;
      EXPECT_EQ(last, parse_status::need_more);
      EXPECT_EQ(p.consumed(), both.size());
    }
  }
}

// Parses `req` cut in two at every byte, calling check(requests, parser) for each cut.
template <class Check>
void for_every_cut(const std::string& req, Check check) {
  for (std::size_t i = 0; i <= req.size(); ++i) {
    SCOPED_TRACE("cut at " + std::to_string(i));
    http::request_parser p;
    parse_status last;
    check(parse_split(req, {i}, last, p), p);
  }
}

TEST(HttpParserTest, ChunkedBodyEverySplitPoint) {
  const std::string req =
      "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n" + kGet;
  for_every_cut(req, [](const auto& got, const http::request_parser&) {
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].body, "hello 0123456789");
    EXPECT_EQ(got[1].target, "/a?x=1");
  });
}

TEST(HttpParserTest, Http10ClosesUnlessKeepAliveAsked) {
  http::request_parser p;
  parse_status last;
  auto rs = parse_all("GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", last, p);
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_FALSE(rs[0].keep_alive);
  EXPECT_TRUE(rs[1].keep_alive);
  EXPECT_EQ(rs[0].version_minor, 0);
}

TEST(HttpParserTest, LeadingEmptyLinesAreIgnored) {
  http::request_parser p;
  parse_status last;
  auto rs = parse_all("\r\n\r\n" + kGet, last, p);
  EXPECT_EQ(rs.size(), 1u);
}

TEST(HttpParserTest, HeadLimitIs431) {
  std::string big = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(8200, 'a') + "\r\n\r\n";
  EXPECT_EQ(error_of(big), 431);
  EXPECT_EQ(error_of(big.substr(0, 8300)), 431);  // no end of head in sight either
  // Exactly at the limit is fine.
  std::string head = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
  std::string fit = head + std::string(8192 - head.size() - 4, 'a') + "\r\n\r\n";
  ASSERT_EQ(fit.size(), 8192u);
  EXPECT_EQ(error_of(fit), 0);
  EXPECT_EQ(error_of(head + std::string(8192 - head.size() - 3, 'a') + "\r\n\r\n"), 431);
  std::string many = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 120; ++i) many += "X: y\r\n";
  EXPECT_EQ(error_of(many + "\r\n"), 431);
}

TEST(HttpParserTest, BodyLimitIs413) {
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n"), 413);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n"), 413);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n\r\n"), 0);  // waits for it
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n"), 413);
  std::string chunks = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 17; ++i) chunks += "10000\r\n" + std::string(0x10000, 'z') + "\r\n";
  EXPECT_EQ(error_of(chunks), 413);
  http::request_limits small{.max_head = 8192, .max_body = 10};
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
                         std::string(50, '0') + "1\r\n", small),
            0);  // leading zeros are not size
  http::request_limits kib{.max_head = 8192, .max_body = 1000};
  std::string tiny = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 300; ++i) tiny += "0000000000000000000000000000000001\r\nx\r\n";
  EXPECT_EQ(error_of(tiny, kib), 413);  // framing overhead is bounded as well
}

TEST(HttpParserTest, MalformedRequestsAre400) {
  const char* bad[] = {
      "GET\r\n\r\n",
      "GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n",
      "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
      "G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET / HTTP/1.x\r\nHost: h\r\n\r\n",
      "GET / HTTQ/1.1\r\nHost: h\r\n\r\n",
      "GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET / HTTP/1.1\rHost: h\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\r\n\r\n",
      "GET / HTTP/1.1\r\n\rHost: h\r\n\r\n",
      "POST / HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\n3\nabc\r\n0\r\n\r\n",
      "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
      "GET / HTTP/1.1\r\n: h\r\nHost: h\r\n\r\n",
      "GET / HTTP/1.1\r\nNoColon\r\nHost: h\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
      ("GET / HTTP/1.1\r\nHost: a\x7f" "b\r\n\r\n"),
      "GET / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 2\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h/x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: user@h\r\n\r\n",
  };
  for (const char* b : bad) EXPECT_EQ(error_of(b), 400) << b;
  // Garbage fails at its first byte that no request line holds, before any line end.
  EXPECT_EQ(error_of("GE\x01"), 400);
  EXPECT_EQ(error_of("GET /\xff"), 400);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
  EXPECT_EQ(error_of("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
  for (const char* host : {"localhost", "example.com:8080", "127.0.0.1:80", "[::1]:8080", "[fe80::1%25eth0]", ""})
    EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n"), 0) << host;
}

TEST(HttpParserTest, BareLfEndsHeadLinesAtEverySplit) {
  // As typed into nc without -C: LF alone, mixed with CRLF, leading empty lines too.
  const std::string req = "\nGET /lf HTTP/1.1\nHost: h\r\nX-A: y\n\n" + kGet;
  for_every_cut(req, [&req](const auto& got, const http::request_parser& p) {
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].target, "/lf");
    ASSERT_EQ(got[0].headers.size(), 2u);
    EXPECT_EQ(got[0].headers[1], (std::pair<std::string, std::string>{"X-A", "y"}));
    EXPECT_EQ(got[1].target, "/a?x=1");
    EXPECT_EQ(p.consumed(), req.size());
  });
}

TEST(HttpParserTest, LongRequestLineIs414) {
  const std::string line = "GET /" + std::string(9000, 'a');
  EXPECT_EQ(error_of(line), 414);  // no end of line in sight
  EXPECT_EQ(error_of(line + " HTTP/1.1\r\nHost: h\r\n\r\n"), 414);
}

TEST(HttpParserTest, ExpectContinueIsOfferedOncePerRequest) {
  http::request_parser p;
  http::request r;
  p.feed("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n");
  EXPECT_EQ(p.next(r), parse_status::need_more);
  EXPECT_TRUE(p.take_continue());
  EXPECT_FALSE(p.take_continue());
  // The head of the request whose body is awaited, for refusing it before the body comes.
  ASSERT_TRUE(p.reading_body());
  EXPECT_EQ(p.pending_method(), "POST");
  EXPECT_EQ(p.pending_target(), "/");
  p.feed("hel");  // moving the buffer keeps them right
  EXPECT_EQ(p.next(r), parse_status::need_more);
  EXPECT_EQ(p.pending_method(), "POST");
  EXPECT_EQ(p.pending_target(), "/");
  p.feed("lo");
  ASSERT_EQ(p.next(r), parse_status::complete);
  EXPECT_EQ(r.body, "hello");
  EXPECT_FALSE(p.take_continue());
  // The whole body already here: no 100 needed. HTTP/1.0: the expectation is ignored.
  p.feed("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi");
  ASSERT_EQ(p.next(r), parse_status::complete);
  EXPECT_FALSE(p.take_continue());
  p.feed("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  EXPECT_EQ(p.next(r), parse_status::need_more);
  EXPECT_FALSE(p.take_continue());
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n"), 417);
}

TEST(HttpParserTest, ExpectContinueWithAnOversizeBodyIs413Alone) {
  // Whichever field comes first, the body is refused without inviting the client to send it.
  for (const char* head : {"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1048577\r\n\r\n",
                           "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\nExpect: 100-continue\r\n\r\n"}) {
    http::request_parser p;
    http::request r;
    p.feed(head);
    ASSERT_EQ(p.next(r), parse_status::error) << head;
    EXPECT_EQ(p.error_status(), 413) << head;
    EXPECT_FALSE(p.take_continue()) << head;
  }
}

TEST(HttpParserTest, ErrorIsStickyAndConsumesNothingMore) {
  http::request_parser p;
  http::request r;
  p.feed(kGet + "BAD\r\n\r\n" + kGet);
  EXPECT_EQ(p.next(r), parse_status::complete);
  EXPECT_EQ(p.next(r), parse_status::error);
  EXPECT_EQ(p.error_status(), 400);
  EXPECT_FALSE(p.error().empty());
  p.feed(kGet);
  EXPECT_EQ(p.next(r), parse_status::error);
  EXPECT_EQ(p.consumed(), kGet.size());
}

TEST(HttpParserTest, FindIsCaseInsensitive) {
  http::request_parser p;
  http::request r;
  p.feed("GET / HTTP/1.1\r\nhOsT: x\r\nX-A:   spaced value \t\r\n\r\n");
  ASSERT_EQ(p.next(r), parse_status::complete);
  ASSERT_NE(r.find("Host"), nullptr);
  EXPECT_EQ(*r.find("host"), "x");
  EXPECT_EQ(*r.find("x-a"), "spaced value");
  EXPECT_EQ(r.find("missing"), nullptr);
}

TEST(HttpResponseTest, StaticPathsNeverClimbOutOfTheRoot) {
  std::string rel;
  EXPECT_EQ(http::static_relative_path("a/b.txt", rel), 0);
  EXPECT_EQ(rel, "a/b.txt");
  EXPECT_EQ(http::static_relative_path("//etc/./passwd", rel), 0);
  EXPECT_EQ(rel, "etc/passwd");  // absolute paths become relative to the root
  EXPECT_EQ(http::static_relative_path("%61%2Fb", rel), 0);
  EXPECT_EQ(rel, "a/b");
  for (const char* bad : {"..", "../x", "a/../../x", "%2e%2e/x", "%2E%2e%2fx", "a/..%2f..%2fx", "a/%2e%2e"})
    EXPECT_EQ(http::static_relative_path(bad, rel), 403) << bad;
  for (const char* bad : {"%", "%2", "%zz", "a%00b"}) EXPECT_EQ(http::static_relative_path(bad, rel), 400) << bad;
  for (const char* index : {"", "/", "./", "//./"}) {  // the root's index
    EXPECT_EQ(http::static_relative_path(index, rel), 0) << index;
    EXPECT_EQ(rel, "index.html") << index;
  }
  EXPECT_EQ(http::static_relative_path("docs/", rel), 0);
  EXPECT_EQ(rel, "docs/index.html");
  EXPECT_EQ(http::static_relative_path("a.txt/", rel), 0);  // opening it fails: a file is no directory
  EXPECT_EQ(rel, "a.txt/index.html");
  for (const char* hidden : {".env", ".git/config", "a/.hidden", "%2egit/HEAD", "..."})
    EXPECT_EQ(http::static_relative_path(hidden, rel), 404) << hidden;
  EXPECT_EQ(http::static_relative_path(".git/../../x", rel), 403);  // traversal still says so
  EXPECT_TRUE(http::is_inside("/srv/www/a", "/srv/www"));
  EXPECT_TRUE(http::is_inside("/srv/www", "/srv/www"));
  EXPECT_FALSE(http::is_inside("/srv/www2/a", "/srv/www"));
  EXPECT_FALSE(http::is_inside("/srv", "/srv/www"));
  EXPECT_TRUE(http::is_inside("/etc", "/"));
}

TEST(HttpResponseTest, PathOfOriginAndAbsoluteForms) {
  EXPECT_EQ(http::path_of("/a/b?x=1"), "/a/b");
  EXPECT_EQ(http::path_of("/"), "/");
  EXPECT_EQ(http::path_of("http://localhost:8080/static/a.txt?x"), "/static/a.txt");
  EXPECT_EQ(http::path_of("HTTPS://h/metrics"), "/metrics");
  EXPECT_EQ(http::path_of("http://h"), "/");
  EXPECT_EQ(http::path_of("http://h?q=/static/x"), "/");
  EXPECT_EQ(http::path_of("*"), "*");
  EXPECT_EQ(http::path_of("junk?u=http://h/static/x"), "junk");  // no scheme at the start
  std::string out;
  http::append_error(out, 404, http::connection_header::none, true);
  EXPECT_TRUE(out.ends_with("\r\n\r\nNot Found\n")) << out;
  out.clear();
  http::append_error(out, 400, http::connection_header::close, true, "invalid method");
  EXPECT_TRUE(out.ends_with("Connection: close\r\n\r\nBad Request: invalid method\n")) << out;
}

TEST(HttpResponseTest, ContentTypesAndHeads) {
  EXPECT_EQ(http::content_type_for("a/b/INDEX.HTML"), "text/html; charset=utf-8");
  EXPECT_EQ(http::content_type_for("x.wasm"), "application/wasm");
  EXPECT_EQ(http::content_type_for("x.jpg"), "image/jpeg");
  EXPECT_EQ(http::content_type_for("dir.js/file"), "application/octet-stream");
  EXPECT_EQ(http::content_type_for("noext"), "application/octet-stream");
  std::string out;
  http::append_text(out, 200, http::kHelloBody, http::connection_header::none, true);
  EXPECT_EQ(out, http::kHelloResponse);  // the fast path and the general path agree
  out.clear();
  http::append_text(out, 404, "nf\n", http::connection_header::close, false);
  EXPECT_EQ(out, "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n"
                 "Connection: close\r\n\r\n");
}

}  // namespace
