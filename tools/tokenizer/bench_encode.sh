#!/usr/bin/env bash
# Encode speed of the tokenizers (MB/s, one core, release build) on English prose.
# Prints one line per fixture vocabulary; see TokenizerBenchmarkTests.swift.
set -euo pipefail
cd "$(dirname "$0")/../.."
corpus="${1:-/tmp/bitnet-tokenizer-corpus.txt}"
[ -f "$corpus" ] || python3 tools/tokenizer/make_bench_corpus.py "$corpus"
BITNET_TOKENIZER_BENCH_TEXT="$corpus" swift test -c release -Xswiftc -enable-testing \
    --scratch-path "${SCRATCH:-.build-tok-release}" --filter TokenizerBenchmarkTests 2>&1 | grep -E '^(bench|golden)|error|failed'
