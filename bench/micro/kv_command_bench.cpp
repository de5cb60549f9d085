// kv_command_bench: kv_server's own work per command, without the network: RESP parsing and
// command execution against the sharded store, as serve() in samples/kv_server/main.cpp does
// them for one read. The requests are redis-benchmark's (`-t set,get`: key "key:__rand_int__",
// value "xxx"), pipelined `depth` deep in one read -> ns_per_command. Runs on a plain thread
// (the store's shared_mutex works from threads too; uncontended, it never parks).
// Use it to see what a change to the parser or the command table costs; the end-to-end
// comparison with redis-server is bench/run_kv_bench.sh.
#include <benchmark/benchmark.h>

#include "bench_common.hpp"
#include "commands.hpp"
#include "resp_parser.hpp"
#include "store.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace {

const std::string set_request = "*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nxxx\r\n";
const std::string get_request = "*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n";

void run_batches(benchmark::State& state, const std::string& request) {
  const auto depth = static_cast<int>(state.range(0));
  std::string batch;
  for (int i = 0; i < depth; ++i) batch += request;
  kv::store db;
  kv::resp_parser parser;
  std::vector<std::string> args;
  std::string out;
  std::uint64_t commands = 0;
  auto t0 = bench::clock_type::now();
  for (auto _ : state) {
    parser.feed(batch.data(), batch.size());
    while (parser.next(args) == kv::resp_status::command) {
      kv::execute(db, args, out, 6379);
      ++commands;
    }
    benchmark::DoNotOptimize(out.data());
    out.clear();
  }
  if (commands != static_cast<std::uint64_t>(state.iterations()) * static_cast<std::uint64_t>(depth)) {
    bench::fail(state, "kv_command_bench", "run_batches", "a request did not parse as a command");
    return;
  }
  bench::report_per_op(state, "ns_per_command", bench::ns_since(t0), commands);
}

void BM_set(benchmark::State& state) { run_batches(state, set_request); }
void BM_get(benchmark::State& state) { run_batches(state, get_request); }

}  // namespace

BENCHMARK(BM_set)->Name("kv/set")->ArgName("depth")->Arg(1)->Arg(16)->UseRealTime();
BENCHMARK(BM_get)->Name("kv/get")->ArgName("depth")->Arg(1)->Arg(16)->UseRealTime();
int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return bench::exit_status();
}
