// The command table and handlers. Invariant: every handler appends exactly one RESP2 reply.
// Arity and error texts are Redis 7.0's (arity > 0: exact argc; < 0: at least -arity).
#include "commands.hpp"

#include "resp_parser.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <initializer_list>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string_view>

namespace kv {
namespace {

void reply_simple(std::string& out, std::string_view s) {
  out += '+';
  out += s;
  out += "\r\n";
}
void reply_error(std::string& out, std::string_view s) {
  out += "-";
  out += s;
  out += "\r\n";
}
void reply_int(std::string& out, std::int64_t v) {
  out += ':';
  out += std::to_string(v);
  out += "\r\n";
}
void reply_bulk(std::string& out, std::string_view s) {
  out += '$';
  out += std::to_string(s.size());
  out += "\r\n";
  out += s;
  out += "\r\n";
}
void reply_nil(std::string& out) { out += "$-1\r\n"; }
void reply_array(std::string& out, std::size_t n) {
  out += '*';
  out += std::to_string(n);
  out += "\r\n";
}

const char* const not_integer = "ERR value is not an integer or out of range";
const char* const syntax_error = "ERR syntax error";

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

void wrong_arity(std::string& out, std::string_view name) {
  reply_error(out, "ERR wrong number of arguments for '" + std::string(name) + "' command");
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct ctx {
  store& db;
  std::vector<std::string>& args;
  std::string& out;
  std::uint16_t port;
  command_clock clock;  // read under the key's shard lock
};

using handler = after_command (*)(ctx&);

// Converts a Redis expire argument to an absolute steady-clock ms, as getExpireMillisecondsOrReply
// (SET) and expireGenericCommand (EXPIRE) do; false after replying with the error. Called with
// the key's shard locked (it reads the command's clock).
bool expire_at(ctx& c, const std::string& arg, bool seconds, bool absolute, bool for_set,
               const char* cmd, std::int64_t& at) {
  std::int64_t v = 0;
  if (!parse_int64(arg, v)) {
    reply_error(c.out, not_integer);
    return false;
  }
  std::string invalid = std::string("ERR invalid expire time in '") + cmd + "' command";
  if (for_set && v <= 0) {
    reply_error(c.out, invalid);
    return false;
  }
  if (seconds) {
    if (v > LLONG_MAX / 1000 || v < LLONG_MIN / 1000) {
      reply_error(c.out, invalid);
      return false;
    }
    v *= 1000;
  }
  std::int64_t now = c.clock.now();
  if (absolute) {
    // EXAT/PXAT are wall-clock times; expiry runs on the steady clock.
    std::int64_t delta = v - wall_ms();
    at = now + delta;
    if (at == 0) at = -1;  // 0 means "no expiry": keep it in the past
    return true;
  }
  if ((v > 0 && now > LLONG_MAX - v) || (v < 0 && now < LLONG_MIN - v)) {
    reply_error(c.out, invalid);
    return false;
  }
  at = now + v;
  if (at == 0) at = -1;
  return true;
}

after_command cmd_ping(ctx& c) {
  if (c.args.size() > 2) {
    wrong_arity(c.out, "ping");
  } else if (c.args.size() == 2) {
    reply_bulk(c.out, c.args[1]);
  } else {
    reply_simple(c.out, "PONG");
  }
  return after_command::keep;
}

after_command cmd_echo(ctx& c) {
  reply_bulk(c.out, c.args[1]);
  return after_command::keep;
}

after_command cmd_quit(ctx& c) {
  reply_simple(c.out, "OK");
  return after_command::close;
}

after_command cmd_get(ctx& c) {
  store::shard& s = c.db.at(c.db.shard_of(c.args[1]));
  std::shared_lock lk(s.mu);
  const entry* e = store::find_live(s, c.args[1], c.clock);
  if (e == nullptr) {
    reply_nil(c.out);
  } else {
    reply_bulk(c.out, e->value);
  }
  return after_command::keep;
}

after_command cmd_set(ctx& c) {
  bool nx = false, xx = false, get = false, keepttl = false, has_expire = false;
  std::string_view expire_opt;  // "EX", "px", ...: the expire option given
  std::size_t expire_arg = 0;   // the index of its value (the last one given)
  std::int64_t at = 0;
  auto& a = c.args;
  for (std::size_t j = 3; j < a.size(); ++j) {
    const std::string& opt = a[j];
    bool has_next = j + 1 < a.size();
    if (iequals(opt, "nx") && !xx) {
      nx = true;
    } else if (iequals(opt, "xx") && !nx) {
      xx = true;
    } else if (iequals(opt, "get")) {
      get = true;
    } else if (iequals(opt, "keepttl") && !has_expire) {
      keepttl = true;
    } else if ((iequals(opt, "ex") || iequals(opt, "px") || iequals(opt, "exat") || iequals(opt, "pxat")) &&
               !keepttl && (!has_expire || iequals(opt, expire_opt)) && has_next) {
      // As Redis: the same expire option may repeat (the last wins), two kinds conflict.
      has_expire = true;
      expire_opt = opt;
      expire_arg = ++j;
    } else {
      reply_error(c.out, syntax_error);
      return after_command::keep;
    }
  }
  store::shard& s = c.db.at(c.db.shard_of(a[1]));
  std::unique_lock lk(s.mu);
  // As Redis 7.0's setCommand: the options as a whole first (a syntax error wins), then the
  // last expire value only (an earlier, overridden one is never read).
  if (has_expire) {
    bool seconds = iequals(expire_opt, "ex") || iequals(expire_opt, "exat");
    bool absolute = iequals(expire_opt, "exat") || iequals(expire_opt, "pxat");
    if (!expire_at(c, a[expire_arg], seconds, absolute, true, "set", at)) return after_command::keep;
  }
  entry* e = store::find_live_mut(s, a[1], c.clock);
  std::optional<std::string> old;
  if (get && e != nullptr) old = e->value;
  bool ok = !(nx && e != nullptr) && !(xx && e == nullptr);
  if (ok) {
    std::int64_t exp = has_expire ? at : (keepttl && e != nullptr ? e->expire_at_ms : 0);
    if (e != nullptr) {
      e->value = std::move(a[2]);  // overwrite in place: no second lookup
      store::set_expiry(s, *e, exp);
    } else {
      store::put(s, a[1], std::move(a[2]), exp);
    }
  }
  if (get) {
    if (old) {
      reply_bulk(c.out, *old);
    } else {
      reply_nil(c.out);
    }
  } else if (ok) {
    reply_simple(c.out, "OK");
  } else {
    reply_nil(c.out);
  }
  return after_command::keep;
}

after_command incr_by(ctx& c, std::int64_t by) {
  store::shard& s = c.db.at(c.db.shard_of(c.args[1]));
  std::unique_lock lk(s.mu);
  entry* e = store::find_live_mut(s, c.args[1], c.clock);
  std::int64_t v = 0;
  if (e != nullptr && !parse_int64(e->value, v)) {
    reply_error(c.out, not_integer);
    return after_command::keep;
  }
  if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v)) {
    reply_error(c.out, "ERR increment or decrement would overflow");
    return after_command::keep;
  }
  v += by;
  if (e != nullptr) {
    e->value = std::to_string(v);  // INCR keeps the TTL, as Redis does
  } else {
    store::put(s, c.args[1], std::to_string(v), 0);
  }
  reply_int(c.out, v);
  return after_command::keep;
}

after_command cmd_incr(ctx& c) { return incr_by(c, 1); }
after_command cmd_decr(ctx& c) { return incr_by(c, -1); }
after_command cmd_incrby(ctx& c) {
  std::int64_t by = 0;
  if (!parse_int64(c.args[2], by)) {
    reply_error(c.out, not_integer);
    return after_command::keep;
  }
  return incr_by(c, by);
}
after_command cmd_decrby(ctx& c) {
  std::int64_t by = 0;
  if (!parse_int64(c.args[2], by)) {
    reply_error(c.out, not_integer);
    return after_command::keep;
  }
  if (by == LLONG_MIN) {
    reply_error(c.out, "ERR decrement would overflow");
    return after_command::keep;
  }
  return incr_by(c, -by);
}

std::vector<std::string_view> keys_from(const std::vector<std::string>& a, std::size_t first, std::size_t step) {
  std::vector<std::string_view> k;
  for (std::size_t i = first; i < a.size(); i += step) k.push_back(a[i]);
  return k;
}

after_command cmd_del(ctx& c) {
  store::multi_lock lk(c.db, keys_from(c.args, 1, 1), false);
  std::int64_t n = 0;
  for (std::size_t i = 1; i < c.args.size(); ++i) {
    if (store::erase(c.db.at(c.db.shard_of(c.args[i])), c.args[i], c.clock)) ++n;
  }
  reply_int(c.out, n);
  return after_command::keep;
}

after_command cmd_exists(ctx& c) {
  store::multi_lock lk(c.db, keys_from(c.args, 1, 1), true);
  std::int64_t n = 0;
  for (std::size_t i = 1; i < c.args.size(); ++i) {
    if (store::find_live(c.db.at(c.db.shard_of(c.args[i])), c.args[i], c.clock) != nullptr) ++n;
  }
  reply_int(c.out, n);
  return after_command::keep;
}

after_command cmd_mget(ctx& c) {
  store::multi_lock lk(c.db, keys_from(c.args, 1, 1), true);
  reply_array(c.out, c.args.size() - 1);
  for (std::size_t i = 1; i < c.args.size(); ++i) {
    const entry* e = store::find_live(c.db.at(c.db.shard_of(c.args[i])), c.args[i], c.clock);
    if (e == nullptr) {
      reply_nil(c.out);
    } else {
      reply_bulk(c.out, e->value);
    }
  }
  return after_command::keep;
}

after_command cmd_mset(ctx& c) {
  if (c.args.size() % 2 == 0) {
    wrong_arity(c.out, "mset");
    return after_command::keep;
  }
  store::multi_lock lk(c.db, keys_from(c.args, 1, 2), false);
  for (std::size_t i = 1; i + 1 < c.args.size(); i += 2) {
    store::put(c.db.at(c.db.shard_of(c.args[i])), c.args[i], std::move(c.args[i + 1]), 0);
  }
  reply_simple(c.out, "OK");
  return after_command::keep;
}

after_command expire_generic(ctx& c, bool seconds, const char* name) {
  bool nx = false, xx = false, gt = false, lt = false;
  for (std::size_t j = 3; j < c.args.size(); ++j) {
    const std::string& o = c.args[j];
    if (iequals(o, "nx")) {
      nx = true;
    } else if (iequals(o, "xx")) {
      xx = true;
    } else if (iequals(o, "gt")) {
      gt = true;
    } else if (iequals(o, "lt")) {
      lt = true;
    } else {
      reply_error(c.out, "ERR Unsupported option " + o);
      return after_command::keep;
    }
  }
  if (nx && (xx || gt || lt)) {
    reply_error(c.out, "ERR NX and XX, GT or LT options at the same time are not compatible");
    return after_command::keep;
  }
  if (gt && lt) {
    reply_error(c.out, "ERR GT and LT options at the same time are not compatible");
    return after_command::keep;
  }
  store::shard& s = c.db.at(c.db.shard_of(c.args[1]));
  std::unique_lock lk(s.mu);
  std::int64_t at = 0;
  if (!expire_at(c, c.args[2], seconds, false, false, name, at)) return after_command::keep;
  const std::int64_t now = c.clock.now();
  entry* e = store::find_live_mut(s, c.args[1], c.clock);
  if (e == nullptr) {
    reply_int(c.out, 0);
    return after_command::keep;
  }
  std::int64_t cur = e->expire_at_ms;
  if ((nx && cur != 0) || (xx && cur == 0) || (gt && (cur == 0 || at <= cur)) ||
      (lt && cur != 0 && at >= cur)) {
    reply_int(c.out, 0);
    return after_command::keep;
  }
  if (at <= now) {
    store::erase(s, c.args[1], c.clock);
  } else {
    store::set_expiry(s, *e, at);
  }
  reply_int(c.out, 1);
  return after_command::keep;
}

after_command cmd_expire(ctx& c) { return expire_generic(c, true, "expire"); }
after_command cmd_pexpire(ctx& c) { return expire_generic(c, false, "pexpire"); }

after_command ttl_generic(ctx& c, bool seconds) {
  store::shard& s = c.db.at(c.db.shard_of(c.args[1]));
  std::shared_lock lk(s.mu);
  const entry* e = store::find_live(s, c.args[1], c.clock);
  if (e == nullptr) {
    reply_int(c.out, -2);
  } else if (e->expire_at_ms == 0) {
    reply_int(c.out, -1);
  } else {
    std::int64_t ttl = std::max<std::int64_t>(e->expire_at_ms - c.clock.now(), 0);
    reply_int(c.out, seconds ? (ttl + 500) / 1000 : ttl);
  }
  return after_command::keep;
}
after_command cmd_ttl(ctx& c) { return ttl_generic(c, true); }
after_command cmd_pttl(ctx& c) { return ttl_generic(c, false); }

after_command cmd_keys(ctx& c) {
  std::vector<std::string> ks = c.db.keys(c.args[1]);
  reply_array(c.out, ks.size());
  for (const std::string& k : ks) reply_bulk(c.out, k);
  return after_command::keep;
}

after_command cmd_dbsize(ctx& c) {
  reply_int(c.out, static_cast<std::int64_t>(c.db.size()));
  return after_command::keep;
}

after_command cmd_flushall(ctx& c) {
  if (c.args.size() > 2 || (c.args.size() == 2 && !iequals(c.args[1], "async") && !iequals(c.args[1], "sync"))) {
    reply_error(c.out, syntax_error);
    return after_command::keep;
  }
  c.db.clear();
  reply_simple(c.out, "OK");
  return after_command::keep;
}

// The reply to CONFIG HELP and COMMAND HELP: an array of status lines, as Redis answers them.
void reply_help(std::string& out, std::initializer_list<std::string_view> lines) {
  reply_array(out, lines.size());
  for (std::string_view l : lines) reply_simple(out, l);
}

after_command cmd_config(ctx& c) {
  if (iequals(c.args[1], "help") && c.args.size() == 2) {
    reply_help(c.out, {"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                       "GET <pattern>",
                       "    Return parameters matching the glob-like <pattern> and their values",
                       "    (kv_server knows save, appendonly, databases, maxmemory and port).",
                       "HELP",
                       "    Print this help."});
    return after_command::keep;
  }
  if (!iequals(c.args[1], "get")) {
    reply_error(c.out, "ERR unknown subcommand '" + c.args[1] + "'. Try CONFIG HELP.");
    return after_command::keep;
  }
  if (c.args.size() < 3) {
    wrong_arity(c.out, "config|get");
    return after_command::keep;
  }
  // The parameters redis-benchmark and common clients ask for.
  const std::array<std::pair<const char*, std::string>, 5> params{{
      {"save", ""},
      {"appendonly", "no"},
      {"databases", "1"},
      {"maxmemory", "0"},
      {"port", std::to_string(c.port)},
  }};
  // As Redis 7.0: a name without glob characters is looked up as is (case-insensitively) and
  // answered as given; a glob answers with the parameter's own name.
  std::vector<std::pair<std::string_view, const std::string*>> hits;
  for (const auto& p : params) {
    for (std::size_t i = 2; i < c.args.size(); ++i) {
      const std::string& pattern = c.args[i];
      const bool glob = pattern.find_first_of("[*?") != std::string::npos;
      if (glob ? glob_match(pattern, p.first, true) : iequals(pattern, p.first)) {
        hits.emplace_back(glob ? std::string_view(p.first) : std::string_view(pattern), &p.second);
        break;
      }
    }
  }
  reply_array(c.out, hits.size() * 2);
  for (const auto& [name, value] : hits) {
    reply_bulk(c.out, name);
    reply_bulk(c.out, *value);
  }
  return after_command::keep;
}

struct command_spec {
  std::string_view name;  // lower case
  int arity;  // Redis's: n means exactly n arguments with the name, -n at least n
  handler fn;
};
std::span<const command_spec> commands() noexcept;  // the table below

// COMMAND COUNT is the number of commands this server implements and COMMAND LIST their names,
// as Redis answers them; DOCS and INFO (which redis-cli asks at connect) and a filtered LIST
// are empty arrays: no introspection, so clients fall back to plain commands.
after_command cmd_command(ctx& c) {
  std::string_view sub = c.args.size() >= 2 ? std::string_view(c.args[1]) : std::string_view();
  if (iequals(sub, "count")) {
    if (c.args.size() == 2) {
      reply_int(c.out, static_cast<std::int64_t>(commands().size()));
    } else {
      wrong_arity(c.out, "command|count");
    }
  } else if (iequals(sub, "help") && c.args.size() == 2) {
    reply_help(c.out, {"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                       "(no subcommand)",
                       "    Return details about all commands (kv_server: an empty array).",
                       "COUNT",
                       "    Return the total number of commands in this server.",
                       "LIST",
                       "    Return a list of all commands in this server.",
                       "DOCS [<command-name> ...]",
                       "INFO [<command-name> ...]",
                       "    Return documentation or details (kv_server: an empty array).",
                       "HELP",
                       "    Print this help."});
  } else if (iequals(sub, "list") && c.args.size() == 2) {
    reply_array(c.out, commands().size());
    for (const command_spec& spec : commands()) reply_bulk(c.out, spec.name);
  } else if (c.args.size() == 1 || iequals(sub, "docs") || iequals(sub, "info") || iequals(sub, "list")) {
    reply_array(c.out, 0);
  } else {
    reply_error(c.out, "ERR unknown subcommand '" + c.args[1] + "'. Try COMMAND HELP.");
  }
  return after_command::keep;
}

const command_spec command_table[] = {
    {"ping", -1, cmd_ping},       {"echo", 2, cmd_echo},       {"quit", -1, cmd_quit},
    {"get", 2, cmd_get},          {"set", -3, cmd_set},        {"del", -2, cmd_del},
    {"exists", -2, cmd_exists},   {"incr", 2, cmd_incr},       {"decr", 2, cmd_decr},
    {"incrby", 3, cmd_incrby},    {"decrby", 3, cmd_decrby},   {"mget", -2, cmd_mget},
    {"mset", -3, cmd_mset},       {"expire", -3, cmd_expire},  {"pexpire", -3, cmd_pexpire},
    {"ttl", 2, cmd_ttl},          {"pttl", 2, cmd_pttl},       {"keys", 2, cmd_keys},
    {"dbsize", 1, cmd_dbsize},    {"flushall", -1, cmd_flushall}, {"config", -2, cmd_config},
    {"command", -1, cmd_command}, {"unlink", -2, cmd_del},
};

std::span<const command_spec> commands() noexcept { return command_table; }

void unknown_command(std::string& out, const std::vector<std::string>& args) {
  std::string rest;
  for (std::size_t i = 1; i < args.size() && rest.size() < 128; ++i) {
    std::size_t room = 128 - rest.size();
    rest += '\'';
    rest += std::string_view(args[i]).substr(0, room);
    rest += "' ";
  }
  std::string msg = "ERR unknown command '" + args[0].substr(0, 128) + "', with args beginning with: " + rest;
  for (char& ch : msg) {
    if (ch == '\r' || ch == '\n') ch = ' ';  // an error line must stay one line
  }
  reply_error(out, msg);
}

}  // namespace

after_command execute(store& db, std::vector<std::string>& args, std::string& out, std::uint16_t port) {
  const std::string& name = args[0];
  for (const command_spec& spec : command_table) {
    if (!iequals(name, spec.name)) continue;
    int argc = static_cast<int>(args.size());
    if ((spec.arity > 0 && argc != spec.arity) || (spec.arity < 0 && argc < -spec.arity)) {
      wrong_arity(out, spec.name);
      return after_command::keep;
    }
    ctx c{db, args, out, port, {}};
    return spec.fn(c);
  }
  unknown_command(out, args);
  return after_command::keep;
}

}  // namespace kv
