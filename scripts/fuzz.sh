#!/usr/bin/env bash
# Fuzzes one of Rein's parsers of outside data with libFuzzer and the address sanitizer.
#
#   scripts/fuzz.sh TARGET [--runs N] [--seconds S] [-- LIBFUZZER-OPTIONS...]
#
# TARGET: safetensors, gguf, tokenizer, jsonl, recipe or config. The seeds are
# Tests/Fixtures/fuzz-seeds/TARGET (committed, small); the growing corpus is kept in
# .build/fuzz/corpus/TARGET and crashes, hangs and oversized allocations are written to
# .build/fuzz/findings/TARGET/. Defaults: 60 seconds, no run limit. A finding is a bug: fix it and
# add the input as a regression test (see docs/reliability.md).
#
# The instrumented build is separate (.build/fuzz), so the ordinary `swift build` is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."

targets="safetensors gguf tokenizer jsonl recipe config"
if [[ $# -lt 1 ]] || [[ " $targets " != *" $1 "* ]]; then
    echo "usage: scripts/fuzz.sh TARGET [--runs N] [--seconds S] [-- LIBFUZZER-OPTIONS...]" >&2
    echo "targets: $targets" >&2
    exit 2
fi
target=$1; shift
runs=-1
seconds=60
extra=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

swift build -c release --build-path .build/fuzz --product rein-fuzz \
    --sanitize fuzzer --sanitize address -Xswiftc -DREIN_FUZZ >&2

corpus=.build/fuzz/corpus/$target
findings=.build/fuzz/findings/$target
mkdir -p "$corpus" "$findings" .build/fuzz/scratch
# Hangs: more than 2 s on one input (the address sanitizer slows code about 2x; the bar is 1 s
# uninstrumented). Allocations: one malloc over 256 MB, or 2 GB resident, is a finding for inputs
# of at most 1 MB.
REIN_FUZZ_TARGET=$target REIN_FUZZ_SCRATCH=.build/fuzz/scratch \
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=0} \
    .build/fuzz/release/rein-fuzz \
    -runs="$runs" -max_total_time="$seconds" -timeout=2 -rss_limit_mb=2048 -malloc_limit_mb=256 \
    -max_len=1048576 -len_control=200 -print_final_stats=1 -artifact_prefix="$findings/" \
    "${extra[@]}" "$corpus" "Tests/Fixtures/fuzz-seeds/$target"
