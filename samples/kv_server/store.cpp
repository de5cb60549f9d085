// The sharded key space. Invariant: shard::expiring counts the entries of the shard with an
// expiry, so the sweeper skips shards that have none.
#include "store.hpp"

#include <mutex>
#include <shared_mutex>

namespace kv {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

const entry* store::find_live(shard& s, const std::string& key, command_clock& clock) {
  auto it = s.map.find(key);
  if (it == s.map.end()) return nullptr;
  if (it->second.expire_at_ms != 0 && it->second.expire_at_ms <= clock.now()) return nullptr;
  return &it->second;
}

entry* store::find_live_mut(shard& s, const std::string& key, command_clock& clock) {
  auto it = s.map.find(key);
  if (it == s.map.end()) return nullptr;
  if (it->second.expire_at_ms != 0 && it->second.expire_at_ms <= clock.now()) {
    --s.expiring;
    s.map.erase(it);
    return nullptr;
  }
  return &it->second;
}

void store::set_expiry(shard& s, entry& e, std::int64_t expire_at_ms) {
  if (e.expire_at_ms != 0) --s.expiring;
  if (expire_at_ms != 0) ++s.expiring;
  e.expire_at_ms = expire_at_ms;
}

void store::put(shard& s, const std::string& key, std::string value, std::int64_t expire_at_ms) {
  auto [it, inserted] = s.map.try_emplace(key);
  if (inserted) {
    it->second.expire_at_ms = 0;
  }
  it->second.value = std::move(value);
  set_expiry(s, it->second, expire_at_ms);
}

bool store::erase(shard& s, const std::string& key, command_clock& clock) {
  entry* e = find_live_mut(s, key, clock);
  if (e == nullptr) return false;
  if (e->expire_at_ms != 0) --s.expiring;
  s.map.erase(key);
  return true;
}

store::multi_lock::multi_lock(store& st, const std::vector<std::string_view>& keys, bool shared)
    : st_(st), shared_(shared) {
  for (std::string_view k : keys) held_[st.shard_of(k)] = true;
  for (std::size_t i = 0; i < shard_count; ++i) {
    if (!held_[i]) continue;
    if (shared_) {
      st_.shards_[i].mu.lock_shared();
    } else {
      st_.shards_[i].mu.lock();
    }
  }
}

store::multi_lock::~multi_lock() {
  for (std::size_t i = shard_count; i-- > 0;) {
    if (!held_[i]) continue;
    if (shared_) {
      st_.shards_[i].mu.unlock_shared();
    } else {
      st_.shards_[i].mu.unlock();
    }
  }
}

std::size_t store::size() {
  std::size_t n = 0;
  std::int64_t now = now_ms();
  for (shard& s : shards_) {
    std::shared_lock lk(s.mu);
    if (s.expiring == 0) {
      n += s.map.size();
      continue;
    }
    for (const auto& [k, e] : s.map) {
      if (e.expire_at_ms == 0 || e.expire_at_ms > now) ++n;
    }
  }
  return n;
}

std::vector<std::string> store::keys(std::string_view pattern) {
  std::vector<std::string> out;
  std::int64_t now = now_ms();
  for (shard& s : shards_) {
    std::shared_lock lk(s.mu);
    for (const auto& [k, e] : s.map) {
      if (e.expire_at_ms != 0 && e.expire_at_ms <= now) continue;
      if (glob_match(pattern, k)) out.push_back(k);
    }
  }
  return out;
}

void store::clear() {
  for (shard& s : shards_) {
    std::unique_lock lk(s.mu);
    s.map.clear();
    s.expiring = 0;
  }
}

std::size_t store::sweep_expired() {
  std::size_t removed = 0;
  std::int64_t now = now_ms();
  for (shard& s : shards_) {
    {
      std::shared_lock lk(s.mu);
      if (s.expiring == 0) continue;
    }
    std::unique_lock lk(s.mu);
    for (auto it = s.map.begin(); it != s.map.end();) {
      if (it->second.expire_at_ms != 0 && it->second.expire_at_ms <= now) {
        --s.expiring;
        it = s.map.erase(it);
        ++removed;
      } else {
        ++it;
      }
    }
  }
  return removed;
}

namespace {

char fold(char c, bool nocase) { return nocase ? ascii_lower(c) : c; }

bool match_at(std::string_view p, std::string_view s, bool nocase, int depth) {
  if (depth > 1000) return false;  // Redis bounds the recursion too
  std::size_t pi = 0, si = 0;
  while (pi < p.size() && (si < s.size() || p[pi] == '*')) {
    switch (p[pi]) {
      case '*': {
        while (pi + 1 < p.size() && p[pi + 1] == '*') ++pi;
        if (pi + 1 == p.size()) return true;
        for (std::size_t k = si; k <= s.size(); ++k) {
          if (match_at(p.substr(pi + 1), s.substr(k), nocase, depth + 1)) return true;
        }
        return false;
      }
      case '?':
        ++si;
        break;
      case '[': {
        ++pi;
        bool negate = pi < p.size() && p[pi] == '^';
        if (negate) ++pi;
        bool matched = false;
        for (;;) {
          if (pi >= p.size()) {
            --pi;  // unterminated class: as Redis, treat what we have
            break;
          }
          if (p[pi] == '\\' && pi + 1 < p.size()) {
            ++pi;
            if (fold(p[pi], nocase) == fold(s[si], nocase)) matched = true;
          } else if (p[pi] == ']') {
            break;
          } else if (pi + 2 < p.size() && p[pi + 1] == '-') {
            char lo = fold(p[pi], nocase), hi = fold(p[pi + 2], nocase), c = fold(s[si], nocase);
            if (lo > hi) std::swap(lo, hi);
            pi += 2;
            if (c >= lo && c <= hi) matched = true;
          } else if (fold(p[pi], nocase) == fold(s[si], nocase)) {
            matched = true;
          }
          ++pi;
        }
        if (negate) matched = !matched;
        if (!matched) return false;
        ++si;
        break;
      }
      case '\\':
        if (pi + 1 < p.size()) ++pi;
        [[fallthrough]];
      default:
        if (fold(p[pi], nocase) != fold(s[si], nocase)) return false;
        ++si;
        break;
    }
    ++pi;
    if (si == s.size()) {
      while (pi < p.size() && p[pi] == '*') ++pi;
      break;
    }
  }
  return pi == p.size() && si == s.size();
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text, bool nocase) {
  return match_at(pattern, text, nocase, 0);
}

}  // namespace kv
