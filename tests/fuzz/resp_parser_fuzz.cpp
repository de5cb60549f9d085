// libFuzzer target for the kv_server sample's RESP parser. The first bytes choose the limits
// and up to 16 split points; the rest is the byte stream. Checked on every input:
// - an error is sticky; every command has at least one argument, none longer than the input;
// - split invariance (with the default limits, for inputs shorter than the inline limit —
//   beyond it Redis itself, which the parser follows, decides by what is buffered): the stream
//   fed in pieces yields the same commands and the same final status as fed at once;
// - round trip: each command written back as a multibulk request parses to itself.
#include "resp_parser.hpp"

#include "fuzz_support.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct outcome {
  std::vector<std::vector<std::string>> commands;
  bool error = false;
  bool partial = false;
};

outcome run(const std::string& in, const std::vector<std::size_t>& cuts, const kv::resp_limits& lim) {
  kv::resp_parser p(lim);
  std::vector<std::string> args;
  outcome out;
  fuzz::for_each_piece(in, cuts, [&](std::string_view piece) {
    p.feed(piece);
    for (;;) {
      kv::resp_status st = p.next(args);
      if (st == kv::resp_status::need_more) return true;
      if (st == kv::resp_status::error) {
        FUZZ_CHECK(!p.error().empty());
        FUZZ_CHECK(p.next(args) == kv::resp_status::error && args.empty());
        out.error = true;
        return false;
      }
      // Nothing holds more bytes than were fed. (max_bulk and max_multibulk bound multibulk
      // requests; an inline line with its newline in the buffer has no limit, as in Redis.)
      FUZZ_CHECK(!args.empty() && args.size() <= in.size());
      for (const std::string& a : args) FUZZ_CHECK(a.size() <= in.size());
      out.commands.push_back(args);
    }
  });
  out.partial = !out.error && p.has_partial();
  return out;
}

std::string multibulk(const std::vector<std::string>& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  const bool small = fdp.ConsumeBool();
  kv::resp_limits lim;
  if (small) lim = {.max_bulk = 8, .max_multibulk = 4, .max_inline = 32};
  auto [in, cuts] = fuzz::consume_split_input(fdp);

  outcome whole = run(in, {}, lim);
  outcome split = run(in, cuts, lim);
  if (!small && in.size() < lim.max_inline) {
    FUZZ_CHECK(whole.commands == split.commands);
    FUZZ_CHECK(whole.error == split.error);
    FUZZ_CHECK(whole.partial == split.partial);
  }
  for (const auto& cmd : whole.commands) {
    std::string again = multibulk(cmd);
    outcome o = run(again, {}, kv::resp_limits{});
    FUZZ_CHECK(!o.error && o.commands.size() == 1 && o.commands[0] == cmd && !o.partial);
  }
  return 0;
}
