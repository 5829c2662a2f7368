#!/usr/bin/env python3
"""Two bitnet-server replicas behind nginx (deploy/nginx.conf) on loopback; a bounded
mixed load through nginx with the official `openai` client; one replica killed
(SIGKILL) halfway. Run by `make test-scale` (which installs nginx and the venv):

    python tools/scale_test.py [--duration S] [--workers N] [--server PATH]

Reports requests sent/succeeded/failed, streamed and not, before and after the
kill. Asserts: 0 failed non-streamed requests (nginx retries them on the other
replica: proxy_next_upstream … non_idempotent), streams fail only if they were in
flight on the killed replica when it died, and the survivor kept answering (requests
succeeded after the kill, and it answers /health directly at the end).
The nginx config is deploy/nginx.conf with the replicas' and nginx's ports replaced
by free ones, wrapped in a minimal main config of a temporary prefix."""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in tools/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_harness  # noqa: E402

import openai  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_config(prefix, replica_ports, listen_port):
    with open(os.path.join(ROOT, "deploy/nginx.conf")) as f:
        site = f.read()
    servers = re.findall(r"server 127\.0\.0\.1:\d+", site)
    if len(servers) != 2 or "listen 8080;" not in site:
        raise RuntimeError("deploy/nginx.conf no longer has the 2 upstream servers and 'listen 8080;' this test edits")
    for old, port in zip(servers, replica_ports):
        site = site.replace(old, f"server 127.0.0.1:{port}", 1)
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{listen_port};")
    with open(os.path.join(prefix, "bitnet.conf"), "w") as f:
        f.write(site)
    main = f"""daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/bitnet.conf;
}}
"""
    path = os.path.join(prefix, "nginx.conf")
    with open(path, "w") as f:
        f.write(main)
    return path


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows = []  # (kind, start, end, ok, error)

    def add(self, *row):
        with self.lock:
            self.rows.append(row)


def worker(index, base_url, stop_at, tally):
    client = openai.OpenAI(base_url=base_url, api_key="none", max_retries=0, timeout=60)
    n = 0
    while time.time() < stop_at:
        n += 1
        stream = (index + n) % 2 == 0
        start = time.time()
        try:
            if stream:
                chunks = list(client.completions.create(model="m", prompt="ROMEO.\n", max_tokens=24, temperature=0.8,
                                                        seed=n, stream=True))
                finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
                if finishes not in (["length"], ["stop"]):
                    raise RuntimeError(f"stream ended without a finish_reason: {finishes}")
            else:
                r = client.completions.create(model="m", prompt="ROMEO.\n", max_tokens=24, temperature=0.8, seed=n)
                if r.choices[0].finish_reason not in ("length", "stop"):
                    raise RuntimeError(f"finish_reason {r.choices[0].finish_reason}")
            tally.add("stream" if stream else "plain", start, time.time(), True, None)
        except Exception as e:  # noqa: BLE001 — counted
            tally.add("stream" if stream else "plain", start, time.time(), False, repr(e)[:200])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default=serve_harness.default_binary(ROOT))
    ap.add_argument("--model", default=os.path.join(ROOT, "Sources/BitNetCLI/Resources/bitnet-shakespeare-i2_s.gguf"))
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--duration", type=float, default=40)
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args()

    prefix = tempfile.mkdtemp(prefix="bitnet-scale-")
    os.chmod(prefix, 0o755)
    replicas = []
    nginx = None
    failures = []
    try:
        # 1 thread each: 2 replicas share this machine's cores
        for i in range(2):
            replicas.append(serve_harness.Server(args.server, args.model,
                                                 ["--parallel", "4", "--max-queue", "16", "--ctx", "1024", "--threads", "1"],
                                                 log_path=os.path.join(prefix, f"replica{i}.log")))
        listen = free_port()
        conf = nginx_config(prefix, [r.port for r in replicas], listen)
        nginx = subprocess.Popen([args.nginx, "-p", prefix, "-c", conf], stdout=subprocess.DEVNULL,
                                 stderr=open(os.path.join(prefix, "nginx.stderr"), "w"))
        serve_harness._children.append(nginx)
        deadline = time.time() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{listen}/nginx-health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if nginx.poll() is not None or time.time() > deadline:
                with open(os.path.join(prefix, "nginx.stderr")) as f:
                    raise RuntimeError(f"nginx did not start: {f.read()}")
            time.sleep(0.1)

        tally = Tally()
        start = time.time()
        stop_at = start + args.duration
        threads = [threading.Thread(target=worker, args=(i, f"http://127.0.0.1:{listen}/v1", stop_at, tally), daemon=True)
                   for i in range(args.workers)]
        for t in threads:
            t.start()
        time.sleep(args.duration / 2)
        killed_at = time.time()
        replicas[0].kill()
        for t in threads:
            t.join(timeout=120)
        survivor_health = urllib.request.urlopen(replicas[1].url + "/health", timeout=5).status

        rows = tally.rows
        def count(kind=None, ok=None, when=None):
            return sum(1 for k, s, e, good, _ in rows
                       if (kind is None or k == kind) and (ok is None or good == ok)
                       and (when is None or (when == "before" and e < killed_at) or (when == "across" and s <= killed_at <= e)
                            or (when == "after" and s > killed_at)))
        print(f"scale: 2 replicas behind nginx, {args.workers} workers (half streaming), {args.duration:.0f} s, "
              f"replica 1 killed at {killed_at - start:.1f} s")
        for kind in ("plain", "stream"):
            print(f"  {kind:6}: sent {count(kind)}, succeeded {count(kind, True)}, failed {count(kind, False)} "
                  f"(in flight at the kill: {count(kind, when='across')}, of which failed {count(kind, False, 'across')}; "
                  f"started after: {count(kind, when='after')}, failed {count(kind, False, 'after')})")
        print(f"  total : sent {len(rows)}, succeeded {count(ok=True)}, failed {count(ok=False)}; "
              f"after the kill the survivor answered {count(ok=True, when='after')}; its /health: {survivor_health}")
        for _, s, _, good, err in rows:
            if not good:
                print(f"  failure at {s - start:.1f} s: {err}")
        if count("plain", False):
            failures.append(f"{count('plain', False)} non-streamed requests failed")
        if count("stream", False) != count("stream", False, "across"):
            failures.append("a stream failed that was not in flight when the replica died")
        if count(ok=True, when="after") < args.workers:
            failures.append("the survivor did not keep answering")
        if survivor_health != 200:
            failures.append("the survivor's /health")
        if count(when="before") < args.workers:
            failures.append("too few requests before the kill to mean anything")
    finally:
        if nginx is not None and nginx.poll() is None:
            nginx.terminate()
            nginx.wait(timeout=10)
        for r in replicas:
            r.stop()
        shutil.rmtree(prefix, ignore_errors=True)
    if failures:
        print("scale test FAILED: " + "; ".join(failures))
        sys.exit(1)
    print("scale test passed")


if __name__ == "__main__":
    main()
