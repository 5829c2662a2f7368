#!/usr/bin/env python3
"""Bounded loopback load test of bitnet-server (stdlib only).

    python tools/load_test.py [--duration S] [--warmup S] [--clients N] [--server PATH]

1. Load: N clients (half streaming), each on ONE keep-alive connection, send short
   completions back to back for `warmup` + `duration` seconds. Reported: requests,
   errors, p50/p99 latency, and the server's RSS (VmRSS) after the warm-up (KV pages
   and buffers are touched lazily, so that is the baseline) and at the end. Asserted:
   0 errors, RSS end <= RSS after warm-up + `--rss-slack` MB, and no connection per
   request: the server's own count of accepted connections
   (bitnet_http_connections_total) grew by at most clients + a few during the load.
2. Slow loris: the median time of a normal request (fresh connection) with no other
   traffic, then while 64 connections each trickle a partial request header a byte at
   a time; asserted: the median grows by at most `--loris-slack-ms` (100 ms).
The server runs on 127.0.0.1 with a free port and is stopped at the end whatever happens."""

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in tools/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_harness  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPTS = ["KING HENRY.\nNow, lords, ", "ROMEO.\n", "Enter a MESSENGER.\n\nMESSENGER.\nMy lord, the ", "HAMLET.\nTo be"]


def completion_body(i, stream, max_tokens):
    return json.dumps({"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": max_tokens, "temperature": 0.8,
                       "seed": i, "stream": stream}).encode()


def one_request(conn, body, stream):
    """One completion on `conn`; raises on anything but a complete 200 answer."""
    conn.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"status {r.status}: {data[:200]!r}")
    if stream:
        if not data.rstrip().endswith(b"data: [DONE]"):
            raise RuntimeError(f"stream did not end with [DONE]: {data[-200:]!r}")
    else:
        json.loads(data)["choices"][0]["text"]
    if r.getheader("Connection", "").lower() == "close":
        raise RuntimeError("the server closed a keep-alive connection")


class Client(threading.Thread):
    def __init__(self, index, port, stop_at, max_tokens, stats):
        super().__init__(daemon=True)
        self.index, self.port, self.stop_at, self.max_tokens, self.stats = index, port, stop_at, max_tokens, stats
        self.stream = index % 2 == 1
        self.connections = 0

    def connect(self):
        self.connections += 1
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def run(self):
        conn = self.connect()
        n = 0
        while time.time() < self.stop_at:
            n += 1
            start = time.time()
            try:
                one_request(conn, completion_body(self.index * 100000 + n, self.stream, self.max_tokens), self.stream)
                self.stats.record(start, time.time() - start, None)
            except Exception as e:  # noqa: BLE001 — every failure counts as an error
                self.stats.record(start, time.time() - start, f"client {self.index}: {e!r}")
                conn.close()
                conn = self.connect()
        conn.close()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.samples = []  # (start, latency, error)

    def record(self, start, latency, error):
        with self.lock:
            self.samples.append((start, latency, error))

    def since(self, t):
        with self.lock:
            return [s for s in self.samples if s[0] >= t]


def scrape(port, name):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    if not re.search(rf"^{name}[ {{]", text, re.M):
        raise RuntimeError(f"the server's /metrics has no {name} (an older bitnet-server?)")
    return serve_harness.metric(text, name)


def timed_request(port, i):
    start = time.time()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    one_request(conn, completion_body(i, False, 4), False)
    conn.close()
    return time.time() - start


def median_latency(port, n, seed):
    return statistics.median(timed_request(port, seed + i) for i in range(n))


def slow_loris(port, count, stop):
    """`count` connections that each send a request line and then header bytes one at a
    time, every 0.5 s, never finishing; reopened when the server closes them."""
    partial = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10000
    socks = [None] * count
    sent = [0] * count
    opened = 0
    while not stop.is_set():
        for i in range(count):
            try:
                if socks[i] is None:
                    socks[i] = socket.create_connection(("127.0.0.1", port), timeout=5)
                    socks[i].setblocking(False)
                    sent[i] = 0
                    opened += 1
                chunk = partial[sent[i]:sent[i] + 1] if sent[i] >= 40 else partial[:40]
                socks[i].send(chunk)
                sent[i] += len(chunk)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                if socks[i] is not None:
                    socks[i].close()
                socks[i] = None
        stop.wait(0.5)
    for s in socks:
        if s is not None:
            s.close()
    return opened


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default=serve_harness.default_binary(ROOT))
    ap.add_argument("--model", default=os.path.join(ROOT, "Sources/BitNetCLI/Resources/bitnet-shakespeare-i2_s.gguf"))
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--duration", type=float, default=12, help="seconds of measured load after the warm-up")
    ap.add_argument("--max-tokens", type=int, default=8)
    ap.add_argument("--rss-slack", type=float, default=50, help="MB the RSS may grow after the warm-up")
    ap.add_argument("--loris", type=int, default=64)
    ap.add_argument("--loris-samples", type=int, default=7)
    ap.add_argument("--loris-slack-ms", type=float, default=100)
    args = ap.parse_args()

    # every client admitted (4 slots + a queue of the rest), each slot 256 positions
    server = serve_harness.Server(args.server, args.model, ["--parallel", "4", "--max-queue", str(args.clients),
                                                            "--ctx", "1024", "--threads", "2"])
    failures = []
    try:
        stats = Stats()
        t0 = time.time()
        connections_before = scrape(server.port, "bitnet_http_connections_total")
        stop_at = t0 + args.warmup + args.duration
        clients = [Client(i, server.port, stop_at, args.max_tokens, stats) for i in range(args.clients)]
        for c in clients:
            c.start()
        time.sleep(args.warmup)
        rss_warm = server.rss_mb()
        measured_from = time.time()
        peak = rss_warm
        while time.time() < stop_at:
            time.sleep(1)
            peak = max(peak, server.rss_mb())
        for c in clients:
            c.join(timeout=120)
        rss_end = server.rss_mb()
        connections = scrape(server.port, "bitnet_http_connections_total") - connections_before - 1  # this scrape
        client_connections = sum(c.connections for c in clients)
        every = stats.since(t0)
        measured = stats.since(measured_from)
        errors = [s[2] for s in every if s[2]]
        latencies = sorted(s[1] for s in measured if not s[2])
        if not latencies:
            failures.append("no request completed in the measured window")
            latencies = [float("nan")]
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        print(f"load: {args.clients} clients ({args.clients // 2} streaming), {args.warmup:.0f} s warm-up + "
              f"{args.duration:.0f} s: {len(every)} requests ({len(measured)} measured, "
              f"{len(measured) / args.duration:.1f}/s), {len(errors)} errors, p50 {p50:.0f} ms, p99 {p99:.0f} ms")
        print(f"      connections: {connections:.0f} accepted by the server, {client_connections} opened by clients "
              f"for {len(every)} requests")
        print(f"      RSS: {rss_warm:.1f} MB after warm-up, {rss_end:.1f} MB at the end (peak {peak:.1f} MB), "
              f"{rss_end - rss_warm:+.1f} MB")
        for e in errors[:5]:
            print("      error:", e)
        if errors:
            failures.append(f"{len(errors)} errors")
        if any(c.is_alive() for c in clients):
            failures.append("a client did not finish")
        if rss_end > rss_warm + args.rss_slack:
            failures.append(f"RSS grew {rss_end - rss_warm:.1f} MB (> {args.rss_slack} MB)")
        if connections > args.clients + 4 or client_connections > args.clients + len(errors):
            failures.append(f"{connections:.0f} connections for {args.clients} keep-alive clients")
        if len(every) < 2 * args.clients:
            failures.append(f"only {len(every)} requests: connections were not reused")

        # slow loris: a baseline, then the same requests while 64 connections trickle headers
        timed_request(server.port, 0)
        baseline = median_latency(server.port, args.loris_samples, 1000)
        stop = threading.Event()
        result = {}
        loris = threading.Thread(target=lambda: result.setdefault("opened", slow_loris(server.port, args.loris, stop)),
                                 daemon=True)
        loris.start()
        time.sleep(1.5)  # all 64 open and trickling
        open_now = scrape(server.port, "bitnet_http_connections_open")
        with_loris = median_latency(server.port, args.loris_samples, 2000)
        stop.set()
        loris.join(timeout=30)
        after = median_latency(server.port, 3, 3000)
        delay = (with_loris - baseline) * 1000
        print(f"slow loris: {args.loris} connections trickling headers ({open_now:.0f} open at the server): median "
              f"request {baseline * 1000:.0f} ms alone, {with_loris * 1000:.0f} ms with them ({delay:+.0f} ms), "
              f"{after * 1000:.0f} ms after")
        if open_now < args.loris:
            failures.append(f"only {open_now:.0f} slow connections were open at the server")
        if delay > args.loris_slack_ms:
            failures.append(f"slow loris delayed a request by {delay:.0f} ms (> {args.loris_slack_ms:.0f})")
        if server.proc.poll() is not None:
            failures.append("the server died")
    finally:
        rc = server.stop()
    if rc != 0:
        failures.append(f"the server exited with {rc} on SIGTERM")
    if failures:
        print("load test FAILED: " + "; ".join(failures))
        sys.exit(1)
    print("load test passed")


if __name__ == "__main__":
    main()
