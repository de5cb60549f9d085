// Errors of weft::net beyond errno: the end of a stream reached before a read_exact finished.
// Timeouts are std::errc::timed_out, cancellation (close, stop request, shutdown)
// std::errc::operation_canceled, peer errors keep their errno (system_category; weft's own
// outcomes are generic_category, so a deadline is told from the kernel's ETIMEDOUT). The
// throwing forms say which it was: "...: the deadline passed: Connection timed out", "...: the
// socket was closed: Operation canceled", "...: stop requested, or the runtime is shutting
// down: Operation canceled".
#pragma once

#include <weft/detail/cxx20.hpp>

#include <string>
#include <system_error>
#include <type_traits>

namespace weft::net {

enum class net_errc {
  end_of_stream = 1,  ///< the peer closed the stream before read_exact got every byte
};

/// The category of net_errc.
const std::error_category& net_category() noexcept;
inline std::error_code make_error_code(net_errc e) noexcept { return {static_cast<int>(e), net_category()}; }

/// `ec.message()`, followed by what to do where the error says a limit was hit, as the
/// throwing forms' messages do: out of descriptors (EMFILE) reads "Too many open files (out of
/// descriptors: RLIMIT_NOFILE is 1024; raise `ulimit -n` or close idle connections)", a full
/// system file table (ENFILE) points to fs.file-max. For logging the `error_code` forms'
/// failures. Syscalls: getrlimit, for EMFILE only.
std::string describe(const std::error_code& ec);

}  // namespace weft::net

template <>
struct std::is_error_code_enum<weft::net::net_errc> : std::true_type {};
