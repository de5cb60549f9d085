// The key space of kv_server: string keys to string values with optional expiry, split into
// shards, each a hash map guarded by a weft::shared_mutex (readers share, writers exclude).
// Invariant: a key whose expiry has passed is never returned; it is erased lazily by the next
// writer of its shard or by sweep_expired(), which a sweeper fiber calls periodically.
#pragma once

#include <weft/shared_mutex.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kv {

/// Milliseconds on the steady clock; expiry times use it.
std::int64_t now_ms();

/// The time of one command: the steady clock, read on first use and then fixed, so that every
/// check the command makes agrees. A command on keys without an expiry never reads it.
/// Commands read it while holding the lock of the key's shard, so the readings taken in one
/// shard never go back (as in Redis, whose single thread reads the clock per command).
class command_clock {
 public:
  std::int64_t now() {
    if (ms_ < 0) ms_ = now_ms();
    return ms_;
  }

 private:
  std::int64_t ms_ = -1;
};

struct entry {
  std::string value;
  std::int64_t expire_at_ms = 0;  ///< 0: no expiry
};

/// The sharded map. Every call may park the calling fiber on a shard's lock; calls from any
/// number of fibers may run concurrently.
class store {
 public:
  static constexpr std::size_t shard_count = 16;

  struct shard {
    weft::shared_mutex mu;
    std::unordered_map<std::string, entry> map;  // guarded by mu
    std::size_t expiring = 0;                    // entries with expire_at_ms != 0; guarded by mu
  };

  std::size_t shard_of(std::string_view key) const noexcept {
    return std::hash<std::string_view>{}(key) % shard_count;
  }
  shard& at(std::size_t i) noexcept { return shards_[i]; }

  /// Looks `key` up in `s` (whose lock the caller holds, shared or exclusive); null if absent
  /// or expired at `clock`'s time (read only for an entry with an expiry).
  static const entry* find_live(shard& s, const std::string& key, command_clock& clock);
  /// As find_live, for a caller holding the lock exclusively: erases an expired entry.
  static entry* find_live_mut(shard& s, const std::string& key, command_clock& clock);
  /// Stores `value` under `key` (exclusive lock held), with expiry `expire_at_ms` (0: none).
  static void put(shard& s, const std::string& key, std::string value, std::int64_t expire_at_ms);
  /// Changes an entry's expiry, keeping `expiring` right.
  static void set_expiry(shard& s, entry& e, std::int64_t expire_at_ms);
  /// Erases `key` (exclusive lock held); true if a live entry was removed.
  static bool erase(shard& s, const std::string& key, command_clock& clock);

  /// Locks the shards of `keys` exclusively (or shared) in index order, so multi-key commands
  /// are atomic and cannot deadlock; unlocks on destruction.
  class multi_lock {
   public:
    multi_lock(store& st, const std::vector<std::string_view>& keys, bool shared);
    ~multi_lock();
    multi_lock(const multi_lock&) = delete;
    multi_lock& operator=(const multi_lock&) = delete;

   private:
    store& st_;
    std::array<bool, shard_count> held_{};
    bool shared_;
  };

  /// Live keys in all shards (each shard counted under its own lock).
  std::size_t size();
  /// Live keys matching a glob (Redis's stringmatch rules).
  std::vector<std::string> keys(std::string_view pattern);
  /// Removes every key.
  void clear();
  /// Erases expired entries in every shard that has entries with an expiry; returns how many.
  std::size_t sweep_expired();

 private:
  std::array<shard, shard_count> shards_;
};

/// ASCII case folding, as Redis's strcasecmp in the C locale (no locale lookup per byte).
inline char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

/// Redis's stringmatchlen: *, ?, [abc], [^a-z], \x escapes.
bool glob_match(std::string_view pattern, std::string_view text, bool nocase = false);

}  // namespace kv
