#!/usr/bin/env python3
"""Serving benchmark: N concurrent streaming clients against `bitnet serve`.

For each --parallel value it starts `bitnet serve --parallel P` on a free
loopback port, sends one streamed completion per client at once (prompts of
--prompt-min..--prompt-max token ids, --tokens generated each), and reports
aggregate generated tokens per second, time to first token and inter-token
latency (p50/p99), and errors. Every configuration runs in the same sitting;
the last lines give the aggregate ratio of each against the first.

  tools/bench_serve.py --bitnet .build/release/bitnet -m /tmp/2b4t.gguf \
      --clients 8 --parallel 1,8 --tokens 256 --ctx 8192 -t 2 --rounds 3

Each report also says where the wall time went: the server's own step
histograms (/metrics) give the steps, their mean time and rows, and the share
of the wall they took (the rest is sampling, streaming and the clients, which
share the cores).

Python standard library only; the server listens on 127.0.0.1 and is stopped
at the end of each configuration. Bounded: one request per client, and every
read times out after --timeout seconds.
"""
import argparse
import http.client
import json
import random
import statistics
import subprocess
import sys
import threading
import time


def percentile(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))]


def one_client(port, prompt, tokens, timeout, out):
    """One streamed completion; appends a dict of timings (or an error) to out."""
    body = json.dumps({"prompt": prompt, "max_tokens": tokens, "stream": True, "temperature": 0,
                       "stream_options": {"include_usage": True}})
    record = {"chunks": [], "error": None, "tokens": 0}
    start = time.monotonic()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            record["error"] = f"HTTP {resp.status}: {resp.read()[:200]!r}"
        else:
            for raw in resp:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    break
                event = json.loads(data)
                if "error" in event:
                    record["error"] = str(event["error"])
                    break
                if event.get("usage"):
                    record["tokens"] = event["usage"]["completion_tokens"]
                elif event.get("choices") and event["choices"][0].get("text"):
                    record["chunks"].append(time.monotonic())
        conn.close()
    except Exception as e:  # a failed request is counted, not fatal
        record["error"] = repr(e)
    record["start"] = start
    record["end"] = time.monotonic()
    out.append(record)


def step_totals(port, timeout):
    """Sums of the server's per-step histograms (/metrics, Prometheus text): steps, their
    seconds and rows; None when the server does not export them."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode("utf-8", "replace")
        conn.close()
    except Exception:
        return None
    values = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("bitnet_step_seconds_count", "bitnet_step_seconds_sum",
                                            "bitnet_step_rows_sum"):
            values[parts[0]] = float(parts[1])
    if len(values) < 3:
        return None
    return {"count": int(values["bitnet_step_seconds_count"]), "seconds": values["bitnet_step_seconds_sum"],
            "rows": values["bitnet_step_rows_sum"]}


def run_config(args, parallel, prompts):
    cmd = [args.bitnet, "serve", "-m", args.model, "--port", "0", "--parallel", str(parallel),
           "--ctx", str(args.ctx), "-t", str(args.threads), "--max-queue", str(args.clients),
           "--step-tokens", str(args.step_tokens)] + args.extra
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline()
        if "listening on" not in line:
            raise SystemExit(f"server did not start: {line!r}")
        port = int(line.split("http://127.0.0.1:")[1].split()[0].rstrip("/"))
        # warm-up: pages and pool threads
        one_client(port, prompts[0][:8], 4, args.timeout, [])
        results = []
        threads = [threading.Thread(target=one_client, args=(port, p, args.tokens, args.timeout, results))
                   for p in prompts]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        steps = step_totals(port, args.timeout)
    finally:
        server.terminate()
        server.wait(timeout=30)
    errors = [r["error"] for r in results if r["error"]]
    generated = sum(r["tokens"] for r in results if not r["error"])
    ttft = [r["chunks"][0] - r["start"] for r in results if r["chunks"]]
    itl = [b - a for r in results for a, b in zip(r["chunks"], r["chunks"][1:])]
    report = {"parallel": parallel, "clients": len(prompts), "errors": len(errors),
              "generated_tokens": generated, "wall_s": round(wall, 3),
              "aggregate_tok_s": round(generated / wall, 2),
              "ttft_p50_s": round(percentile(ttft, 50), 4), "ttft_p99_s": round(percentile(ttft, 99), 4),
              "itl_p50_ms": round(1000 * percentile(itl, 50), 2), "itl_p99_ms": round(1000 * percentile(itl, 99), 2)}
    report["itl_p99_over_p50"] = round(report["itl_p99_ms"] / report["itl_p50_ms"], 2) if itl else None
    if steps:
        # where the wall time went: the model's steps (the warm-up request included) against the rest
        # (sampling, streaming, the clients themselves on the same cores)
        report.update({"steps": steps["count"], "step_s": round(steps["seconds"], 3),
                       "step_share_of_wall": round(steps["seconds"] / wall, 3),
                       "mean_step_ms": round(1000 * steps["seconds"] / max(1, steps["count"]), 2),
                       "mean_step_rows": round(steps["rows"] / max(1, steps["count"]), 2)})
    if errors:
        report["first_error"] = errors[0]
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bitnet", default=".build/release/bitnet")
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--parallel", default="1,8", help="comma-separated slot counts, run in this order")
    ap.add_argument("--tokens", type=int, default=256, help="generated tokens per request")
    ap.add_argument("--prompt-min", type=int, default=16)
    ap.add_argument("--prompt-max", type=int, default=400)
    ap.add_argument("--ctx", type=int, default=8192, help="total KV positions (split across slots)")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--step-tokens", type=int, default=64)
    ap.add_argument("--vocab-limit", type=int, default=32000, help="prompt ids are drawn below this")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the --parallel list this many times, alternating, so every configuration "
                         "sees the host's slow and fast minutes alike; ratios are per round, then the median")
    ap.add_argument("extra", nargs="*", help="more `bitnet serve` arguments (after --)")
    args = ap.parse_args()
    if args.clients < 1 or args.clients > 256:
        raise SystemExit("--clients must be in 1...256")
    rng = random.Random(args.seed)
    prompts = [[rng.randrange(10, args.vocab_limit) for _ in range(rng.randint(args.prompt_min, args.prompt_max))]
               for _ in range(args.clients)]
    if args.rounds < 1 or args.rounds > 20:
        raise SystemExit("--rounds must be in 1...20")
    configs = [int(x) for x in args.parallel.split(",")]
    rounds = []
    for i in range(args.rounds):
        reports = []
        for p in configs:
            r = run_config(args, p, prompts)
            r["round"] = i + 1
            print(json.dumps(r), flush=True)
            reports.append(r)
        rounds.append(reports)
    errors = any(r["errors"] for reports in rounds for r in reports)
    for j, p in enumerate(configs[1:], start=1):
        ratios = [reports[j]["aggregate_tok_s"] / reports[0]["aggregate_tok_s"] for reports in rounds]
        for reports, ratio in zip(rounds, ratios):
            r, base = reports[j], reports[0]
            print(f"round {r['round']}: parallel {p}: aggregate {r['aggregate_tok_s']} tok/s = {ratio:.2f}x "
                  f"parallel {configs[0]} ({base['aggregate_tok_s']} tok/s); ITL p99/p50 {r['itl_p99_over_p50']}; "
                  f"errors {r['errors']}")
        if len(ratios) > 1:
            print(f"parallel {p} over parallel {configs[0]}: median {statistics.median(ratios):.2f}x "
                  f"(range {min(ratios):.2f}-{max(ratios):.2f}x, {len(ratios)} rounds)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
