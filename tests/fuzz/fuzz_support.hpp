// Shared by the fuzz targets: a check that aborts (so libFuzzer records the input) and the
// split of a fuzz input into a byte stream plus up to 16 cut points, taken from the input's
// last bytes (FuzzedDataProvider reads integers from the end), so the same stream is fed in
// different pieces as the fuzzer mutates those bytes.
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#define FUZZ_CHECK(cond)                                                             \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

namespace fuzz {

struct split_input {
  std::string bytes;
  std::vector<std::size_t> cuts;  ///< sorted offsets into bytes
};

/// Consumes the cut points, then the rest of the input as the stream.
inline split_input consume_split_input(FuzzedDataProvider& fdp) {
  std::vector<std::uint16_t> fractions(fdp.ConsumeIntegralInRange<std::size_t>(0, 16));
  for (auto& f : fractions) f = fdp.ConsumeIntegral<std::uint16_t>();
  split_input s{fdp.ConsumeRemainingBytesAsString(), {}};
  for (auto f : fractions) s.cuts.push_back(s.bytes.size() * f / 65536);
  std::sort(s.cuts.begin(), s.cuts.end());
  return s;
}

/// Calls fn(piece) for each piece of `in` cut at `cuts`, in order, until fn returns false.
template <class Fn>
void for_each_piece(const std::string& in, const std::vector<std::size_t>& cuts, Fn&& fn) {
  std::size_t at = 0;
  for (std::size_t i = 0; i <= cuts.size(); ++i) {
    std::size_t end = i < cuts.size() ? cuts[i] : in.size();
    if (!fn(std::string_view(in.data() + at, end - at))) return;
    at = end;
  }
}

}  // namespace fuzz
