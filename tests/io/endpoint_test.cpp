// weft::net::endpoint, resolve and the weft.net / weft.resolver error categories: parse and
// print round trips of every form, one test per parse error (each message quotes the input),
// addresses the kernel hands back from bound sockets, and getaddrinfo from a plain thread and
// from fibers. Nothing leaves the machine: names resolve from /etc/hosts, and the failing name
// is one glibc rejects before sending a query.
#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <weft/net/endpoint.hpp>
#include <weft/net/error.hpp>

#include "weft_test.hpp"

using weft::net::endpoint;
using weft_test::RuntimeTest;

namespace {

constexpr std::size_t sun_path_offset = offsetof(::sockaddr_un, sun_path);

// "nosuch.invalid" would go to the configured name server (it answers NXDOMAIN here, but a
// machine without DNS waits for resolv.conf's timeouts). An empty label makes glibc's
// res_mkquery fail before any packet is sent, so the lookup fails locally with EAI_NONAME.
constexpr const char* unresolvable = "nosuch..invalid";

// Closes a descriptor at scope exit, so a failed assertion does not leak it.
struct fd_guard {
  int fd;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

// Binds a fresh socket of `family` to `e` and returns the address the kernel reports back.
endpoint bound_address(int family, const endpoint& e) {
  fd_guard s{::socket(family, SOCK_STREAM, 0)};
  if (s.fd < 0) throw std::system_error(errno, std::system_category(), "socket");
  if (::bind(s.fd, e.data(), e.size()) != 0) throw std::system_error(errno, std::system_category(), "bind");
  endpoint got;
  ::socklen_t n = endpoint::capacity();
  if (::getsockname(s.fd, got.data(), &n) != 0) throw std::system_error(errno, std::system_category(), "getsockname");
  got.resize(n);
  return got;
}

bool is_localhost_80(const endpoint& e) {
  return e == endpoint::loopback_v4(80) || e == endpoint::loopback_v6(80);
}

// ---- endpoint: forms, printing, accessors ----------------------------------------------------

TEST(EndpointTest, DefaultIsEmpty) {
  endpoint e;
  EXPECT_TRUE(e.empty());
  EXPECT_EQ(e.family(), AF_UNSPEC);
  EXPECT_EQ(e.to_string(), "");
  EXPECT_EQ(e.port(), 0);
  EXPECT_EQ(e.path(), "");
  EXPECT_EQ(e, endpoint());
  EXPECT_NE(e, endpoint::loopback_v4(0));
}

TEST(EndpointTest, ParsesIpv4WithPort) {
  endpoint e = endpoint::parse("1.2.3.4:80");
  ASSERT_TRUE(e.is_v4());
  EXPECT_EQ(e.size(), sizeof(::sockaddr_in));
  EXPECT_EQ(e.port(), 80);
  const auto* sin = reinterpret_cast<const ::sockaddr_in*>(e.data());
  EXPECT_EQ(ntohl(sin->sin_addr.s_addr), 0x01020304u);
  EXPECT_EQ(ntohs(sin->sin_port), 80);
  EXPECT_EQ(e.to_string(), "1.2.3.4:80");
  EXPECT_EQ(e.path(), "");
}

TEST(EndpointTest, ParsesIpv6WithPort) {
  endpoint e = endpoint::parse("[2001:db8::1]:8080");
  ASSERT_TRUE(e.is_v6());
  EXPECT_EQ(e.size(), sizeof(::sockaddr_in6));
  EXPECT_EQ(e.port(), 8080);
  EXPECT_EQ(e.to_string(), "[2001:db8::1]:8080");
  EXPECT_EQ(reinterpret_cast<const ::sockaddr_in6*>(e.data())->sin6_scope_id, 0u);
}

TEST(EndpointTest, PrintsIpv6InCanonicalForm) {
  EXPECT_EQ(endpoint::parse("[0:0:0:0:0:0:0:1]:443").to_string(), "[::1]:443");
  EXPECT_EQ(endpoint::parse("[2001:DB8:0::0:1]:1").to_string(), "[2001:db8::1]:1");
  EXPECT_EQ(endpoint::parse("[::ffff:10.0.0.1]:5").to_string(), "[::ffff:10.0.0.1]:5");
}

TEST(EndpointTest, ParsesIpv6ScopeByInterfaceName) {
  unsigned lo = ::if_nametoindex("lo");
  ASSERT_NE(lo, 0u) << "this machine has no 'lo' interface";
  endpoint e = endpoint::parse("[fe80::1%lo]:80");
  ASSERT_TRUE(e.is_v6());
  EXPECT_EQ(reinterpret_cast<const ::sockaddr_in6*>(e.data())->sin6_scope_id, lo);
  EXPECT_EQ(e.to_string(), "[fe80::1%lo]:80");
  EXPECT_EQ(endpoint::parse(e.to_string()), e);
}

TEST(EndpointTest, ParsesIpv6ScopeByNumber) {
  unsigned lo = ::if_nametoindex("lo");
  ASSERT_NE(lo, 0u);
  // A known index prints as its interface name, which parses back to the same index.
  endpoint named = endpoint::parse("[fe80::1%" + std::to_string(lo) + "]:80");
  EXPECT_EQ(named, endpoint::parse("[fe80::1%lo]:80"));
  EXPECT_EQ(named.to_string(), "[fe80::1%lo]:80");
  // An index with no interface prints as the number.
  endpoint numbered = endpoint::parse("[fe80::1%4000000000]:80");
  EXPECT_EQ(reinterpret_cast<const ::sockaddr_in6*>(numbered.data())->sin6_scope_id, 4000000000u);
  EXPECT_EQ(numbered.to_string(), "[fe80::1%4000000000]:80");
  EXPECT_EQ(endpoint::parse(numbered.to_string()), numbered);
}

TEST(EndpointTest, AcceptsPortsZeroAndMax) {
  for (const char* text : {"127.0.0.1:0", "127.0.0.1:65535", "[::1]:0", "[::1]:65535"}) {
    SCOPED_TRACE(text);
    endpoint e = endpoint::parse(text);
    EXPECT_EQ(e.to_string(), text);
  }
  EXPECT_EQ(endpoint::parse("10.0.0.1:0").port(), 0);
  EXPECT_EQ(endpoint::parse("10.0.0.1:65535").port(), 65535);
  EXPECT_EQ(endpoint::parse("[::]:65535").port(), 65535);
  EXPECT_EQ(endpoint::parse("10.0.0.1:00080").port(), 80);
}

TEST(EndpointTest, RejectsPort65536) {
  std::error_code ec;
  EXPECT_TRUE(endpoint::parse("10.0.0.1:65536", ec).empty());
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_TRUE(endpoint::parse("[::1]:65536", ec).empty());
  EXPECT_EQ(ec, std::errc::invalid_argument);
}

TEST(EndpointTest, ParsesUnixPathInBothForms) {
  endpoint a = endpoint::parse("unix:/run/weft.sock");
  endpoint b = endpoint::parse("/run/weft.sock");
  ASSERT_TRUE(a.is_unix());
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.path(), "/run/weft.sock");
  EXPECT_EQ(a.port(), 0);
  EXPECT_EQ(a.size(), sun_path_offset + std::strlen("/run/weft.sock") + 1);
  EXPECT_STREQ(reinterpret_cast<const ::sockaddr_un*>(a.data())->sun_path, "/run/weft.sock");
  EXPECT_EQ(a.to_string(), "unix:/run/weft.sock");
  EXPECT_EQ(endpoint::parse(a.to_string()), a);
  EXPECT_EQ(endpoint::unix_path("/run/weft.sock"), a);
  EXPECT_EQ(endpoint::parse("unix:relative.sock").path(), "relative.sock");
}

TEST(EndpointTest, ParsesAbstractName) {
  endpoint e = endpoint::parse("unix:@weft");
  ASSERT_TRUE(e.is_unix());
  EXPECT_EQ(e.size(), sun_path_offset + 1 + 4);
  const auto* sun = reinterpret_cast<const ::sockaddr_un*>(e.data());
  EXPECT_EQ(sun->sun_path[0], '\0');
  EXPECT_EQ(std::string(sun->sun_path + 1, 4), "weft");
  EXPECT_EQ(e.path(), "@weft");
  EXPECT_EQ(e.to_string(), "unix:@weft");
  EXPECT_EQ(endpoint::parse(e.to_string()), e);
  EXPECT_EQ(endpoint::unix_path("@weft"), e);
  // The length, not a NUL, ends an abstract name: "weft" and "weftx" differ, and a name may
  // hold NULs.
  EXPECT_NE(e, endpoint::unix_path("@weftx"));
  endpoint with_nul = endpoint::unix_path(std::string_view("@a\0b", 4));
  EXPECT_EQ(with_nul.size(), sun_path_offset + 1 + 3);
  EXPECT_EQ(with_nul.path(), std::string("@a\0b", 4));
  EXPECT_NE(with_nul, endpoint::unix_path("@a"));
}

TEST(EndpointTest, UnixNamesUpTo107BytesFit) {
  std::string path = "/" + std::string(106, 'p');
  endpoint e = endpoint::unix_path(path);
  EXPECT_EQ(e.size(), sizeof(::sockaddr_un));
  EXPECT_EQ(e.path(), path);
  std::string name = "@" + std::string(107, 'n');
  endpoint a = endpoint::unix_path(name);
  EXPECT_EQ(a.size(), sizeof(::sockaddr_un));
  EXPECT_EQ(a.path(), name);
}

TEST(EndpointTest, UnixPathTooLongIsRejected) {
  std::string path = "/" + std::string(107, 'p');
  try {
    endpoint::unix_path(path);
    FAIL() << "108-byte path accepted";
  } catch (const std::invalid_argument& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("weft::net::endpoint::unix_path"), std::string::npos) << what;
    EXPECT_NE(what.find("\"" + path + "\""), std::string::npos) << what;
    EXPECT_NE(what.find("too long (108 bytes, at most 107)"), std::string::npos) << what;
  }
  EXPECT_THROW(endpoint::unix_path("@" + std::string(108, 'n')), std::invalid_argument);
  EXPECT_THROW(endpoint::unix_path(""), std::invalid_argument);
  EXPECT_THROW(endpoint::unix_path(std::string_view("/a\0b", 4)), std::invalid_argument);
}

TEST(EndpointTest, WithPortChangesOnlyThePort) {
  endpoint v4 = endpoint::parse("10.1.2.3:80");
  endpoint v4b = v4.with_port(443);
  EXPECT_EQ(v4b.to_string(), "10.1.2.3:443");
  EXPECT_EQ(v4.port(), 80);
  EXPECT_EQ(v4b.with_port(80), v4);

  endpoint v6 = endpoint::parse("[fe80::1%4000000000]:80");
  EXPECT_EQ(v6.with_port(0).to_string(), "[fe80::1%4000000000]:0");
  EXPECT_EQ(v6.with_port(65535).port(), 65535);

  endpoint u = endpoint::unix_path("/tmp/x");
  EXPECT_EQ(u.with_port(80), u);
  EXPECT_EQ(u.with_port(80).port(), 0);
  EXPECT_TRUE(endpoint().with_port(80).empty());
}

TEST(EndpointTest, EqualityComparesAddressPortAndScope) {
  EXPECT_EQ(endpoint::parse("1.2.3.4:80"), endpoint::ip("1.2.3.4", 80));
  EXPECT_NE(endpoint::parse("1.2.3.4:80"), endpoint::parse("1.2.3.4:81"));
  EXPECT_NE(endpoint::parse("1.2.3.4:80"), endpoint::parse("1.2.3.5:80"));
  EXPECT_NE(endpoint::parse("[fe80::1%1]:80"), endpoint::parse("[fe80::1%2]:80"));
  EXPECT_NE(endpoint::parse("[fe80::1]:80"), endpoint::parse("[fe80::2]:80"));
  // Same bytes of address, different families.
  EXPECT_NE(endpoint::parse("127.0.0.1:80"), endpoint::parse("[::ffff:127.0.0.1]:80"));
  EXPECT_NE(endpoint::parse("/a"), endpoint::parse("unix:@a"));
  EXPECT_NE(endpoint::parse("/a"), endpoint::parse("/b"));
}

TEST(EndpointTest, EqualityIgnoresPaddingFlowInfoAndPathTerminator) {
  ::sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(80);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::memset(sin.sin_zero, 0xab, sizeof sin.sin_zero);
  EXPECT_EQ(endpoint(reinterpret_cast<const ::sockaddr*>(&sin), sizeof sin), endpoint::loopback_v4(80));

  ::sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(80);
  sin6.sin6_addr = in6addr_loopback;
  sin6.sin6_flowinfo = htonl(7);
  EXPECT_EQ(endpoint(reinterpret_cast<const ::sockaddr*>(&sin6), sizeof sin6), endpoint::loopback_v6(80));

  // A path's length may or may not count its NUL; both name the same file.
  ::sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strcpy(sun.sun_path, "/tmp/s");
  auto* sa = reinterpret_cast<const ::sockaddr*>(&sun);
  endpoint with_nul(sa, static_cast<::socklen_t>(sun_path_offset + 7));
  endpoint without_nul(sa, static_cast<::socklen_t>(sun_path_offset + 6));
  EXPECT_EQ(with_nul, without_nul);
  EXPECT_EQ(without_nul.path(), "/tmp/s");
  EXPECT_EQ(with_nul, endpoint::unix_path("/tmp/s"));
}

TEST(EndpointTest, StreamsAsToString) {
  std::ostringstream os;
  os << endpoint::parse("[::1]:80") << ' ' << endpoint::parse("10.0.0.1:1") << ' ' << endpoint::parse("unix:@x")
     << ' ' << endpoint() << '|';
  EXPECT_EQ(os.str(), "[::1]:80 10.0.0.1:1 unix:@x |");
}

TEST(EndpointTest, IpTakesEitherFamily) {
  EXPECT_EQ(endpoint::ip("127.0.0.1", 80), endpoint::loopback_v4(80));
  EXPECT_EQ(endpoint::ip("::1", 80), endpoint::loopback_v6(80));
  EXPECT_EQ(endpoint::ip("fe80::1%lo", 7), endpoint::parse("[fe80::1%lo]:7"));
  EXPECT_EQ(endpoint::ip("0.0.0.0", 0).to_string(), "0.0.0.0:0");
  for (const char* bad : {"localhost", "[::1]", "1.2.3.4:80", "", "1.2.3"}) {
    SCOPED_TRACE(bad);
    try {
      endpoint::ip(bad, 80);
      FAIL() << "accepted";
    } catch (const std::invalid_argument& e) {
      std::string what = e.what();
      EXPECT_NE(what.find(std::string("weft::net::endpoint::ip: \"") + bad + "\""), std::string::npos) << what;
      EXPECT_NE(what.find("not an IPv4 or IPv6 address"), std::string::npos) << what;
    }
  }
  EXPECT_THROW(endpoint::ip("fe80::1%nosuchif0", 80), std::invalid_argument);
}

TEST(EndpointTest, LoopbackAddresses) {
  EXPECT_EQ(endpoint::loopback_v4(8080).to_string(), "127.0.0.1:8080");
  EXPECT_EQ(endpoint::loopback_v6(8080).to_string(), "[::1]:8080");
  EXPECT_TRUE(endpoint::loopback_v4(1).is_v4());
  EXPECT_TRUE(endpoint::loopback_v6(1).is_v6());
  EXPECT_EQ(endpoint::loopback_v6(1).size(), sizeof(::sockaddr_in6));
}

TEST(EndpointTest, ConstructsFromSockaddr) {
  // An oversized length (a sockaddr_storage) is trimmed to the family's size.
  ::sockaddr_storage st{};
  auto* sin = reinterpret_cast<::sockaddr_in*>(&st);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(9);
  sin->sin_addr.s_addr = htonl(0x0a000001);
  endpoint e(reinterpret_cast<const ::sockaddr*>(&st), sizeof st);
  EXPECT_EQ(e.size(), sizeof(::sockaddr_in));
  EXPECT_EQ(e.to_string(), "10.0.0.1:9");

  // An unnamed Unix socket reports only its family.
  ::sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  endpoint unnamed(reinterpret_cast<const ::sockaddr*>(&sun), static_cast<::socklen_t>(sun_path_offset));
  EXPECT_TRUE(unnamed.is_unix());
  EXPECT_EQ(unnamed.path(), "");
  EXPECT_EQ(unnamed.to_string(), "unix:");
}

TEST(EndpointTest, ConstructorRejectsOtherFamiliesAndShortLengths) {
  ::sockaddr_storage st{};
  st.ss_family = AF_NETLINK;
  auto* sa = reinterpret_cast<const ::sockaddr*>(&st);
  try {
    endpoint e(sa, sizeof st);
    FAIL() << "AF_NETLINK accepted";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::address_family_not_supported);
  }
  st.ss_family = AF_INET6;
  try {
    endpoint e(sa, sizeof(::sockaddr_in));
    FAIL() << "short sockaddr_in6 accepted";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
  }
  try {
    endpoint e(nullptr, 16);
    FAIL() << "null sockaddr accepted";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
  }
  try {
    endpoint e(sa, sizeof st + 1);
    FAIL() << "oversized length accepted";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
  }
}

TEST(EndpointTest, ParseWithErrorCodeClearsItOnSuccess) {
  std::error_code ec = std::make_error_code(std::errc::io_error);
  endpoint e = endpoint::parse("[::1]:1", ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(e, endpoint::loopback_v6(1));
}

// ---- endpoint: what the kernel reports for bound sockets --------------------------------------

TEST(EndpointTest, KernelIpv4AddressRoundTrips) {
  endpoint got = bound_address(AF_INET, endpoint::loopback_v4(0));
  ASSERT_TRUE(got.is_v4());
  EXPECT_NE(got.port(), 0);
  EXPECT_EQ(got.with_port(0), endpoint::loopback_v4(0));
  EXPECT_EQ(endpoint::parse(got.to_string()), got);
}

TEST(EndpointTest, KernelIpv6AddressRoundTrips) {
  fd_guard probe{::socket(AF_INET6, SOCK_STREAM, 0)};
  if (probe.fd < 0) GTEST_SKIP() << "no IPv6 sockets here";
  endpoint got;
  try {
    got = bound_address(AF_INET6, endpoint::loopback_v6(0));
  } catch (const std::system_error& e) {
    if (e.code() == std::errc::address_not_available) GTEST_SKIP() << "no ::1 here";
    throw;
  }
  ASSERT_TRUE(got.is_v6());
  EXPECT_NE(got.port(), 0);
  EXPECT_EQ(got.with_port(0), endpoint::loopback_v6(0));
  EXPECT_EQ(endpoint::parse(got.to_string()), got);
}

TEST(EndpointTest, KernelUnixPathRoundTrips) {
  char dir[] = "/tmp/weft-endpoint-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/s.sock";
  endpoint want = endpoint::unix_path(path);
  endpoint got;
  EXPECT_NO_THROW(got = bound_address(AF_UNIX, want));
  bool made_socket = std::filesystem::is_socket(path);
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(made_socket) << "bind did not create " << path;
  EXPECT_EQ(got, want);
  EXPECT_EQ(got.size(), want.size());
  EXPECT_EQ(got.path(), path);
  EXPECT_EQ(got.to_string(), "unix:" + path);
}

TEST(EndpointTest, KernelAbstractNameRoundTrips) {
  // The socklen delimits an abstract name, so a listener bound through the endpoint must be
  // reachable at the name built by hand with exactly offsetof(sun_path) + 1 + length bytes.
  std::string name = "weft-endpoint-test-" + std::to_string(::getpid());
  endpoint want = endpoint::unix_path("@" + name);
  fd_guard listener{::socket(AF_UNIX, SOCK_STREAM, 0)};
  ASSERT_GE(listener.fd, 0);
  ASSERT_EQ(::bind(listener.fd, want.data(), want.size()), 0) << std::strerror(errno);
  ASSERT_EQ(::listen(listener.fd, 1), 0);

  ::sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path + 1, name.data(), name.size());
  auto len = static_cast<::socklen_t>(sun_path_offset + 1 + name.size());
  fd_guard client{::socket(AF_UNIX, SOCK_STREAM, 0)};
  ASSERT_GE(client.fd, 0);
  EXPECT_EQ(::connect(client.fd, reinterpret_cast<const ::sockaddr*>(&sun), len), 0) << std::strerror(errno);

  endpoint got;
  ::socklen_t n = endpoint::capacity();
  ASSERT_EQ(::getsockname(listener.fd, got.data(), &n), 0);
  got.resize(n);
  EXPECT_EQ(got.size(), len);
  EXPECT_EQ(got, want);
  EXPECT_EQ(got.path(), "@" + name);
  EXPECT_EQ(got.to_string(), "unix:@" + name);
}

// ---- endpoint::parse errors: one case each -----------------------------------------------------

struct bad_text {
  const char* name;      // test name suffix
  std::string text;      // the input
  const char* expected;  // a fragment the message must contain
};

class EndpointParseErrorTest : public ::testing::TestWithParam<bad_text> {};

TEST_P(EndpointParseErrorTest, ThrowsAndQuotesTheInput) {
  const bad_text& c = GetParam();
  try {
    endpoint::parse(c.text);
    FAIL() << "accepted \"" << c.text << "\"";
  } catch (const std::invalid_argument& e) {
    std::string what = e.what();
    EXPECT_EQ(what.rfind("weft::net::endpoint::parse: \"" + c.text + "\": ", 0), 0u) << what;
    EXPECT_NE(what.find(c.expected), std::string::npos) << what;
  }
  std::error_code ec;
  endpoint e = endpoint::parse(c.text, ec);
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_TRUE(e.empty());
}

const std::string long_path = "/" + std::string(107, 'p');
const std::string long_abstract = "unix:@" + std::string(108, 'n');

INSTANTIATE_TEST_SUITE_P(
    Cases, EndpointParseErrorTest,
    ::testing::Values(bad_text{"Empty", "", "empty string"},
                      bad_text{"Ipv4MissingPort", "1.2.3.4", "missing :port"},
                      bad_text{"Ipv6MissingPort", "[::1]", "missing :port"},
                      bad_text{"EmptyPort", "1.2.3.4:", "missing port number after ':'"},
                      bad_text{"Port65536", "1.2.3.4:65536", "port \"65536\" out of range 0-65535"},
                      bad_text{"HugePort", "[::1]:99999999999999999999", "out of range 0-65535"},
                      bad_text{"NegativePort", "1.2.3.4:-1", "port \"-1\" is not a decimal number"},
                      bad_text{"ServiceNameAsPort", "1.2.3.4:http", "weft::net::resolve"},
                      bad_text{"Ipv4OctetTooBig", "1.2.3.256:80", "bad IPv4 address \"1.2.3.256\""},
                      bad_text{"Ipv4ThreeParts", "1.2.3:80", "bad IPv4 address \"1.2.3\""},
                      bad_text{"Ipv4WithoutPortAndBad", "300.1.1.1", "bad IPv4 address"},
                      bad_text{"BadIpv6", "[::g]:80", "bad IPv6 address \"::g\""},
                      bad_text{"Ipv4InBrackets", "[1.2.3.4]:80", "bad IPv6 address \"1.2.3.4\""},
                      bad_text{"MissingBracket", "[::1:80", "missing ']'"},
                      bad_text{"NoColonAfterBracket", "[::1]80", "expected :port after ']'"},
                      bad_text{"Ipv6WithoutBrackets", "::1:80", "needs brackets"},
                      bad_text{"EmptyScope", "[fe80::1%]:80", "empty scope id"},
                      bad_text{"UnknownInterface", "[fe80::1%nosuchif0]:80", "unknown interface \"nosuchif0\""},
                      bad_text{"ScopeOutOfRange", "[fe80::1%4294967296]:80", "scope id \"4294967296\" out of range"},
                      bad_text{"HostNameWithPort", "localhost:80", "is a host name; parse takes numeric addresses only, use weft::net::resolve"},
                      bad_text{"HostNameWithoutPort", "example.com", "use weft::net::resolve"},
                      bad_text{"MissingAddress", ":80", "missing address"},
                      bad_text{"EmptyUnixPath", "unix:", "empty Unix path"},
                      bad_text{"UnixPathTooLong", long_path, "Unix path too long (108 bytes, at most 107)"},
                      bad_text{"AbstractNameTooLong", long_abstract, "abstract Unix name too long (108 bytes after '@', at most 107)"},
                      bad_text{"AbstractWithoutPrefix", "@name", "\"unix:@name\""},
                      bad_text{"UnknownForm", "foo bar", "unknown form"},
                      bad_text{"TwoPorts", "1.2.3.4:80:90", "unknown form"}),
    [](const ::testing::TestParamInfo<bad_text>& info) { return std::string(info.param.name); });

TEST(EndpointTest, ParseErrorEscapesControlBytes) {
  try {
    endpoint::parse(std::string_view("1.2.3.4\0:80\n", 12));
    FAIL() << "accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("\"1.2.3.4\\x00:80\\x0a\""), std::string::npos) << e.what();
  }
}

// ---- resolve ------------------------------------------------------------------------------------

TEST(ResolveTest, LocalhostFromPlainThread) {
  std::vector<endpoint> found = weft::net::resolve("localhost", "80");
  ASSERT_FALSE(found.empty());
  for (const endpoint& e : found) EXPECT_TRUE(is_localhost_80(e)) << e;
}

TEST(ResolveTest, NumericHostAndServiceName) {
  if (::access("/etc/services", R_OK) != 0) GTEST_SKIP() << "no /etc/services (package netbase)";
  std::vector<endpoint> found = weft::net::resolve("127.0.0.1", "http");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0], endpoint::loopback_v4(80));
  found = weft::net::resolve("::1", "0");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0], endpoint::loopback_v6(0));
}

TEST(ResolveTest, UnknownHostGivesResolverError) {
  std::error_code ec = std::make_error_code(std::errc::io_error);
  std::vector<endpoint> found = weft::net::resolve(unresolvable, "80", ec);
  EXPECT_TRUE(found.empty());
  EXPECT_EQ(ec.category(), weft::net::resolver_category());
  EXPECT_EQ(ec.value(), EAI_NONAME);
  EXPECT_EQ(ec.message(), ::gai_strerror(EAI_NONAME));
}

TEST(ResolveTest, UnknownHostThrowsSystemErrorNamingTheQuery) {
  try {
    weft::net::resolve(unresolvable, "80");
    FAIL() << "resolved " << unresolvable;
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::error_code(EAI_NONAME, weft::net::resolver_category()));
    EXPECT_EQ(std::string(e.what()),
              std::string("weft::net::resolve \"") + unresolvable + "\" \"80\": " + ::gai_strerror(EAI_NONAME));
  }
}

TEST(ResolveTest, BadServiceName) {
  std::error_code ec;
  EXPECT_TRUE(weft::net::resolve("localhost", "no-such-service", ec).empty());
  EXPECT_EQ(ec, std::error_code(EAI_SERVICE, weft::net::resolver_category()));
  try {
    weft::net::resolve("localhost", "no-such-service");
    FAIL() << "resolved a bad service";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::error_code(EAI_SERVICE, weft::net::resolver_category()));
    EXPECT_NE(std::string(e.what()).find("weft::net::resolve \"localhost\" \"no-such-service\": "), std::string::npos)
        << e.what();
  }
}

TEST(ResolveTest, NumericServiceAbove65535IsRejected) {
  // glibc alone would truncate 70000 to port 4464.
  std::error_code ec;
  EXPECT_TRUE(weft::net::resolve("localhost", "70000", ec).empty());
  EXPECT_EQ(ec, std::error_code(EAI_SERVICE, weft::net::resolver_category()));
  std::vector<endpoint> found = weft::net::resolve("localhost", "65535", ec);
  EXPECT_FALSE(ec);
  ASSERT_FALSE(found.empty());
  EXPECT_EQ(found[0].port(), 65535);
}

TEST(ResolveTest, ResolverCategory) {
  const std::error_category& cat = weft::net::resolver_category();
  EXPECT_STREQ(cat.name(), "weft.resolver");
  EXPECT_EQ(cat.message(EAI_NONAME), ::gai_strerror(EAI_NONAME));
  EXPECT_EQ(std::error_code(EAI_AGAIN, cat), std::errc::resource_unavailable_try_again);
  EXPECT_EQ(std::error_code(EAI_MEMORY, cat), std::errc::not_enough_memory);
  EXPECT_EQ(std::error_code(EAI_FAMILY, cat), std::errc::address_family_not_supported);
  EXPECT_NE(std::error_code(EAI_NONAME, cat), std::errc::invalid_argument);
}

// From fibers the lookup runs on the blocking pool; the results must be the same.
class ResolveFiberTest : public RuntimeTest {};
WEFT_WORKER_COUNTS(ResolveFiberTest);

TEST_P(ResolveFiberTest, LocalhostFromFiber) {
  std::vector<endpoint> found = rt().block_on([] { return weft::net::resolve("localhost", "80"); });
  ASSERT_FALSE(found.empty());
  for (const endpoint& e : found) EXPECT_TRUE(is_localhost_80(e)) << e;
  EXPECT_EQ(found, weft::net::resolve("localhost", "80"));
}

TEST_P(ResolveFiberTest, ErrorsFromFiber) {
  std::error_code ec;
  bool threw = false;
  rt().block_on([&] {
    weft::net::resolve("localhost", "no-such-service", ec);
    try {
      weft::net::resolve(unresolvable, "80");
    } catch (const std::system_error& e) {
      threw = e.code() == std::error_code(EAI_NONAME, weft::net::resolver_category());
    }
  });
  EXPECT_EQ(ec, std::error_code(EAI_SERVICE, weft::net::resolver_category()));
  EXPECT_TRUE(threw);
}

TEST_P(ResolveFiberTest, ManyFibersResolveAtOnce) {
  constexpr int fibers = 32;
  std::atomic<int> ok{0};
  rt().block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < fibers; ++i) {
      hs.push_back(weft::spawn([&ok, i] {
        std::error_code ec;
        std::vector<endpoint> found = weft::net::resolve("localhost", std::to_string(1000 + i), ec);
        if (!ec && !found.empty() && found[0].port() == 1000 + i) ok.fetch_add(1, std::memory_order_relaxed);
      }));
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(ok.load(), fibers);
}

// ---- net_category ------------------------------------------------------------------------------

TEST(NetErrorTest, EndOfStream) {
  std::error_code ec = weft::net::net_errc::end_of_stream;
  EXPECT_EQ(ec.category(), weft::net::net_category());
  EXPECT_STREQ(ec.category().name(), "weft.net");
  EXPECT_EQ(ec.value(), 1);
  EXPECT_EQ(ec.message(), "end of stream before the requested bytes");
  EXPECT_EQ(ec, weft::net::net_errc::end_of_stream);
  EXPECT_NE(ec, std::errc::connection_reset);
  EXPECT_EQ(weft::net::net_category().message(99), "unknown weft.net error 99");
}

}  // namespace
