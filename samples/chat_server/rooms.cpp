// The chat registry (rooms.hpp): nicks and rooms under one weft::shared_mutex; broadcasts
// queue with try_send and kick whoever is full, so no client ever waits for another.
#include "rooms.hpp"

#include <cctype>

#include <algorithm>
#include <mutex>
#include <shared_mutex>

namespace chat {

bool valid_name(std::string_view name, std::size_t max) {
  if (name.empty() || name.size() > max) return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
           ch == '-';
  });
}

namespace {

// cat -v's notation for a C0 control or DEL: ^@ .. ^_, ^?.
void append_caret(std::string& out, unsigned char u) {
  out += '^';
  out += static_cast<char>(u ^ 0x40);
}

// How many bytes the UTF-8 sequence starting at text[i] takes, or 0 if it is not one (a stray
// continuation byte, a bad lead byte, a truncated, overlong or surrogate sequence).
std::size_t utf8_length(std::string_view text, std::size_t i) {
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = at(i);
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // the range of the first continuation byte
  if (lead >= 0xc2 && lead <= 0xdf) {
    n = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    n = 3;
    if (lead == 0xe0) lo = 0xa0;  // overlong
    if (lead == 0xed) hi = 0x9f;  // surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    n = 4;
    if (lead == 0xf0) lo = 0x90;  // overlong
    if (lead == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  if (at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if ((at(i + k) & 0xc0) != 0x80) return 0;
  return n;
}

}  // namespace

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    auto u = static_cast<unsigned char>(text[i]);
    if (u < 0x80) {
      if ((u < 0x20 && u != '\t') || u == 0x7f) append_caret(out, u); else out += text[i];
      ++i;
      continue;
    }
    std::size_t n = utf8_length(text, i);
    if (n == 2 && u == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0) {
      // U+0080..U+009F, the C1 controls (U+009B is CSI, which drives a UTF-8 terminal as ESC [
      // does): "M-" and the caret form of the C0 control 0x80 below, as cat -v shows the byte.
      out += "M-";
      append_caret(out, static_cast<unsigned char>(text[i + 1]) - 0x80);
      i += 2;
    } else if (n != 0) {
      out.append(text, i, n);  // any other character, as sent
      i += n;
    } else {
      // Not UTF-8: an 8-bit terminal may read a lone 0x80..0x9F byte as a C1 control. cat -v's
      // M- notation for the byte.
      out += "M-";
      const unsigned char low = u & 0x7f;
      if (low < 0x20 || low == 0x7f) append_caret(out, low); else out += static_cast<char>(low);
      ++i;
    }
  }
  return out;
}

bool registry::deliver(client& c, std::string_view text) {
  std::string line;
  line.reserve(text.size() + 1);
  line.append(text);
  line.push_back('\n');
  switch (c.outbox.try_send(std::move(line))) {
    case weft::channel_status::ok:
      return true;
    case weft::channel_status::full:
      kick(c);
      return false;
    default:  // closed: the writer has ended, the reader is on its way out
      return false;
  }
}

void registry::kick(client& c) {
  if (c.slow.exchange(true, std::memory_order_acq_rel)) return;
  dropped_.fetch_add(1, std::memory_order_relaxed);
  c.kick.request_stop();
  c.stop.request_stop();
}

std::size_t registry::broadcast_locked(const std::string& room, std::string_view line, const client* except,
                                       bool* behind) {
  auto it = synced_.rooms.find(room);
  if (it == synced_.rooms.end()) return 0;
  std::size_t n = 0;
  for (client* m : it->second) {
    if (m == except || !deliver(*m, line)) continue;
    ++n;
    // A kicked client's outbox stays full until it leaves: it is not "behind", it is gone.
    // Ordering: relaxed; `slow` is set once by kick() (acq_rel exchange), and a stale false
    // only makes the sender wait one more millisecond.
    if (behind != nullptr && 2 * m->outbox.size() >= m->outbox.capacity() &&
        !m->slow.load(std::memory_order_relaxed))
      *behind = true;
  }
  return n;
}

namespace {
// Nicks are unique regardless of case: "Mallory" and "mallory" side by side invite
// impersonation. The registry keys them in lower case; clients keep theirs as typed.
std::string nick_key(std::string_view nick) {
  std::string k(nick);
  for (char& ch : k) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return k;
}
}  // namespace

bool registry::claim_nick(client& c, const std::string& nick) {
  std::lock_guard lk(mu_);
  if (nick == c.nick) return true;
  const std::string key = nick_key(nick);
  const bool recase = !c.nick.empty() && nick_key(c.nick) == key;  // "alice" -> "Alice": still hers
  if (!recase && !synced_.nicks.insert(key).second) return false;
  std::string old = std::move(c.nick);
  c.nick = nick;
  if (!old.empty()) {
    if (!recase) synced_.nicks.erase(nick_key(old));
    if (!c.room.empty()) broadcast_locked(c.room, "* " + old + " is now " + nick, nullptr);
  }
  return true;
}

bool registry::join(client& c, const std::string& room) {
  std::lock_guard lk(mu_);
  if (room == c.room) return false;
  if (!c.room.empty()) {
    auto it = synced_.rooms.find(c.room);
    std::erase(it->second, &c);
    if (it->second.empty()) {
      synced_.rooms.erase(it);
    } else {
      broadcast_locked(c.room, "* " + c.nick + " left " + c.room, nullptr);
    }
  }
  c.room = room;
  synced_.rooms[room].push_back(&c);
  broadcast_locked(room, "* " + c.nick + " joined " + room, nullptr);
  return true;
}

void registry::leave(client& c, std::string_view why) {
  std::lock_guard lk(mu_);
  if (!c.nick.empty()) synced_.nicks.erase(nick_key(c.nick));
  if (c.room.empty()) return;
  auto it = synced_.rooms.find(c.room);
  std::erase(it->second, &c);
  if (it->second.empty()) {
    synced_.rooms.erase(it);
  } else if (!why.empty()) {
    std::string line = "* " + c.nick + " ";
    line.append(why);
    broadcast_locked(c.room, line, nullptr);
  }
  c.room.clear();
}

std::size_t registry::say(client& c, std::string_view text, bool* behind) {
  std::shared_lock lk(mu_);
  std::string line = "[" + c.room + "] " + c.nick + ": ";
  line.append(text);
  return broadcast_locked(c.room, line, &c, behind);
}

std::string registry::who(const client& c) {
  std::vector<std::string> names;
  {
    std::shared_lock lk(mu_);
    auto it = synced_.rooms.find(c.room);
    if (it != synced_.rooms.end()) {
      for (const client* m : it->second) names.push_back(m->nick);
    }
  }
  std::sort(names.begin(), names.end());
  std::string out = "* in " + c.room + ":";
  for (std::size_t i = 0; i < names.size(); ++i) out += (i == 0 ? " " : ", ") + names[i];
  return out;
}

std::string registry::list() {
  std::string out = "* rooms:";
  std::shared_lock lk(mu_);
  bool first = true;
  for (const auto& [name, members] : synced_.rooms) {
    out += (first ? " " : ", ") + name + " (" + std::to_string(members.size()) + ")";
    first = false;
  }
  return out;
}

}  // namespace chat
