#!/usr/bin/env bash
# bench.sh runs the benchmarks (each compares kubekit with plain client-go,
# or another baseline, in the same run) and writes BENCHMARKS.md: a table of
# every ratio they report, with the machine, the Go version and the date.
# The raw output goes to bin/bench.txt. "make bench" runs it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p bin
raw=bin/bench.txt

# BenchmarkWatchEvents reports medians over its iterations: 150 of them (at
# 60 a run's medians moved by about ±5%, at 150 about ±3%).
{
  go test -run='^$' -bench=. -benchmem -count=1 $(go list ./... | grep -vx 'github.com/kubekit/kubekit/watch')
  go test -run='^$' -bench=. -skip='^BenchmarkWatchEvents$' -benchmem -count=1 ./watch/
  go test -run='^$' -bench='^BenchmarkWatchEvents$' -benchmem -count=1 -benchtime=150x ./watch/
} 2>&1 | tee "${raw}"

cpu="$(sed -n 's/^cpu: //p' "${raw}" | head -n 1)"
{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` (hack/bench.sh); the raw output is in bin/bench.txt."
  echo "Each ratio compares kubekit with the plain client-go way (or the named baseline)"
  echo "measured in the same run. Throughput ratios (events/s, objects/s): above 1 means kubekit is"
  echo "faster. Memory ratios (heap, peak, B/pod): below 1 means kubekit holds less. CPU ratios (cpu-):"
  echo "below 1 means kubekit uses less. Each benchmark's"
  echo "doc comment states its target."
  echo
  echo "- Date: $(date -u +%Y-%m-%d)"
  echo "- Machine: ${cpu:-unknown CPU}, $(nproc) cores, $(uname -sm)"
  echo "- Go: $(go version | awk '{print $3}')"
  echo
  echo "| Package | Benchmark | Ratio | Value |"
  echo "|---|---|---|---|"
  awk '
    /^pkg: / { pkg = $2; sub("github.com/kubekit/kubekit/?", "", pkg); if (pkg == "") pkg = "kubekit" }
    /^Benchmark/ {
      name = $1; sub(/-[0-9]+$/, "", name)
      for (i = 3; i < NF; i += 2) {
        unit = $(i + 1)
        if (unit ~ /client-go$/ || unit ~ /ratio$/ || unit ~ /-vs-/ || unit == "bridge/logr")
          printf "| %s | %s | %s | %s |\n", pkg, name, unit, $i
      }
    }' "${raw}"
} >BENCHMARKS.md
echo "bench.sh: wrote BENCHMARKS.md"
