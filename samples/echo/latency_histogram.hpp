// latency_histogram: the log-linear histogram of nanosecond latencies echo_client reports
// percentiles from (HdrHistogram's layout with 3 significant digits). Values below 2^11 ns each
// have a bucket; above, each power of two [2^e, 2^(e+1)) has 1024 buckets of width 2^(e-10),
// so a reported percentile is the upper edge of the bucket holding the nearest-rank sample: at
// most 0.1 % above the true sample, never below it. Values from 2^40 ns (18 minutes) up share
// the last bucket. Not thread-safe: one per client thread, merged at the end.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace echo_sample {

class latency_histogram {
 public:
  static constexpr int linear_bits = 11;
  static constexpr int sub_bits = 10;
  static constexpr int max_exp = 40;
  static constexpr std::size_t linear = std::size_t(1) << linear_bits;
  static constexpr std::size_t sub = std::size_t(1) << sub_bits;
  static constexpr std::size_t buckets = linear + std::size_t(max_exp - linear_bits) * sub;

  latency_histogram() : counts_(buckets, 0) {}

  /// Records one latency of `ns` nanoseconds.
  void record(std::uint64_t ns) {
    ++counts_[index(ns)];
    ++total_;
    sum_ += ns;
    max_ = std::max(max_, ns);
  }
  /// Adds every sample of `o`.
  void merge(const latency_histogram& o) {
    for (std::size_t i = 0; i < buckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    sum_ += o.sum_;
    max_ = std::max(max_, o.max_);
  }
  std::uint64_t total() const { return total_; }
  std::uint64_t max() const { return max_; }
  double mean() const { return total_ == 0 ? 0 : double(sum_) / double(total_); }

  /// Returns the nearest-rank percentile `p` (0 < p <= 100): the smallest recorded value v such
  /// that at least p % of the samples are <= v, given as its bucket's upper edge (capped at the
  /// max); 0 when empty.
  std::uint64_t percentile(double p) const {
    if (total_ == 0) return 0;
    // rank = ceil(p/100 * total), computed in integers for p with at most 3 decimals.
    auto milli = std::uint64_t(std::llround(p * 1000));
    std::uint64_t rank = (total_ * milli + 100000 - 1) / 100000;
    rank = std::clamp<std::uint64_t>(rank, 1, total_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(upper(i), max_);
    }
    return max_;
  }

 private:
  static std::size_t index(std::uint64_t v) {
    if (v < linear) return std::size_t(v);
    if (v >= (std::uint64_t(1) << max_exp)) v = (std::uint64_t(1) << max_exp) - 1;
    int e = 63 - __builtin_clzll(v);  // linear_bits <= e < max_exp
    return linear + std::size_t(e - linear_bits) * sub + std::size_t((v >> (e - sub_bits)) - sub);
  }
  static std::uint64_t upper(std::size_t i) {
    if (i < linear) return i;
    std::size_t k = i - linear;
    int e = linear_bits + int(k / sub);
    std::uint64_t width = std::uint64_t(1) << (e - sub_bits);
    return (sub + k % sub) * width + width - 1;
  }

  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0, sum_ = 0, max_ = 0;
};

}  // namespace echo_sample
