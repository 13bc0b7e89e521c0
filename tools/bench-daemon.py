#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# The indexer service's figures (issue 9), in one run on a private session bus:
#   - search latency over D-Bus when idle and while the service indexes (goal: within 1.5x);
#   - time from a file saved to it being searchable (p50/p99, default quiet period of 2 s);
#   - resident memory idle (after the index encoder was freed) and its peak while indexing;
#   - indexing tokens/s (the service's Status) against `m3 bench` on the same backend and threads.
# usage: tools/bench-daemon.py MODEL [KB]   (run by tools/bench-daemon.sh, which finds the model)
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from gi.repository import Gio, GLib

MODEL = sys.argv[1]
KB = int(sys.argv[2]) if len(sys.argv) > 2 else 48
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
M3 = os.path.join(ROOT, "build", "app", "m3")
DAEMON = os.path.join(ROOT, "build", "app", "m3searchd")
tmp = tempfile.mkdtemp(prefix="m3bench-")
docs = os.path.join(tmp, "docs")
os.makedirs(docs)
os.environ.update(HOME=tmp, XDG_DATA_HOME=os.path.join(tmp, "data"), XDG_CONFIG_HOME=os.path.join(tmp, "config"),
                  GSETTINGS_BACKEND="memory", GSETTINGS_SCHEMA_DIR=os.path.join(ROOT, "build", "packaging"),
                  M3SEARCHD_IDLE_FREE_S="5")

licences = "".join(open(os.path.join("/usr/share/common-licenses", f), errors="replace").read()
                   for f in sorted(os.listdir("/usr/share/common-licenses"))
                   if os.path.isfile(os.path.join("/usr/share/common-licenses", f)))


def corpus(folder, kb, tag):
    os.makedirs(folder, exist_ok=True)
    n = 0
    for i in range(0, kb * 1024, 6000):
        with open(os.path.join(folder, f"{tag}{n:04d}.txt"), "w") as f:
            f.write(licences[i % (len(licences) - 6000):][:6000])
        n += 1


def rss(pid, field="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return 0.0


bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)


def call(method, args=None, reply=None):
    r = bus.call_sync("org.m3search.Indexer", "/org/m3search/Indexer", "org.m3search.Indexer1", method, args,
                      GLib.VariantType(reply) if reply else None, Gio.DBusCallFlags.NO_AUTO_START, 600000, None)
    return r.unpack() if r else None


def status():
    return call("Status", None, "(a{sv})")[0]


def search(q):
    return call("Search", GLib.Variant("(sa{sv})", (q, {"limit": GLib.Variant("u", 10)})), "(aa{sv})")[0]


def timed_searches(n):
    queries = ["software licence", "Steuererklärung", "warranty of merchantability", "redistribution of source",
               "신고 편지", "permission notice", "derivative works", "patent grant"]
    out = []
    for i in range(n):
        t = time.perf_counter()
        search(queries[i % len(queries)] + f" {i}")
        out.append((time.perf_counter() - t) * 1000)
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


corpus(docs, KB, "a")
threads = os.cpu_count()
d = subprocess.Popen([DAEMON, "--model", MODEL, "--index", os.path.join(tmp, "idx"), "--folder", docs])
while True:
    try:
        status()
        break
    except GLib.Error:
        time.sleep(0.1)
peak_tps = []
t0 = time.monotonic()
while True:
    s = status()
    if s["state"] == "indexing" and s["tokens-per-second"] > 0:
        peak_tps.append(s["tokens-per-second"])
    if s["state"] == "idle" and s["files-indexed"] > 0 and s["files-pending"] == 0:
        break
    time.sleep(0.5)
index_s = time.monotonic() - t0
index_hwm = rss(d.pid, "VmHWM")
tokens = status()["tokens"]
search(" warm up")
idle_lat = timed_searches(30)
time.sleep(7)  # the index encoder is freed after 5 s idle (M3SEARCHD_IDLE_FREE_S)
idle_rss = rss(d.pid)

# Searches while indexing a second corpus.
corpus(os.path.join(docs, "more"), KB, "b")
while status()["state"] != "indexing":
    time.sleep(0.05)
busy_lat = timed_searches(30)
busy_state = status()["state"]
busy_rss = rss(d.pid)
while not (status()["state"] == "idle" and status()["files-pending"] == 0):
    time.sleep(0.5)

# Saved → searchable.
save_lat = []
for i in range(10):
    word = f"zqxj{i}wvk"
    path = os.path.join(docs, f"saved{i}.txt")
    t = time.perf_counter()
    with open(path, "w") as f:
        f.write(f"Notiz {word}: ein neuer Gedanke, gerade gespeichert.\n")
    while not any(r["path"] == path for r in search(word)):
        time.sleep(0.02)
    save_lat.append((time.perf_counter() - t) * 1000)
d.terminate()
d.wait()

bench = subprocess.run([M3, "bench", "--backend", "cpu", "--threads", str(threads), "--model", MODEL, "--shapes",
                        "8x512", "--seconds", "20", "--json"], capture_output=True, text=True)
bench_tps = json.loads(bench.stdout.splitlines()[0])["tokens_per_s"] if bench.returncode == 0 else float("nan")
summary = {
    "machine": f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
    "model": MODEL,
    "corpus_kb": KB,
    "search_ms_idle": {"p50": pct(idle_lat, 50), "p99": pct(idle_lat, 99)},
    "search_ms_indexing": {"p50": pct(busy_lat, 50), "p99": pct(busy_lat, 99), "state": busy_state},
    "search_ratio_p50": pct(busy_lat, 50) / pct(idle_lat, 50),
    "saved_to_searchable_ms": {"p50": pct(save_lat, 50), "p99": pct(save_lat, 99)},
    "rss_mib": {"idle": idle_rss, "indexing": busy_rss, "peak": index_hwm},
    "index_tokens_per_s": tokens / index_s,
    "status_tokens_per_s_max": max(peak_tps) if peak_tps else 0,
    "bench_tokens_per_s_8x512": bench_tps,
}
print(json.dumps(summary, indent=1))
