// Tests kv_server's RESP parser (samples/kv_server/resp_parser.*): requests split at every byte,
// many pipelined in one feed, inline commands, and the protocol errors Redis answers with
// "-ERR Protocol error: ..." before closing. Also the strict integer parser and the glob.
#include "resp_parser.hpp"
#include "store.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using args_t = std::vector<std::string>;
using namespace std::string_literals;

// Feeds `input` in pieces of `step` bytes (0: whole) and collects every request until the
// parser needs more or fails.
std::vector<args_t> parse_all(const std::string& input, std::size_t step, kv::resp_status* last = nullptr,
                              kv::resp_parser* p_out = nullptr, kv::resp_limits limits = {}) {
  kv::resp_parser local(limits);
  kv::resp_parser& p = p_out != nullptr ? *p_out : local;
  std::vector<args_t> out;
  args_t args;
  kv::resp_status st = kv::resp_status::need_more;
  std::size_t fed = 0;
  if (step == 0) step = input.size();
  while (fed < input.size() && st != kv::resp_status::error) {
    std::size_t n = std::min(step, input.size() - fed);
    p.feed(input.data() + fed, n);
    fed += n;
    while ((st = p.next(args)) == kv::resp_status::command) out.push_back(args);
  }
  if (last != nullptr) *last = st;
  return out;
}

const std::string pipeline =
    "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n"
    "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    "*0\r\n"
    "PING\r\n"
    "\r\n"
    "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"
    "set \"a b\" 'c d'\n"
    "*1\r\n$4\r\nBIN\0\r\n"s;

const std::vector<args_t> expected = {
    {"SET", "k", "hello"}, {"GET", "k"}, {"PING"}, {"ECHO", ""}, {"set", "a b", "c d"},
    {std::string("BIN\0", 4)},
};

TEST(RespParserTest, PipelinedInOneFeed) {
  std::string in(pipeline.data(), pipeline.size());
  kv::resp_status st;
  EXPECT_EQ(parse_all(in, 0, &st), expected);
  EXPECT_EQ(st, kv::resp_status::need_more);
}

TEST(RespParserTest, SplitAtEveryBytePosition) {
  for (std::size_t cut = 1; cut < pipeline.size(); ++cut) {
    kv::resp_parser p;
    std::vector<args_t> got;
    args_t args;
    p.feed(pipeline.data(), cut);
    while (p.next(args) == kv::resp_status::command) got.push_back(args);
    p.feed(pipeline.data() + cut, pipeline.size() - cut);
    while (p.next(args) == kv::resp_status::command) got.push_back(args);
    EXPECT_EQ(got, expected) << "split at byte " << cut;
    EXPECT_FALSE(p.has_partial());
  }
}

TEST(RespParserTest, OneByteAtATime) {
  EXPECT_EQ(parse_all(pipeline, 1), expected);
}

// The parser reuses the argument strings of earlier requests (no allocation per argument);
// what a caller took from them (SET moves its value out), a longer or shorter request before,
// or a big argument must never show in a later request.
TEST(RespParserTest, ArgumentsOfEarlierRequestsNeverLeakIntoLaterOnes) {
  auto multibulk = [](const args_t& a) {
    std::string s = "*" + std::to_string(a.size()) + "\r\n";
    for (const std::string& x : a) s += "$" + std::to_string(x.size()) + "\r\n" + x + "\r\n";
    return s;
  };
  const std::string big(100000, 'v');
  const std::vector<args_t> requests = {
      {"MSET", "a", "1", "b", "22", "c", "333"}, {"SET", "key:__rand_int__", "xxx"}, {"GET", "k"},
      {"SET", "k", big},  {"SET", "k2", "short"}, {"PING"}, {"SET", "key:__rand_int__", ""},
      {"DEL", "a", "b"},  {"SET", big, "x"},      {"GET", "key:__rand_int__"},
  };
  // As SET does with its value: move it out, or swap a buffer in (a move assignment hands the
  // replaced value's buffer back).
  auto take = [&big](args_t& args, int round) {
    if (args.size() < 3) return;
    if (round == 1) {
      std::string replaced = big;
      replaced = std::move(args[2]);
      (void)replaced;
    } else {
      std::string taken = std::move(args[2]);
      (void)taken;
    }
  };
  for (bool pipelined : {false, true}) {
    kv::resp_parser p;
    args_t args;
    for (int round = 0; round < 3; ++round) {
      if (pipelined) {  // every request in one read
        std::string all;
        for (const args_t& want : requests) all += multibulk(want);
        p.feed(all);
      }
      for (const args_t& want : requests) {
        if (!pipelined) p.feed(multibulk(want));  // one request per read
        ASSERT_EQ(p.next(args), kv::resp_status::command);
        EXPECT_EQ(args, want) << "round " << round << (pipelined ? ", pipelined" : "");
        take(args, round);
        if (!pipelined) {
          EXPECT_EQ(p.next(args), kv::resp_status::need_more);
          EXPECT_TRUE(args.empty());
        }
      }
      if (pipelined) {
        EXPECT_EQ(p.next(args), kv::resp_status::need_more);
        EXPECT_TRUE(args.empty());
      }
    }
  }
}

TEST(RespParserTest, PartialRequestIsReported) {
  kv::resp_parser p;
  args_t args;
  p.feed("*2\r\n$3\r\nGET\r\n");
  EXPECT_EQ(p.next(args), kv::resp_status::need_more);
  EXPECT_TRUE(p.has_partial());
  p.feed("$1\r\nk\r\n");
  EXPECT_EQ(p.next(args), kv::resp_status::command);
  EXPECT_EQ(args, (args_t{"GET", "k"}));
  EXPECT_FALSE(p.has_partial());
}

struct malformed_case {
  const char* input;
  const char* error;
};

TEST(RespParserTest, MalformedRequestsAreProtocolErrors) {
  const malformed_case cases[] = {
      {"*x\r\n", "Protocol error: invalid multibulk length"},
      {"*2000000\r\n", "Protocol error: invalid multibulk length"},
      {"*1\r\n+GET\r\n", "Protocol error: expected '$', got '+'"},
      {"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"},
      {"*1\r\n$abc\r\n", "Protocol error: invalid bulk length"},
      {"*1\r\n$99999999999\r\n", "Protocol error: invalid bulk length"},
      {"set \"a\n", "Protocol error: unbalanced quotes in request"},
      {"get \"a\"b\n", "Protocol error: unbalanced quotes in request"},
  };
  for (const malformed_case& c : cases) {
    kv::resp_status st;
    kv::resp_parser p;
    parse_all(c.input, 0, &st, &p);
    EXPECT_EQ(st, kv::resp_status::error) << c.input;
    EXPECT_EQ(p.error(), c.error) << c.input;
  }
}

TEST(RespParserTest, RequestsBeforeAnErrorAreReturned) {
  kv::resp_status st;
  kv::resp_parser p;
  auto got = parse_all("PING\r\n*1\r\n$4\r\nPING\r\n*z\r\n", 0, &st, &p);
  EXPECT_EQ(got, (std::vector<args_t>{{"PING"}, {"PING"}}));
  EXPECT_EQ(st, kv::resp_status::error);
}

TEST(RespParserTest, SizeLimitsAreEnforced) {
  kv::resp_limits small{.max_bulk = 8, .max_multibulk = 4, .max_inline = 16};
  struct limit_case {
    std::string input;
    const char* error;
  };
  const limit_case cases[] = {
      {"*1\r\n$9\r\n", "Protocol error: invalid bulk length"},
      {"*5\r\n", "Protocol error: invalid multibulk length"},
      {std::string(17, 'a'), "Protocol error: too big inline request"},
      {"*" + std::string(17, '1'), "Protocol error: too big mbulk count string"},
      {"*1\r\n$" + std::string(17, '1'), "Protocol error: too big bulk count string"},
  };
  for (const limit_case& c : cases) {
    kv::resp_status st;
    kv::resp_parser p(small);
    parse_all(c.input, 1, &st, &p, small);
    EXPECT_EQ(st, kv::resp_status::error) << c.input;
    EXPECT_EQ(p.error(), c.error) << c.input;
  }
  // Within the limits everything parses.
  EXPECT_EQ(parse_all("*4\r\n$8\r\n12345678\r\n$0\r\n\r\n$1\r\na\r\n$1\r\nb\r\n", 1, nullptr, nullptr, small),
            (std::vector<args_t>{{"12345678", "", "a", "b"}}));
}

TEST(RespParserTest, InlineQuotingFollowsRedis) {
  args_t out;
  ASSERT_TRUE(kv::split_inline(R"(set k "a\x41\n\"b" 'it\'s')", out));
  EXPECT_EQ(out, (args_t{"set", "k", "aA\n\"b", "it's"}));
  ASSERT_TRUE(kv::split_inline("   ", out));
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(kv::split_inline("'abc", out));
}

TEST(RespParserTest, IntegersAreParsedStrictly) {
  std::int64_t v = 0;
  EXPECT_TRUE(kv::parse_int64("0", v));
  EXPECT_EQ(v, 0);
  EXPECT_TRUE(kv::parse_int64("-9223372036854775808", v));
  EXPECT_EQ(v, INT64_MIN);
  EXPECT_TRUE(kv::parse_int64("9223372036854775807", v));
  EXPECT_EQ(v, INT64_MAX);
  for (const char* bad : {"", "-", "-0", "01", "+1", " 1", "1 ", "9223372036854775808", "1x"}) {
    EXPECT_FALSE(kv::parse_int64(bad, v)) << bad;
  }
}

TEST(RespParserTest, GlobMatchesAsRedis) {
  EXPECT_TRUE(kv::glob_match("*", "anything"));
  EXPECT_TRUE(kv::glob_match("h?llo", "hello"));
  EXPECT_TRUE(kv::glob_match("h*llo", "heeeello"));
  EXPECT_TRUE(kv::glob_match("h[ae]llo", "hallo"));
  EXPECT_FALSE(kv::glob_match("h[ae]llo", "hillo"));
  EXPECT_TRUE(kv::glob_match("h[^e]llo", "hallo"));
  EXPECT_FALSE(kv::glob_match("h[^e]llo", "hello"));
  EXPECT_TRUE(kv::glob_match("h[a-b]llo", "hbllo"));
  EXPECT_TRUE(kv::glob_match("a\\*b", "a*b"));
  EXPECT_FALSE(kv::glob_match("a\\*b", "axb"));
  EXPECT_FALSE(kv::glob_match("user:*", "use"));
  EXPECT_TRUE(kv::glob_match("user:*", "user:"));
}

}  // namespace
