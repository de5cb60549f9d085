// The chat server's shared state: a connected client as the room sees it (its outbox and the
// stop sources that end its fibers) and the registry of nicks and rooms under one
// weft::shared_mutex. Broadcasting takes the lock shared and queues lines with try_send, so it
// never waits for a client: a client whose outbox is full is kicked (marked slow, its fibers
// told to stop) instead. say() reports when a listener is half full, so that the sender's
// reader can slow down (main.cpp) and a listener that keeps up is not kicked by a burst.
// Invariant: a client is in the registry only while its connection fiber is inside serve();
// it leaves under the exclusive lock before it is destroyed, so a pointer read under the lock
// (shared or exclusive) is always valid.
#pragma once

#include <weft/weft.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stop_token>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace chat {

/// One connected client. The connection fiber (the reader) owns it; the registry and other
/// clients' fibers only queue lines into its outbox and kick it.
struct client {
  explicit client(std::size_t queue) : outbox(queue) {}

  /// Lines waiting for the writer fiber, each ending in '\n'. Bounded: a full outbox means the
  /// client does not keep up.
  weft::channel<std::string> outbox;
  /// Ends the reader: server shutdown (through a stop_callback), a kick, or a writer failure.
  std::stop_source stop;
  /// Ends the writer at once, dropping what is queued: only a kick.
  std::stop_source kick;
  /// Set once, by the first kick.
  std::atomic<bool> slow{false};

  // Ownership: written by the client's own fiber with the registry locked exclusively; read by
  // others with it locked (shared or exclusive). Empty until a nick is accepted.
  std::string nick;
  std::string room;
};

/// Nicks and rooms. Every member may be called from any fiber concurrently.
class registry {
 public:
  /// Queues `text` plus '\n' for `c` without blocking. A full outbox kicks `c`; a closed one
  /// (its writer has ended) drops the line. Returns true if queued.
  bool deliver(client& c, std::string_view text);

  /// Marks `c` slow, counts it as dropped and stops both of its fibers; later calls do
  /// nothing. Never blocks.
  void kick(client& c);

  /// Gives `c` the nick `nick` if no one else has it (freeing its old one) and tells the room
  /// about a rename. Returns false if taken. Parks while the lock is busy.
  bool claim_nick(client& c, const std::string& nick);

  /// Moves `c` (which has a nick) to `room`: its old room hears "* nick left old", the new one,
  /// `c` included, "* nick joined room". False (and nothing said) if `c` is in `room` already.
  /// Parks while the lock is busy.
  bool join(client& c, const std::string& room);

  /// Removes `c` and its nick. Unless `why` is empty, its room hears "* nick <why>".
  void leave(client& c, std::string_view why);

  /// Queues "[room] nick: text" to everyone else in `c`'s room. Returns how many received it.
  /// Sets `*behind` (if given) when a listener's outbox is now at least half full.
  std::size_t say(client& c, std::string_view text, bool* behind = nullptr);

  /// "* in lobby: alice, bob" for `c`'s room.
  std::string who(const client& c);
  /// "* rooms: dev (1), lobby (2)".
  std::string list();

  /// Slow clients kicked so far.
  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

 private:
  // With mu_ held (either way): queues `line` to every member of `room` except `except`; sets
  // `*behind` (if given) as say() does.
  std::size_t broadcast_locked(const std::string& room, std::string_view line, const client* except,
                               bool* behind = nullptr);

  weft::shared_mutex mu_;
  struct synced {
    std::map<std::string, std::vector<client*>, std::less<>> rooms;  // no empty rooms
    std::unordered_set<std::string> nicks;
  } synced_;  // guarded by mu_
  std::atomic<std::uint64_t> dropped_{0};
};

/// True if `name` is 1..`max` characters of letters, digits, '_' or '-'.
bool valid_name(std::string_view name, std::size_t max);

/// `text` with every control character but tab shown as `cat -v` does: C0 controls and DEL in
/// caret notation (ESC as "^[", DEL as "^?"), the C1 controls U+0080..U+009F and bytes that are
/// not UTF-8 in M- notation (U+009B, CSI, as "M-^["). A line relayed to other clients'
/// terminals must not move their cursor, clear their screen or ring their bell. Other UTF-8
/// characters pass as sent.
std::string printable(std::string_view text);

}  // namespace chat
