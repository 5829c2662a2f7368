#!/usr/bin/env bash
# Runs libFuzzer targets one after another and prints one line per target:
#   Fuzz/run.sh BUILD_DIR SECONDS WORK_CORPUS_DIR TARGET...
# Each target reads Fuzz/corpus/<target> (committed seeds, never written) and
# WORK_CORPUS_DIR/<target> (kept between runs, grown by each run). A crash, hang
# (> 1 s per input) or memory blow-up leaves its input in BUILD_DIR/artifacts/<target>/
# and makes the script exit 1 after the remaining targets ran.
set -uo pipefail
build=$1 seconds=$2 work=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
# Swift keeps some runtime allocations (metadata caches, weak-reference side tables)
# for the life of the process, which LeakSanitizer would report on every run.
# malloc_context_size=5: allocation stacks 5 frames deep in reports (the faulting access keeps
# its full stack); the default 30 makes ASan's stack depot the top cost of the
# allocation-heavy Swift targets (chat: 125 -> 325 executions/s).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:handle_abort=1:malloc_context_size=5}
# Swift's own crash backtracer reads the stack in ways ASan reports as errors of its
# own; libFuzzer and ASan already print the stack of a crash.
export SWIFT_BACKTRACE=enable=no
failed=()
summary=()
for t in "$@"; do
    case $t in
        gguf|gguf_model|capi) dict=gguf ;;
        safetensors|hf_config|hf_tokenizer|request) dict=json ;;
        chat|tokenizer) dict=text ;;
        kernels) dict= ;;
        *) echo "unknown fuzz target $t" >&2; exit 2 ;;
    esac
    mkdir -p "$work/$t" "$build/artifacts/$t" "$build/logs"
    log=$build/logs/$t.log
    opts=(-max_total_time="$seconds" -timeout=1 -rss_limit_mb=2048 -malloc_limit_mb=512
          -artifact_prefix="$build/artifacts/$t/" -print_final_stats=1)
    [ -n "$dict" ] && opts+=(-dict="$here/dict/$dict.dict")
    # chat: the template and turn logic needs short messages, and rendering costs a
    # tokenization of the whole input, so longer inputs would only slow it (Fuzz/swift/chat.swift)
    [ "$t" = chat ] && opts+=(-max_len=512)
    [ "$t" = kernels ] && export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    echo "fuzz $t: ${seconds}s (log $log)"
    dirs=("$work/$t" "$here/corpus/$t")
    # inputs that once crashed a target run first, every time
    [ -d "$here/regressions/$t" ] && dirs+=("$here/regressions/$t")
    scratch=$( [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}" )/bitnet-fuzz-run-$$-$t
    BITNET_FUZZ_SCRATCH=$scratch "$build/$t" "${opts[@]}" "${dirs[@]}" >"$log" 2>&1
    rc=$?
    rm -rf "$scratch"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    corpus=$(find "$work/$t" -type f | wc -l)
    line=$(printf '%-13s %10s execs %7s/s  peak rss %5s MB  corpus %6s  ' "$t" "${execs:-?}" "${rate:-?}" "${rss:-?}" "$corpus")
    if [ $rc -ne 0 ]; then
        failed+=("$t")
        line+="FAILED (rc $rc): $(grep -m1 -E 'ERROR: |Fatal error|Test unit written' "$log" | head -c 200)"
        grep -E 'Test unit written to' "$log" | tail -1
        grep -m1 -B2 -A30 -E '==ERROR|Fatal error|deadly signal|timeout after' "$log" | head -60
    else
        line+="ok"
    fi
    summary+=("$line")
done
echo
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing found failures in: ${failed[*]} (inputs in $build/artifacts/<target>/)"
    exit 1
fi
