// Command execution for kv_server: one request (argv) in, RESP2 reply bytes appended to an
// output buffer. Replies and error texts follow Redis 7.0 for the commands supported.
#pragma once

#include "store.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace kv {

/// What the connection must do after a command.
enum class after_command { keep, close };

/// Runs `args` (non-empty) against `db`, appending the reply to `out`. May park the calling
/// fiber on shard locks; runs on any fiber, concurrently with other calls. `port` is reported
/// by CONFIG GET port. Each command reads the clock at most once (command_clock), under the
/// lock of its key's shard.
after_command execute(store& db, std::vector<std::string>& args, std::string& out, std::uint16_t port);

}  // namespace kv
