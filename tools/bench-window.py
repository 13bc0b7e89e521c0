# SPDX-License-Identifier: MIT
#
# The window's responsiveness, measured (a benchmark, not a test): run by tools/bench-window.sh on a
# private desktop. The real m3searchd indexes a folder with the model given; the window runs with
# M3SEARCH_TRACE=1, which prints for every list update the time from the keystroke's change of the
# entry to the first frame drawn after the results arrived, and at exit the longest gap between two
# main-loop iterations (a 1 ms timer's lateness). Queries are typed character by character by
# xdotool at 120 ms per key, once with the service idle and once while it indexes new files.
import os
import re
import statistics
import subprocess
import sys
import time

from gi.repository import Gio, GLib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "ui"))
import a11y  # noqa: E402
from harness import focus_window, key, m3search, stop, type_text  # noqa: E402

BUILD = os.environ["M3_BUILD"]
tmp = os.environ["M3_TEST_TMP"]
model = sys.argv[1]
docs = os.path.join(os.environ["HOME"], "Documents")
words = ("Steuererklärung Finanzamt Belege Quittungen Honig Bienen Vulkan Island Garten Tomaten compiler program "
         "sources chat canapé gato sofá 세금 영수증 편지").split()
for i in range(60):
    with open(os.path.join(docs, f"doc{i:03d}.txt"), "w") as f:
        f.write(" ".join(words[(i * 7 + k) % len(words)] for k in range(400)) + "\n")
settings = Gio.Settings.new("org.m3search.Search")
settings.set_strv("folders", [docs])
Gio.Settings.sync()
daemon = subprocess.Popen([os.path.join(BUILD, "app", "m3searchd"), "--model", model, "--index",
                           os.path.join(tmp, "index")])
bus = Gio.bus_get_sync(Gio.BusType.SESSION)


def status():
    return bus.call_sync("org.m3search.Indexer", "/org/m3search/Indexer", "org.m3search.Indexer1", "Status", None,
                         GLib.VariantType("(a{sv})"), Gio.DBusCallFlags.NONE, 60000, None).unpack()[0]


def measure(label, queries):
    log = os.path.join(tmp, label + ".log")
    with open(log, "w") as err:
        # M3_BENCH_WRAP: a command put before the window's (e.g. "perf record -o FILE --"), to profile it.
        wrap = os.environ.get("M3_BENCH_WRAP", "").replace("LABEL", label.replace(" ", "-")).split()
        win = subprocess.Popen(wrap + [os.path.join(BUILD, "ui", "m3search")], stderr=err,
                               env=dict(os.environ, M3SEARCH_TRACE="1"))
        a11y.app()
        time.sleep(1)
        focus_window()
        for q in queries:
            key("ctrl+a", "BackSpace")
            time.sleep(0.5)
            type_text(q, 120)
            time.sleep(1.0)
        stop(win)
    text = open(log).read()
    lat = [float(x) for x in re.findall(r"keystroke→list ([0-9.]+) ms", text)]
    reply = [float(x) for x in re.findall(r"reply after ([0-9.]+) ms", text)]
    update = [float(x) for x in re.findall(r"list updated in ([0-9.]+) ms", text)]
    drawn = [float(x) for x in re.findall(r"drawn ([0-9.]+) ms later", text)]
    gap = [float(x) for x in re.findall(r"longest main-loop gap so far ([0-9.]+) ms", text)]
    lat.sort()
    print(f"{label}: {len(lat)} list updates; keystroke→list median {statistics.median(lat):.1f} ms, "
          f"p95 {lat[int(0.95 * (len(lat) - 1))]:.1f} ms, max {lat[-1]:.1f} ms; of which the reply "
          f"median {statistics.median(reply):.1f} ms, list update median {statistics.median(update):.1f} ms, first "
          f"frame after it median {statistics.median(drawn):.1f} ms; longest main-loop gap {max(gap) if gap else -1:.1f} ms",
          flush=True)


try:
    a11y.wait("the service to index", lambda: status()["files-indexed"] >= 60 and status()["files-pending"] == 0, 600)
    measure("idle service", ["Steuererklärung Finanzamt", "tax office receipts", "세금 영수증"])
    if os.environ.get("M3_BENCH_IDLE_ONLY"):  # the idle part alone (quick comparisons)
        sys.exit(0)
    # New files to index, then type while the service works on them.
    for i in range(60, 260):
        with open(os.path.join(docs, f"doc{i:03d}.txt"), "w") as f:
            f.write(" ".join(words[(i * 5 + k) % len(words)] for k in range(400)) + "\n")
    a11y.wait("indexing to start", lambda: status()["state"] in ("crawling", "indexing"), 60)
    measure("while indexing", ["Steuererklärung Finanzamt", "garden tomatoes honey"])
    s = status()
    print(f"(the service was {s['state']}, {s['files-pending']} files pending, at the end)", flush=True)
finally:
    daemon.terminate()
    daemon.wait(timeout=60)
