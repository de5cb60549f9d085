// Endpoints (endpoint.hpp): parse and print of IPv4, IPv6 and Unix-domain addresses, and
// resolve, which runs getaddrinfo on the blocking pool. Invariant: an endpoint built here
// carries exactly the length the kernel expects for its family: sizeof(sockaddr_in) or
// sizeof(sockaddr_in6); for Unix, offsetof(sun_path) plus the path and its NUL, or plus '\0'
// and the name for the abstract namespace (whose names are length-delimited, not NUL-ended).
#include <weft/net/endpoint.hpp>

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <ostream>
#include <stdexcept>

#include <weft/blocking.hpp>

#include "socket_util.hpp"

namespace weft::net {

namespace {

constexpr std::size_t sun_path_offset = offsetof(::sockaddr_un, sun_path);
constexpr std::size_t sun_path_size = sizeof(::sockaddr_un::sun_path);
// A pathname keeps its NUL inside sun_path (portable, and what getsockname reports); an
// abstract name spends the first byte on the '\0' marker. Either way 107 bytes fit.
constexpr std::size_t max_unix_name = sun_path_size - 1;

// Why a text did not parse. The noexcept parse reports only invalid_argument, so the fault
// carries what the message needs and the message is built (and allocates) only when thrown.
enum class fault {
  none,
  empty,
  missing_port,
  empty_port,
  bad_port,
  port_range,
  missing_address,
  bad_v4,
  bad_v6,
  v6_needs_brackets,
  missing_bracket,
  junk_after_bracket,
  empty_scope,
  scope_range,
  unknown_interface,
  host_name,
  abstract_needs_prefix,
  empty_path,
  path_has_nul,
  path_too_long,
  not_an_address,
  unknown_form,
};

struct parse_fault {
  fault what = fault::none;
  std::string_view part;  // the offending piece of the input, for the message
};

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool all_digits(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  return true;
}

// Decimal digits only: strtoul would accept "+80", " 80" and wrap "-1".
parse_fault parse_port(std::string_view s, std::uint16_t& port) noexcept {
  if (s.empty()) return {fault::empty_port, s};
  if (!all_digits(s)) return {fault::bad_port, s};
  std::uint32_t v = 0;
  for (char c : s) {
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
    if (v > 65535) return {fault::port_range, s};
  }
  port = static_cast<std::uint16_t>(v);
  return {};
}

// Only to tell "1.2.3.256" (a typo in an address) from "localhost" (a name for resolve).
bool looks_like_host_name(std::string_view s) noexcept {
  bool letter = false;
  for (char c : s) {
    if (is_alpha(c)) {
      letter = true;
    } else if (!is_digit(c) && c != '-' && c != '.' && c != '_') {
      return false;
    }
  }
  return letter;
}

bool dotted_digits(std::string_view s) noexcept {
  for (char c : s) {
    if (!is_digit(c) && c != '.') return false;
  }
  return !s.empty();
}

// inet_pton wants a NUL-terminated string; copying into a fixed buffer keeps parse noexcept.
template <std::size_t N>
bool to_cstr(std::string_view s, char (&buf)[N]) noexcept {
  if (s.size() >= N || s.find('\0') != std::string_view::npos) return false;
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  return true;
}

bool parse_v4(std::string_view s, ::in_addr& out) noexcept {
  char buf[INET_ADDRSTRLEN];
  return to_cstr(s, buf) && ::inet_pton(AF_INET, buf, &out) == 1;
}

parse_fault parse_scope(std::string_view s, std::uint32_t& scope) noexcept {
  if (s.empty()) return {fault::empty_scope, s};
  if (all_digits(s)) {
    std::uint64_t v = 0;
    for (char c : s) {
      v = v * 10 + static_cast<std::uint64_t>(c - '0');
      if (v > 0xffffffffu) return {fault::scope_range, s};
    }
    scope = static_cast<std::uint32_t>(v);
    return {};
  }
  char name[IF_NAMESIZE];
  unsigned index = to_cstr(s, name) ? ::if_nametoindex(name) : 0;
  if (index == 0) return {fault::unknown_interface, s};
  scope = index;
  return {};
}

// "::1" or "fe80::1%eth0" (no brackets).
parse_fault parse_v6(std::string_view s, ::sockaddr_in6& out) noexcept {
  std::string_view addr = s;
  std::uint32_t scope = 0;
  if (std::size_t pct = s.find('%'); pct != std::string_view::npos) {
    addr = s.substr(0, pct);
    if (parse_fault f = parse_scope(s.substr(pct + 1), scope); f.what != fault::none) return f;
  }
  char buf[INET6_ADDRSTRLEN];
  if (!to_cstr(addr, buf) || ::inet_pton(AF_INET6, buf, &out.sin6_addr) != 1) return {fault::bad_v6, addr};
  out.sin6_scope_id = scope;
  return {};
}

::socklen_t set_v4(::sockaddr_storage& st, const ::in_addr& addr, std::uint16_t port) noexcept {
  std::memset(&st, 0, sizeof st);
  auto* sin = reinterpret_cast<::sockaddr_in*>(&st);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  sin->sin_addr = addr;
  return sizeof(::sockaddr_in);
}

::socklen_t set_v6(::sockaddr_storage& st, const ::sockaddr_in6& src, std::uint16_t port) noexcept {
  std::memset(&st, 0, sizeof st);
  auto* sin6 = reinterpret_cast<::sockaddr_in6*>(&st);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  sin6->sin6_addr = src.sin6_addr;
  sin6->sin6_scope_id = src.sin6_scope_id;
  return sizeof(::sockaddr_in6);
}

// A leading '@' selects the abstract namespace; everything after it is the name, NULs included.
parse_fault set_unix(::sockaddr_storage& st, ::socklen_t& len, std::string_view path) noexcept {
  if (path.empty()) return {fault::empty_path, path};
  bool abstract = path.front() == '@';
  std::string_view name = abstract ? path.substr(1) : path;
  if (!abstract && name.find('\0') != std::string_view::npos) return {fault::path_has_nul, path};
  if (name.size() > max_unix_name) return {fault::path_too_long, path};
  std::memset(&st, 0, sizeof st);
  auto* sun = reinterpret_cast<::sockaddr_un*>(&st);
  sun->sun_family = AF_UNIX;
  // Abstract: sun_path[0] stays '\0' and the length delimits the name. Path: the memset
  // supplies the terminating NUL, which the length includes.
  std::memcpy(sun->sun_path + (abstract ? 1 : 0), name.data(), name.size());
  len = static_cast<::socklen_t>(sun_path_offset + 1 + name.size());
  return {};
}

// "host:port" where host is not bracketed.
parse_fault parse_host_port(std::string_view text, ::sockaddr_storage& st, ::socklen_t& len) noexcept {
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    ::in_addr a{};
    if (parse_v4(text, a)) return {fault::missing_port, text};
    if (dotted_digits(text)) return {fault::bad_v4, text};
    if (looks_like_host_name(text)) return {fault::host_name, text};
    return {fault::unknown_form, text};
  }
  std::string_view host = text.substr(0, colon);
  if (host.find(':') != std::string_view::npos) {
    ::sockaddr_in6 sin6{};
    bool v6 = parse_v6(host, sin6).what == fault::none || parse_v6(text, sin6).what == fault::none;
    return {v6 ? fault::v6_needs_brackets : fault::unknown_form, text};
  }
  if (host.empty()) return {fault::missing_address, text};
  ::in_addr a{};
  if (!parse_v4(host, a)) {
    if (dotted_digits(host)) return {fault::bad_v4, host};
    if (looks_like_host_name(host)) return {fault::host_name, host};
    return {fault::unknown_form, text};
  }
  std::uint16_t port = 0;
  if (parse_fault f = parse_port(text.substr(colon + 1), port); f.what != fault::none) return f;
  len = set_v4(st, a, port);
  return {};
}

// "[v6%scope]:port".
parse_fault parse_bracketed(std::string_view text, ::sockaddr_storage& st, ::socklen_t& len) noexcept {
  std::size_t close = text.find(']');
  if (close == std::string_view::npos) return {fault::missing_bracket, text};
  ::sockaddr_in6 sin6{};
  if (parse_fault f = parse_v6(text.substr(1, close - 1), sin6); f.what != fault::none) return f;
  std::string_view rest = text.substr(close + 1);
  if (rest.empty()) return {fault::missing_port, text};
  if (rest.front() != ':') return {fault::junk_after_bracket, rest};
  std::uint16_t port = 0;
  if (parse_fault f = parse_port(rest.substr(1), port); f.what != fault::none) return f;
  len = set_v6(st, sin6, port);
  return {};
}

parse_fault parse_text(std::string_view text, ::sockaddr_storage& st, ::socklen_t& len) noexcept {
  constexpr std::string_view unix_prefix = "unix:";
  if (text.empty()) return {fault::empty, text};
  if (text.substr(0, unix_prefix.size()) == unix_prefix) return set_unix(st, len, text.substr(unix_prefix.size()));
  if (text.front() == '/') return set_unix(st, len, text);
  // A bare "@name" is more likely a typo than a relative path; the prefix makes it explicit.
  if (text.front() == '@') return {fault::abstract_needs_prefix, text};
  if (text.front() == '[') return parse_bracketed(text, st, len);
  return parse_host_port(text, st, len);
}

// Quotes user input for a message; control bytes are escaped so a NUL cannot cut what() short.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string describe(parse_fault f) {
  std::string part = quoted(f.part);
  switch (f.what) {
    case fault::none: break;
    case fault::empty: return "empty string";
    case fault::missing_port: return "missing :port";
    case fault::empty_port: return "missing port number after ':'";
    case fault::bad_port:
      return "port " + part + " is not a decimal number (service names are looked up by weft::net::resolve)";
    case fault::port_range: return "port " + part + " out of range 0-65535";
    case fault::missing_address: return "missing address before ':'";
    case fault::bad_v4: return "bad IPv4 address " + part;
    case fault::bad_v6: return "bad IPv6 address " + part;
    case fault::v6_needs_brackets: return "an IPv6 address with a port needs brackets, as in \"[::1]:80\"";
    case fault::missing_bracket: return "missing ']' after the IPv6 address";
    case fault::junk_after_bracket: return "expected :port after ']', found " + part;
    case fault::empty_scope: return "empty scope id after '%'";
    case fault::scope_range: return "scope id " + part + " out of range";
    case fault::unknown_interface: return "unknown interface " + part + " in the scope id";
    case fault::host_name:
      return part + " is a host name; parse takes numeric addresses only, use weft::net::resolve";
    case fault::abstract_needs_prefix: return "write an abstract Unix name as \"unix:@name\"";
    case fault::empty_path: return "empty Unix path";
    case fault::path_has_nul: return "Unix path contains a NUL byte";
    case fault::path_too_long:
      if (f.part.front() == '@') {
        return "abstract Unix name too long (" + std::to_string(f.part.size() - 1) + " bytes after '@', at most " +
               std::to_string(max_unix_name) + ")";
      }
      return "Unix path too long (" + std::to_string(f.part.size()) + " bytes, at most " +
             std::to_string(max_unix_name) + ")";
    case fault::not_an_address: return "not an IPv4 or IPv6 address";
    case fault::unknown_form:
      return "unknown form (expected \"1.2.3.4:80\", \"[::1]:80\", \"unix:/path\", \"/path\" or \"unix:@name\")";
  }
  return "invalid endpoint";
}

[[noreturn]] void throw_fault(const char* where, std::string_view text, parse_fault f) {
  throw std::invalid_argument(std::string(where) + ": " + quoted(text) + ": " + describe(f));
}

struct unix_name {
  enum class kind { unnamed, path, abstract } k;
  std::string_view bytes;
};

// Reads the name back under the length the kernel or the caller reported: a path may lack its
// NUL when it fills sun_path, and an abstract name may contain NULs.
unix_name read_unix(const ::sockaddr_storage& st, ::socklen_t len) noexcept {
  const auto* sun = reinterpret_cast<const ::sockaddr_un*>(&st);
  std::size_t n = len > sun_path_offset ? len - sun_path_offset : 0;
  if (n > sun_path_size) n = sun_path_size;
  if (n == 0) return {unix_name::kind::unnamed, {}};
  if (sun->sun_path[0] == '\0') return {unix_name::kind::abstract, {sun->sun_path + 1, n - 1}};
  return {unix_name::kind::path, {sun->sun_path, ::strnlen(sun->sun_path, n)}};
}

const ::sockaddr_in& as_v4(const ::sockaddr_storage& st) noexcept {
  return *reinterpret_cast<const ::sockaddr_in*>(&st);
}
const ::sockaddr_in6& as_v6(const ::sockaddr_storage& st) noexcept {
  return *reinterpret_cast<const ::sockaddr_in6*>(&st);
}

// glibc's getaddrinfo takes a numeric service with strtoul and truncates it to 16 bits, so
// "70000" would silently resolve to port 4464.
bool numeric_service_out_of_range(std::string_view service) noexcept {
  std::uint16_t port = 0;
  return all_digits(service) && parse_port(service, port).what == fault::port_range;
}

class resolver_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "weft.resolver"; }
  std::string message(int ev) const override { return ::gai_strerror(ev); }
  // So callers can test a resolver error against the portable conditions where one fits;
  // EAI_AGAIN ("try again later") is the condition a retry loop looks for.
  std::error_condition default_error_condition(int ev) const noexcept override {
    switch (ev) {
      case EAI_AGAIN: return std::errc::resource_unavailable_try_again;
      case EAI_MEMORY: return std::errc::not_enough_memory;
      case EAI_FAMILY: return std::errc::address_family_not_supported;
      case EAI_BADFLAGS: return std::errc::invalid_argument;
      default: return {ev, *this};
    }
  }
};

}  // namespace

endpoint::endpoint() noexcept : storage_{}, len_(0) { storage_.ss_family = AF_UNSPEC; }

endpoint::endpoint(const ::sockaddr* addr, ::socklen_t len) : storage_{}, len_(0) {
  if (addr == nullptr || len < sizeof(::sa_family_t) || len > sizeof(::sockaddr_storage)) {
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "weft::net::endpoint: sockaddr length " + std::to_string(len));
  }
  ::socklen_t need = 0;
  switch (addr->sa_family) {
    case AF_INET: need = sizeof(::sockaddr_in); break;
    case AF_INET6: need = sizeof(::sockaddr_in6); break;
    // An unnamed socket (socketpair, an unbound client) reports just the family.
    case AF_UNIX: need = sun_path_offset; break;
    default:
      throw std::system_error(std::make_error_code(std::errc::address_family_not_supported),
                              "weft::net::endpoint: address family " + std::to_string(addr->sa_family));
  }
  if (len < need) {
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "weft::net::endpoint: sockaddr length " + std::to_string(len) + " too short for family " +
                                std::to_string(addr->sa_family));
  }
  if (addr->sa_family == AF_UNIX) {
    if (len > sizeof(::sockaddr_un)) len = sizeof(::sockaddr_un);
    need = len;
  }
  // IP lengths are normalized: a caller passing sizeof(sockaddr_storage) gets the exact size.
  std::memcpy(&storage_, addr, need);
  len_ = need;
}

endpoint endpoint::parse(std::string_view text) {
  endpoint e;
  if (parse_fault f = parse_text(text, e.storage_, e.len_); f.what != fault::none) {
    throw_fault("weft::net::endpoint::parse", text, f);
  }
  return e;
}

endpoint endpoint::parse(std::string_view text, std::error_code& ec) noexcept {
  endpoint e;
  if (parse_text(text, e.storage_, e.len_).what != fault::none) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return endpoint();
  }
  ec.clear();
  return e;
}

endpoint endpoint::ip(std::string_view address, std::uint16_t port) {
  endpoint e;
  ::in_addr a{};
  if (parse_v4(address, a)) {
    e.len_ = set_v4(e.storage_, a, port);
    return e;
  }
  ::sockaddr_in6 sin6{};
  parse_fault f = parse_v6(address, sin6);
  if (f.what == fault::bad_v6) f = {fault::not_an_address, address};
  if (f.what != fault::none) throw_fault("weft::net::endpoint::ip", address, f);
  e.len_ = set_v6(e.storage_, sin6, port);
  return e;
}

endpoint endpoint::loopback_v4(std::uint16_t port) noexcept {
  endpoint e;
  ::in_addr a{};
  a.s_addr = htonl(INADDR_LOOPBACK);
  e.len_ = set_v4(e.storage_, a, port);
  return e;
}

endpoint endpoint::loopback_v6(std::uint16_t port) noexcept {
  endpoint e;
  ::sockaddr_in6 sin6{};
  sin6.sin6_addr = in6addr_loopback;
  e.len_ = set_v6(e.storage_, sin6, port);
  return e;
}

endpoint endpoint::unix_path(std::string_view path) {
  endpoint e;
  if (parse_fault f = set_unix(e.storage_, e.len_, path); f.what != fault::none) {
    throw_fault("weft::net::endpoint::unix_path", path, f);
  }
  return e;
}

std::string endpoint::to_string() const {
  switch (family()) {
    case AF_UNSPEC: return {};
    case AF_INET: {
      char buf[INET_ADDRSTRLEN];
      ::inet_ntop(AF_INET, &as_v4(storage_).sin_addr, buf, sizeof buf);
      return std::string(buf) + ":" + std::to_string(port());
    }
    case AF_INET6: {
      const ::sockaddr_in6& sin6 = as_v6(storage_);
      char buf[INET6_ADDRSTRLEN];
      ::inet_ntop(AF_INET6, &sin6.sin6_addr, buf, sizeof buf);
      std::string s = "[";
      s += buf;
      if (sin6.sin6_scope_id != 0) {
        // The interface name when it still exists (what the user wrote, and what parse takes
        // back); the number otherwise, which parse also takes.
        char name[IF_NAMESIZE];
        s += '%';
        s += ::if_indextoname(sin6.sin6_scope_id, name) != nullptr ? std::string(name)
                                                                   : std::to_string(sin6.sin6_scope_id);
      }
      return s + "]:" + std::to_string(port());
    }
    case AF_UNIX: return "unix:" + path();
    default: return "<address family " + std::to_string(family()) + ">";
  }
}

std::uint16_t endpoint::port() const noexcept {
  if (is_v4()) return ntohs(as_v4(storage_).sin_port);
  if (is_v6()) return ntohs(as_v6(storage_).sin6_port);
  return 0;
}

endpoint endpoint::with_port(std::uint16_t port) const noexcept {
  endpoint e = *this;
  if (is_v4()) reinterpret_cast<::sockaddr_in*>(&e.storage_)->sin_port = htons(port);
  if (is_v6()) reinterpret_cast<::sockaddr_in6*>(&e.storage_)->sin6_port = htons(port);
  return e;
}

std::string endpoint::path() const {
  if (!is_unix()) return {};
  unix_name n = read_unix(storage_, len_);
  switch (n.k) {
    case unix_name::kind::unnamed: return {};
    case unix_name::kind::path: return std::string(n.bytes);
    case unix_name::kind::abstract: {
      // Built by appending: `"@" + std::string(...)` makes g++ 12 warn (a false -Wrestrict).
      std::string s(1, '@');
      s.append(n.bytes);
      return s;
    }
  }
  return {};
}

// Compares what the kernel compares, not bytes: sin_zero padding, IPv6 flow info and whether
// a Unix path's length counts its NUL do not make two endpoints different.
bool operator==(const endpoint& a, const endpoint& b) noexcept {
  if (a.family() != b.family()) return false;
  switch (a.family()) {
    case AF_UNSPEC: return true;
    case AF_INET: {
      const ::sockaddr_in& x = as_v4(a.storage_);
      const ::sockaddr_in& y = as_v4(b.storage_);
      return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
    }
    case AF_INET6: {
      const ::sockaddr_in6& x = as_v6(a.storage_);
      const ::sockaddr_in6& y = as_v6(b.storage_);
      return x.sin6_port == y.sin6_port && x.sin6_scope_id == y.sin6_scope_id &&
             std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
    }
    case AF_UNIX: {
      unix_name x = read_unix(a.storage_, a.len_);
      unix_name y = read_unix(b.storage_, b.len_);
      return x.k == y.k && x.bytes == y.bytes;
    }
    default:
      return a.len_ == b.len_ && a.len_ <= sizeof a.storage_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
  }
}

std::ostream& operator<<(std::ostream& os, const endpoint& e) { return os << e.to_string(); }

const std::error_category& resolver_category() noexcept {
  static const resolver_category_impl category;
  return category;
}

std::vector<endpoint> resolve(std::string_view host, std::string_view service, std::error_code& ec) {
  ec.clear();
  // A NUL would silently shorten the name getaddrinfo sees.
  if (host.find('\0') != std::string_view::npos) {
    ec = {EAI_NONAME, resolver_category()};
    return {};
  }
  if (service.find('\0') != std::string_view::npos || numeric_service_out_of_range(service)) {
    ec = {EAI_SERVICE, resolver_category()};
    return {};
  }
  std::string h(host);
  std::string s(service);
  struct outcome {
    int rc = 0;
    int sys_errno = 0;
    std::vector<endpoint> found;
  };
  outcome out = weft::run_blocking([&] {
    outcome o;
    ::addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;  // one entry per address instead of one per socket type
    ::addrinfo* list = nullptr;
    errno = 0;
    o.rc = ::getaddrinfo(h.c_str(), s.c_str(), &hints, &list);
    // errno is per thread: read it on the pool thread that made the call. Out of descriptors,
    // glibc cannot open /etc/hosts or a DNS socket and answers EAI_NONAME ("Name or service
    // not known") or EAI_AGAIN: the errno it left says what really happened.
    if (o.rc == EAI_SYSTEM || (o.rc != 0 && (errno == EMFILE || errno == ENFILE))) o.sys_errno = errno;
    if (o.rc != 0) return o;
    std::unique_ptr<::addrinfo, void (*)(::addrinfo*)> owner(list, ::freeaddrinfo);
    for (const ::addrinfo* p = list; p != nullptr; p = p->ai_next) {
      if (p->ai_family == AF_INET || p->ai_family == AF_INET6) o.found.emplace_back(p->ai_addr, p->ai_addrlen);
    }
    return o;
  });
  if (out.sys_errno != 0) {
    ec = {out.sys_errno, std::system_category()};
  } else if (out.rc != 0) {
    ec = {out.rc, resolver_category()};
  } else if (out.found.empty()) {
    ec = {EAI_NONAME, resolver_category()};  // success with no usable address is still no address
  }
  if (ec) return {};
  return std::move(out.found);
}

std::vector<endpoint> resolve(std::string_view host, std::string_view service) {
  std::error_code ec;
  std::vector<endpoint> found = resolve(host, service, ec);
  if (ec) {
    throw std::system_error(ec, "weft::net::resolve " + quoted(host) + " " + quoted(service) +
                                    detail_util::descriptor_hint(ec));
  }
  return found;
}

}  // namespace weft::net
