"""Shared by the server's Python checks (test_openai_client.py, load_test.py,
scale_test.py): start a bitnet-server on 127.0.0.1 with a free port, wait for its
"listening on" line, read its RSS, and always stop it (SIGTERM, then SIGKILL)."""

import atexit
import os
import re
import signal
import subprocess
import sys
import threading
import time

_children = []


def _kill_all():
    for p in _children:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


atexit.register(_kill_all)


def _on_signal(signum, _frame):
    _kill_all()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


class Server:
    """A bitnet-server child process; `port`, `url`, `rss_mb()`, `stop()`."""

    def __init__(self, binary, model, args=(), port=0, log_path=None, timeout=120):
        cmd = [binary, "-m", model, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *args]
        self.log = open(log_path, "w") if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        _children.append(self.proc)
        found = {}

        def read():
            for line in self.proc.stdout:
                m = re.search(r"listening on http://[^:]+:(\d+)", line)
                if m and "port" not in found:
                    found["port"] = int(m.group(1))
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.time() + timeout
        while "port" not in found:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bitnet-server exited with {self.proc.returncode} before listening: {cmd}")
            if time.time() > deadline:
                raise RuntimeError("bitnet-server did not start listening in time")
            time.sleep(0.05)
        self.port = found["port"]
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.proc.pid

    def rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def kill(self):
        """SIGKILL: a replica dying."""
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def metric(text, name, labels=None):
    """The sum of a Prometheus metric's samples in `text` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        if labels and not all(f'{k}="{v}"' in (m.group(2) or "") for k, v in labels.items()):
            continue
        total += float(m.group(3))
    return total


def default_binary(root):
    return os.environ.get("BITNET_SERVER", os.path.join(root, "Server/.build/debug/bitnet-server"))
