// chat_server: line-based chat rooms over TCP, usable with nc. Each client gets two fibers in
// plain thread style: a reader (the connection fiber: blocking reads with an idle deadline,
// commands, broadcasts) and a writer (blocking writes with a write deadline), joined by a
// bounded weft::channel, the client's outbox. Broadcasting only ever try_sends into outboxes,
// so a client that stops reading never blocks the room: once its outbox is full it is
// disconnected and the room is told.
//
// Protocol: the first line is the nick (or "/nick NAME"); then "/join ROOM" (everyone starts in
// "lobby"), "/rooms", "/who", "/nick NAME", "/quit"; any other line goes to the others in the
// room as "[room] nick: text", control characters shown as cat -v does (^X, M-^X). Server
// lines start with "* ".
//
// Shutdown: SIGINT/SIGTERM request stop. The accept loop ends and the listener closes; every
// reader wakes (a stop_callback forwards the server's stop to the client's own stop source),
// queues "* server shutting down", closes its outbox and waits for its writer to flush it; a
// grace period later any connection still open is closed. Then a summary line, exit 0.
#include "rooms.hpp"
#include "sample_support.hpp"

#include <weft/weft.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

using namespace std::chrono_literals;
using weft::net::tcp_stream;

constexpr std::size_t kMaxNick = 24;
constexpr std::size_t kMaxRoom = 32;
constexpr std::size_t kWriteBatch = 64 * 1024;

struct options {
  sample::common_options common{.port = 7070};
  std::size_t queue = 256;
  int send_buffer = 64 * 1024;  // 0 = the kernel's autotuning
  std::size_t max_line = 4096;
  std::chrono::milliseconds idle{300000};
  std::chrono::milliseconds write_timeout{5000};
  std::chrono::milliseconds grace{1000};
};

const char* const kUsage =
    "Line-based chat rooms over TCP (try: nc 127.0.0.1 PORT). The first line is your nick;\n"
    "then /join ROOM, /rooms, /who, /nick NAME, /quit; other lines go to your room.";

// Returns -1 to run, or an exit code (0 after --help, 2 after a usage error).
int parse_args(int argc, char** argv, options& o) {
  return sample::parse_args(
      argc, argv, "chat_server", kUsage, o.common,
      {sample::count_flag("--queue", "lines a client's outbox holds; full = too slow (default 256)", 1, 1000000,
                          [&o](unsigned long v) { o.queue = v; }),
       sample::count_flag("--send-buffer", "SO_SNDBUF per client, bytes; 0 = the system's (default 65536)", 0,
                          64 * 1024 * 1024, [&o](unsigned long v) { o.send_buffer = static_cast<int>(v); }),
       sample::count_flag("--max-line", "longest line in bytes; a longer one disconnects (default 4096)", 1,
                          64 * 1024 * 1024, [&o](unsigned long v) { o.max_line = v; }),
       sample::millis_flag("--idle-ms", "disconnect a client silent this long (default 300000)", o.idle, 1),
       sample::millis_flag("--write-timeout-ms", "drop a client taking no data this long (default 5000)",
                           o.write_timeout, 1, 3600000),
       sample::millis_flag("--grace-ms", "on SIGINT/SIGTERM, how long writers may flush (default 1000)", o.grace)});
}

struct server {
  options opts;
  chat::registry rooms;
  std::stop_source stop;
  std::atomic<std::uint64_t> clients{0};
  std::atomic<std::uint64_t> messages{0};
};

// Why a reader stopped; decides what the client and its room are told.
enum class ending { eof, quit, too_long, idle, shutdown, slow, error };

// The writer fiber: sends what the outbox holds, a batch per write, each write bounded by the
// write deadline. Ends when the outbox is closed and drained, on a kick (dropping the rest,
// then trying the farewell line briefly), or on a write error (a timeout kicks: the client
// takes no data; anything else ends the reader). Closes the outbox on its way out so later
// deliveries are dropped, not queued.
void write_loop(server& srv, chat::client& c, tcp_stream& s) {
  std::stop_token kicked = c.kick.get_token();
  std::string batch;
  std::string line;
  bool mid_line = false;  // a kick cut a write in the middle of a line
  while (c.outbox.recv(line, kicked) == weft::channel_status::ok) {
    batch = std::move(line);
    while (batch.size() < kWriteBatch && c.outbox.try_recv(line) == weft::channel_status::ok) batch += line;
    s.set_write_deadline(weft::net::clock::now() + srv.opts.write_timeout);
    std::error_code ec;
    std::size_t n = s.write_all(batch.data(), batch.size(), kicked, ec);
    if (ec) {
      mid_line = n > 0 && batch[n - 1] != '\n';
      if (ec == std::errc::timed_out) {
        srv.rooms.kick(c);  // the client takes no data: as slow as a full outbox
      } else {
        c.stop.request_stop();  // reset or closed: end the reader too
      }
      break;
    }
  }
  c.outbox.close();
  if (c.slow.load(std::memory_order_acquire)) {
    // Best effort: the socket is most likely still full.
    std::string bye = "* you were too slow; disconnected\n";
    if (mid_line) bye.insert(bye.begin(), '\n');
    s.set_write_deadline(weft::net::clock::now() + 100ms);
    std::error_code ec;
    s.write_all(bye.data(), bye.size(), ec);
  }
}

// `s` without the blanks (spaces, tabs) around it.
std::string_view trim_blanks(std::string_view s) {
  const std::size_t first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// Handles one complete line from a client; returns false when the client quits.
bool handle_line(server& srv, chat::client& c, std::string_view line) {
  auto reply = [&](std::string_view text) { srv.rooms.deliver(c, text); };
  // A command matches in any case ("/QUIT"); its argument loses surrounding blanks ("/join r2 ").
  auto command = [&](std::string_view name, std::string_view& arg) {
    if (line.size() < name.size() || !std::equal(name.begin(), name.end(), line.begin(), [](char a, char b) {
          return a == std::tolower(static_cast<unsigned char>(b));
        })) {
      return false;
    }
    std::string_view rest = line.substr(name.size());
    if (!rest.empty() && rest[0] != ' ' && rest[0] != '\t') return false;  // "/nicks" is no /nick
    arg = trim_blanks(rest);
    return true;
  };
  std::string_view arg;
  if (command("/quit", arg)) return false;
  if (c.nick.empty() || command("/nick", arg)) {
    if (c.nick.empty() && !command("/nick", arg)) {
      if (line.starts_with('/')) {
        reply("* pick a nick first: send it as a line, or /nick NAME");
        return true;
      }
      arg = trim_blanks(line);
    }
    std::string nick(arg);
    if (!chat::valid_name(nick, kMaxNick)) {
      reply("* a nick is 1-24 letters, digits, _ or -");
    } else if (nick == c.nick) {
      reply("* you are " + nick + " already");
    } else if (!srv.rooms.claim_nick(c, nick)) {
      reply("* nick " + nick + " is taken; try another");
    } else if (c.room.empty()) {
      reply("* hello " + nick + "; commands: /join ROOM, /rooms, /who, /nick NAME, /quit");
      srv.rooms.join(c, "lobby");
    }
    return true;
  }
  if (command("/join", arg)) {
    if (chat::valid_name(arg, kMaxRoom)) {
      if (!srv.rooms.join(c, std::string(arg))) reply("* you are in " + std::string(arg) + " already");
    } else {
      reply("* a room name is 1-32 letters, digits, _ or -");
    }
  } else if (command("/who", arg)) {
    reply(srv.rooms.who(c));
  } else if (command("/rooms", arg)) {
    reply(srv.rooms.list());
  } else if (line.starts_with('/')) {
    reply("* unknown command " + std::string(line.substr(0, line.find(' '))) +
          "; try /join ROOM, /rooms, /who, /nick NAME, /quit");
  } else if (!line.empty()) {
    bool behind = false;
    srv.rooms.say(c, chat::printable(line), &behind);
    srv.messages.fetch_add(1, std::memory_order_relaxed);
    // Let the writers this line woke run before the next one: a reader working through a large
    // read (a paste) must not fill the outboxes of clients that keep up. Yielding is not always
    // enough: a writer waiting for room in its socket (TCP's window still opening) falls
    // hundreds of lines behind a paste in a millisecond. So while a listener's outbox is half
    // full, this sender waits a millisecond per line: it slows to its slowest listener's pace
    // (backpressure reaches it through TCP), while the room and every other sender go on. A
    // listener that has stalled stays behind, its outbox fills a line per millisecond, and it
    // is kicked when full, as before.
    if (behind) {
      weft::this_fiber::sleep_for(1ms);
    } else {
      weft::this_fiber::yield();
    }
  }
  return true;
}

// The reader: splits the input into lines ('\n', an optional '\r' before it dropped; at end of
// stream, what follows the last '\n') no longer than --max-line and handles each. Every read
// has the idle deadline and the client's stop.
ending read_loop(server& srv, chat::client& c, tcp_stream& s) {
  std::stop_token st = c.stop.get_token();
  auto stopped = [&] {
    if (c.slow.load(std::memory_order_acquire)) return ending::slow;
    return srv.stop.stop_requested() ? ending::shutdown : ending::error;  // error: the writer failed
  };
  std::string pending;
  std::vector<char> buf(16 * 1024);
  for (;;) {
    s.set_read_deadline(weft::net::clock::now() + srv.opts.idle);
    std::error_code ec;
    std::size_t n = s.read_some(buf.data(), buf.size(), st, ec);
    if (ec == std::errc::operation_canceled) return stopped();
    if (ec == std::errc::timed_out) return ending::idle;
    if (ec) return ending::error;
    if (n == 0) {
      // A last line without its '\n' (nc at the end of a file, a client that half-closes) is
      // still a line.
      std::string_view last(pending);
      if (last.ends_with('\r')) last.remove_suffix(1);
      if (!last.empty()) {
        if (last.size() > srv.opts.max_line) return ending::too_long;
        if (!handle_line(srv, c, last)) return ending::quit;
      }
      return ending::eof;
    }
    pending.append(buf.data(), n);
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(pending.data() + start, nl - start);
      if (line.ends_with('\r')) line.remove_suffix(1);
      if (line.size() > srv.opts.max_line) return ending::too_long;
      if (!handle_line(srv, c, line)) return ending::quit;
      if (st.stop_requested()) return stopped();
    }
    pending.erase(0, start);
    // One more byte may be the '\r' of a line of exactly max_line.
    if (pending.size() > srv.opts.max_line + 1) return ending::too_long;
  }
}

// The connection fiber: runs the reader here and the writer on its own fiber, then says
// goodbye and waits for the writer to flush it.
void serve(server& srv, tcp_stream& s) {
  chat::client c(srv.opts.queue);
  std::stop_callback forward_stop(srv.stop.get_token(), [&c] { c.stop.request_stop(); });
  weft::join_handle<void> writer =
      weft::spawn(weft::spawn_options{.name = "chat writer"}, [&srv, &c, &s] { write_loop(srv, c, s); });
  srv.rooms.deliver(c, "* welcome to weft chat; send your nick (or /nick NAME)");

  ending why = read_loop(srv, c, s);
  struct farewell {
    const char* room;    // what the room hears ("" = nothing)
    std::string client;  // what the client hears ("" = nothing)
  };
  farewell f{"", ""};
  switch (why) {
    case ending::eof: f = {"left", ""}; break;
    case ending::error: f = {"left", ""}; break;
    case ending::quit: f = {"quit", "* bye"}; break;
    case ending::too_long:
      f = {"left (line too long)",
           "* line too long (max " + std::to_string(srv.opts.max_line) + " bytes); disconnected"};
      break;
    case ending::idle:
      f = {"left (idle)", "* idle for " + std::to_string(srv.opts.idle.count()) + " ms; disconnected"};
      break;
    case ending::shutdown: f = {"", "* server shutting down"}; break;
    case ending::slow: f = {"was too slow; disconnected", ""}; break;
  }
  srv.rooms.leave(c, f.room);
  if (!f.client.empty()) srv.rooms.deliver(c, f.client);
  c.outbox.close();
  writer.join();
  sample::linger(s);
}

int run(server& srv) {
  // Readers leave at once on stop; writers get the grace period to flush their farewell, plus
  // the 200 ms of linger.
  sample::tcp_server_options o{
      .prog = "chat_server", .grace = srv.opts.grace + 300ms, .fiber_name = "chat client", .on_listening = {},
      .on_stop = {}};
  return sample::serve_tcp(srv.opts.common, srv.stop.get_token(), o, [&srv](tcp_stream& s) {
    srv.clients.fetch_add(1, std::memory_order_relaxed);
    // A small kernel buffer keeps the outbox the place where a slow client shows: with the
    // system's autotuning a stalled reader soaks up megabytes before it is noticed.
    if (srv.opts.send_buffer > 0) s.set_send_buffer(srv.opts.send_buffer);
    serve(srv, s);
  }).exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  server srv;
  if (int rc = parse_args(argc, argv, srv.opts); rc >= 0) return rc;
  sample::stop_signals signals(srv.stop);  // before any thread starts

  auto started = std::chrono::steady_clock::now();
  weft::runtime_stats stats;
  int rc = sample::run_on_runtime(srv.opts.common.workers, stats, [&srv] { return run(srv); });
  if (rc != 0) return rc;  // it did not start (the error is printed): no summary
  std::printf("chat_server: served %llu clients, %llu messages, dropped %llu slow clients in %.1f s; %s\n",
              static_cast<unsigned long long>(srv.clients.load()),
              static_cast<unsigned long long>(srv.messages.load()),
              static_cast<unsigned long long>(srv.rooms.dropped()), sample::seconds_since(started),
              sample::runtime_summary(stats).c_str());
  return rc;
}
