#!/usr/bin/env bash
# Fuzz the targets on STABLE Rust (no cargo-fuzz, no nightly needed): builds
# the libFuzzer binaries with the same SanitizerCoverage instrumentation
# cargo-fuzz asks for (stable codegen flags, minus AddressSanitizer, which
# needs nightly's -Zsanitizer), runs each target in turn on one core, then
# minimizes what it found back into corpus/<target>/ (-merge=1).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     default: 240 s, all three
#
# Crashes land in fuzz/artifacts/<target>/. Scratch corpora in fuzz/work/.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-240}
shift || true
targets=("${@:-header frame offset}")
# shellcheck disable=SC2206
targets=(${targets[*]})
triple=$(rustc -vV | sed -n 's/^host: //p')

# Seeds first, uninstrumented (no libFuzzer runtime in an example).
cargo run --release --example write_seeds -- work/seeds

export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 --cfg fuzzing -Cdebug-assertions -Coverflow-checks -Cforce-frame-pointers"
# --target keeps build scripts uninstrumented (as cargo-fuzz does).
cargo build --release --target "$triple" --bins

for t in "${targets[@]}"; do
  bin=target/$triple/release/$t
  mkdir -p "work/$t" "corpus/$t" "artifacts/$t"
  echo "== fuzzing $t for ${secs}s"
  # One job, one worker: the machine is shared. -rss_limit_mb guards against
  # a target that leaks; -timeout flags a hang (nothing may wait).
  "$bin" "work/$t" "corpus/$t" "work/seeds/$t" \
    -max_total_time="$secs" -jobs=1 -workers=1 -timeout=10 -rss_limit_mb=2048 \
    -max_len=4096 -artifact_prefix="artifacts/$t/" -print_final_stats=1 || true
  echo "== minimizing $t into corpus/$t"
  mkdir -p "work/$t.min"
  rm -f "work/$t.min"/*
  "$bin" -merge=1 -use_counters=0 "work/$t.min" "corpus/$t" "work/$t" "work/seeds/$t" \
    -artifact_prefix="artifacts/$t/"
  rm -f "corpus/$t"/*
  cp "work/$t.min"/* "corpus/$t/"
  echo "== $t: $(ls "corpus/$t" | wc -l) inputs, $(du -sh "corpus/$t" | cut -f1)"
done
ls artifacts/*/ 2>/dev/null | grep -v ':$' | grep . && echo "!! crashes in fuzz/artifacts" || true
