// Socket addresses (IPv4, IPv6, Unix paths) with parse and print, and name resolution on the
// blocking pool. An endpoint is a value: a sockaddr_storage and its length.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <sys/socket.h>

#include <cstdint>
#include <iosfwd>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace weft::net {

/// An IPv4, IPv6 or Unix-domain socket address.
class endpoint {
 public:
  /// An empty endpoint (family AF_UNSPEC); every socket call rejects it with `invalid_argument`.
  endpoint() noexcept;
  /// Copies a sockaddr of `len` bytes (AF_INET, AF_INET6 or AF_UNIX). Throws std::system_error
  /// (`address_family_not_supported`, `invalid_argument`) for anything else.
  endpoint(const ::sockaddr* addr, ::socklen_t len);

  /// Parses "1.2.3.4:80", "[::1]:80", "[fe80::1%eth0]:80", "unix:/path/to.sock" or an absolute
  /// path "/path/to.sock", "unix:@name" (Linux abstract namespace). Host names are not resolved
  /// here (use resolve). Throws std::invalid_argument whose message quotes the string and says
  /// what is wrong ("weft::net::endpoint::parse: \"1.2.3.4\": missing :port").
  static endpoint parse(std::string_view text);
  /// As parse, without throwing: sets `ec` to std::errc::invalid_argument and returns an empty
  /// endpoint on bad input.
  static endpoint parse(std::string_view text, std::error_code& ec) noexcept;
  /// An IPv4 or IPv6 address in text form ("127.0.0.1", "::1") and a port.
  static endpoint ip(std::string_view address, std::uint16_t port);
  /// 127.0.0.1:port and [::1]:port.
  static endpoint loopback_v4(std::uint16_t port) noexcept;
  static endpoint loopback_v6(std::uint16_t port) noexcept;
  /// A Unix-domain path (a leading '@' means the abstract namespace). Throws
  /// std::invalid_argument if it does not fit in sun_path.
  static endpoint unix_path(std::string_view path);

  /// "1.2.3.4:80", "[::1]:80", "unix:/path", "unix:@name"; "" for an empty endpoint.
  std::string to_string() const;

  int family() const noexcept { return storage_.ss_family; }
  bool is_v4() const noexcept { return family() == AF_INET; }
  bool is_v6() const noexcept { return family() == AF_INET6; }
  bool is_unix() const noexcept { return family() == AF_UNIX; }
  bool empty() const noexcept { return family() == AF_UNSPEC; }
  /// The port (host byte order); 0 for Unix endpoints.
  std::uint16_t port() const noexcept;
  /// A copy with another port (IP endpoints only).
  endpoint with_port(std::uint16_t port) const noexcept;
  /// The Unix path ("@name" for abstract), or "" for IP endpoints.
  std::string path() const;

  const ::sockaddr* data() const noexcept { return reinterpret_cast<const ::sockaddr*>(&storage_); }
  ::sockaddr* data() noexcept { return reinterpret_cast<::sockaddr*>(&storage_); }
  ::socklen_t size() const noexcept { return len_; }
  /// Sets the length after a call such as accept() or getsockname() filled data().
  void resize(::socklen_t len) noexcept { len_ = len; }
  static constexpr ::socklen_t capacity() noexcept { return sizeof(::sockaddr_storage); }

  friend bool operator==(const endpoint& a, const endpoint& b) noexcept;
  friend std::ostream& operator<<(std::ostream& os, const endpoint& e);

 private:
  ::sockaddr_storage storage_;
  ::socklen_t len_;
};

/// Resolves `host` and `service` ("example.com", "http" or "8080") with getaddrinfo on the
/// runtime's blocking pool (the fiber parks; on a plain thread the thread blocks). Returns
/// every address in the resolver's order (TCP, both families). Throws std::system_error with
/// weft::net::resolver_category() errors (message from gai_strerror and the name asked for),
/// or system_category ones when the resolver failed for a system reason: out of descriptors
/// it is EMFILE/ENFILE with the limit named, not glibc's "Name or service not known".
std::vector<endpoint> resolve(std::string_view host, std::string_view service);
/// As resolve, reporting errors through `ec` (empty result on error).
std::vector<endpoint> resolve(std::string_view host, std::string_view service, std::error_code& ec);

/// The category of getaddrinfo's EAI_* codes (value = the EAI code; message = gai_strerror).
const std::error_category& resolver_category() noexcept;

}  // namespace weft::net
