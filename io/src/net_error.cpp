// The weft.net error category (error.hpp): errors of weft::net that have no errno, today only
// the end of a stream reached before read_exact got its bytes; and describe().
#include <weft/net/error.hpp>

#include <string>

#include "socket_util.hpp"

namespace weft::net {

namespace {

// default_error_condition stays the default (the code itself): no std::errc means "the peer
// closed early", and equating it with, say, connection_reset would hide a clean close.
class net_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "weft.net"; }
  std::string message(int ev) const override {
    switch (static_cast<net_errc>(ev)) {
      case net_errc::end_of_stream: return "end of stream before the requested bytes";
    }
    return "unknown weft.net error " + std::to_string(ev);
  }
};

}  // namespace

const std::error_category& net_category() noexcept {
  static const net_category_impl category;
  return category;
}

std::string describe(const std::error_code& ec) { return ec.message() + detail_util::descriptor_hint(ec); }

}  // namespace weft::net
