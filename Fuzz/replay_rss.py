#!/usr/bin/env python3
"""Replays fuzz corpora one input per process and reports the peak RSS of each.

    Fuzz/replay_rss.py --build build/fuzz-noasan --corpus Fuzz/corpus --corpus build/fuzz/corpus TARGET...

Issue 13 bounds memory per input: peak RSS <= 256 MB + the input's size, measured
without ASan (`make fuzz-replay-rss` builds the harnesses with coverage only). One
process per input because a process's peak is all that the kernel keeps: the figure is
the child's own ru_maxrss from wait4(2), the harness's start-up (fixture tokenizers)
included, so it is an upper bound on what the input itself needs.

Prints one line per target (inputs, smallest and largest peak, the input that reached
the largest) and exits 1 if any input exceeds its bound, fails, or runs past --timeout.
Identical inputs (libFuzzer names its corpus files by content hash; seeds are copied
into working corpora) run once.
"""
import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import threading
import time

MB = 1 << 20


def run_one(binary, path, scratch, log, timeout):
    """(peak RSS in bytes, exit status or None on timeout) of `binary path`."""
    env = dict(os.environ, BITNET_FUZZ_SCRATCH=scratch, SWIFT_BACKTRACE="enable=no",
               ASAN_OPTIONS="detect_leaks=0")
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        pid = os.posix_spawn(binary, [binary, "-rss_limit_mb=0", path], env,
                             file_actions=[(os.POSIX_SPAWN_DUP2, fd, 1), (os.POSIX_SPAWN_DUP2, fd, 2)])
    finally:
        os.close(fd)
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        got, status, usage = os.wait4(pid, os.WNOHANG)
        if got == pid:
            return usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            _, _, usage = os.wait4(pid, 0)
            return usage.ru_maxrss * 1024, None
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


def inputs(target, corpora):
    """Unique inputs of `target` across the corpus roots, first path kept per content."""
    seen = {}
    for root in corpora:
        d = os.path.join(root, target)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if name.startswith(".") or not os.path.isfile(p):
                continue
            with open(p, "rb") as f:
                digest = hashlib.sha1(f.read()).hexdigest()
            seen.setdefault(digest, p)
    return list(seen.values())


def tail(path, n=15):
    with open(path, "rb") as f:
        return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")


def replay(target, binary, files, args, work):
    results = []  # (rss, path, size, status)
    lock = threading.Lock()
    queue = list(reversed(files))

    def worker(i):
        scratch = os.path.join(work, f"scratch-{target}-{i}")
        log = os.path.join(work, f"log-{target}-{i}")
        os.makedirs(scratch, exist_ok=True)
        while True:
            with lock:
                if not queue:
                    return
                path = queue.pop()
            rss, status = run_one(binary, path, scratch, log, args.timeout)
            failure = None if status == 0 else tail(log)
            with lock:
                results.append((rss, path, os.path.getsize(path), status, failure))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(max(1, args.jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", required=True, help="folder of the harness binaries")
    ap.add_argument("--corpus", action="append", default=[], help="corpus root holding <target>/ folders (repeatable)")
    ap.add_argument("--jobs", type=int, default=1, help="inputs replayed at once")
    ap.add_argument("--limit-mb", type=int, default=256, help="bound on peak RSS beyond the input's size (MB)")
    ap.add_argument("--timeout", type=float, default=60, help="seconds one input may take")
    ap.add_argument("targets", nargs="+")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="bitnet-replay-rss-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    lines, failed = [], []
    try:
        for target in args.targets:
            binary = os.path.join(args.build, target)
            if not os.access(binary, os.X_OK):
                print(f"{target}: no harness at {binary}", file=sys.stderr)
                return 2
            files = inputs(target, args.corpus)
            if not files:
                lines.append(f"{target:<13} no inputs")
                continue
            start = time.monotonic()
            results = replay(target, binary, files, args, work)
            seconds = time.monotonic() - start
            worst = max(results)
            over = [r for r in results if r[0] > args.limit_mb * MB + r[2]]
            broken = [r for r in results if r[3] != 0]
            for rss, path, size, status, log in broken[:3]:
                what = "timed out" if status is None else f"exit status {status}"
                print(f"{target}: {path}: {what}\n{log}\n", file=sys.stderr)
            for rss, path, size, _, _ in sorted(over, reverse=True)[:5]:
                print(f"{target}: {path}: peak RSS {rss / MB:.1f} MB > {args.limit_mb} MB + {size} bytes", file=sys.stderr)
            verdict = "ok" if not over and not broken else f"FAILED ({len(over)} over the bound, {len(broken)} failed)"
            if over or broken:
                failed.append(target)
            lines.append(f"{target:<13} {len(results):6} inputs  peak RSS {min(results)[0] / MB:6.1f}..{worst[0] / MB:6.1f} MB"
                         f"  max at {worst[1]} ({worst[2]} bytes)  {seconds:5.0f} s  {verdict}")
            print(lines[-1], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print("\n".join(lines))
    if failed:
        print(f"peak RSS bound ({args.limit_mb} MB + input size) or replay failed in: {' '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
