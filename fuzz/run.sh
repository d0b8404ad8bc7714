#!/usr/bin/env bash
# Coverage-guided fuzzing of the hostile-input parsers on the stable toolchain (ADR 31).
#
#   fuzz/run.sh SECONDS [TARGET...]     each target (default: all) for SECONDS
#
# Builds the targets with libFuzzer (libfuzzer-sys, which compiles it with the C++ compiler)
# and SanitizerCoverage instrumentation, the flags `cargo fuzz build --sanitizer none` uses,
# all of them stable (no AddressSanitizer, which needs nightly: Rust's own checks, bounds,
# overflow and debug assertions, catch what it would in safe code). Each target starts from
# its committed seeds in fuzz/corpus/TARGET and a working corpus kept under the target dir;
# a crash, a timeout (-timeout, 10 s) or a run over -rss_limit_mb (2 GiB) fails the script
# and leaves the input in $CARGO_TARGET_DIR/fuzz-artifacts/TARGET/. Reproduce one with
# `fuzz/run.sh repro TARGET FILE`.
set -euo pipefail
cd "$(dirname "$0")"

all=(mail markdown cvss osv ics smtp proxy)
triple=$(rustc -vV | sed -n 's/^host: //p')
target_dir=${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}}
export CARGO_TARGET_DIR=$target_dir
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"

build() {
  # --target keeps the instrumentation off build scripts and proc macros, as cargo-fuzz does.
  # Only the fuzz targets: make-seeds has no libFuzzer to link against.
  local bins=()
  for t in "${all[@]}"; do bins+=(--bin "$t"); done
  cargo build --release --locked --target "$triple" "${bins[@]}"
}

if [ "${1:-}" = repro ]; then
  build
  exec "$target_dir/$triple/release/$2" "$3"
fi

seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

[ -s key.asc ] || { echo "fuzz/key.asc is missing (see src/make_seeds.rs)" >&2; exit 1; }
build

failed=()
for t in "${targets[@]}"; do
  work="$target_dir/fuzz-corpus/$t"
  artifacts="$target_dir/fuzz-artifacts/$t"
  mkdir -p "$work" "$artifacts"
  echo "== fuzzing $t for ${seconds}s"
  if ! "$target_dir/$triple/release/$t" "$work" "corpus/$t" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
      -artifact_prefix="$artifacts/" -print_final_stats=1 2> "$artifacts/log.txt"; then
    failed+=("$t")
    tail -n 40 "$artifacts/log.txt" >&2
  fi
  grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::new_units_added)' "$artifacts/log.txt" || true
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]} (inputs in $target_dir/fuzz-artifacts/)" >&2
  exit 1
fi
echo "fuzzing: no crash, timeout or leak in ${targets[*]}"
