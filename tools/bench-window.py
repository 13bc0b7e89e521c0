# SPDX-License-Identifier: MIT
#
# The window's responsiveness, measured (a benchmark, not a test): run by tools/bench-window.sh on a
# private desktop. The real m3searchd indexes a folder with the model given; the window runs with
# M3SEARCH_TRACE=1, which prints for every list update the time from the keystroke's change of the
# entry to the first frame drawn after the results arrived, and at exit the longest gap between two
# main-loop iterations (a 1 ms timer's lateness). Queries are typed character by character by
# xdotool at 120 ms per key, once with the service idle and once while it indexes new files.
import json
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
daemon_log = open(os.path.join(tmp, "daemon.log"), "w")
daemon = subprocess.Popen([os.path.join(BUILD, "app", "m3searchd"), "--model", model, "--index",
                           os.path.join(tmp, "index")], stderr=daemon_log, env=dict(os.environ, M3SEARCHD_TRACE="1"))
SUMMARY = os.environ.get("M3_BENCH_SUMMARY")  # a file for the medians (JSON), read by bench-window.sh
summary = {}
bus = Gio.bus_get_sync(Gio.BusType.SESSION)


def status():
    return bus.call_sync("org.m3search.Indexer", "/org/m3search/Indexer", "org.m3search.Indexer1", "Status", None,
                         GLib.VariantType("(a{sv})"), Gio.DBusCallFlags.NONE, 60000, None).unpack()[0]


def med(values):
    return statistics.median(values) if values else float("nan")


def measure(label, queries):
    daemon_log.flush()
    daemon_from = os.path.getsize(daemon_log.name)
    log = os.path.join(tmp, label + ".log")
    with open(log, "w") as err:
        # M3_BENCH_WRAP: a command put before the window's (e.g. "perf record -o FILE --"), to profile it.
        wrap = os.environ.get("M3_BENCH_WRAP", "").replace("LABEL", label.replace(" ", "-")).split()
        # M3_BENCH_NO_A11Y=1: the window without its accessibility bridge (what that costs).
        no_a11y = os.environ.get("M3_BENCH_NO_A11Y") == "1"
        # M3_BENCH_LOGS=DIR: keep the window's trace there, every frame and gap over 16 ms in it (for a look).
        logs = os.environ.get("M3_BENCH_LOGS")
        # M3_BENCH_TRACE=3 (with M3_BENCH_LOGS): every frame's start and end too, for tools/frame-who.py.
        trace = os.environ.get("M3_BENCH_TRACE") or ("2" if logs else "1")
        extra = {"GTK_A11Y": "none"} if no_a11y else {}
        win = subprocess.Popen(wrap + [os.path.join(BUILD, "ui", "m3search")], stderr=err,
                               env=dict(os.environ, M3SEARCH_TRACE=trace, **extra))
        if no_a11y:
            time.sleep(4)
        else:
            try:
                a11y.app()
            except AssertionError:
                # Say why: the window's own words (and whether it is still running) beat a timeout.
                err.flush()
                sys.stderr.write(f"the window (exit status {win.poll()}) said:\n{open(log).read()[-3000:]}\n")
                raise
        time.sleep(1)
        focus_window()
        for q in queries:
            key("ctrl+a", "BackSpace")
            time.sleep(0.5)
            type_text(q, 120)
            time.sleep(1.0)
        stop(win)
    text = open(log).read()
    if logs:
        with open(os.path.join(logs, label.replace(" ", "-") + ".log"), "w") as f:
            f.write(text)
    with open(daemon_log.name) as f:
        f.seek(daemon_from)
        served = re.findall(r"encoding ([0-9.]+) ms, index search ([0-9.]+) ms, results ([0-9.]+) ms", f.read())
    num = lambda pattern: [float(x) for x in re.findall(pattern, text)]  # noqa: E731
    lat = sorted(num(r"keystroke→list ([0-9.]+) ms"))
    reply, update = num(r"reply after ([0-9.]+) ms"), num(r"list updated in ([0-9.]+) ms")
    drawn, gap = num(r"drawn ([0-9.]+) ms later"), num(r"longest main-loop gap so far ([0-9.]+) ms")  # noqa
    frames = re.findall(r"that frame's layout ([0-9.]+) ms, drawing ([0-9.]+) ms\)", text)
    layout, paint = [float(a) for a, _ in frames], [float(b) for _, b in frames]
    end = re.findall(r"longest main-loop gap so far ([0-9.]+) ms; longest frame so far ([0-9.]+) ms \(layout ([0-9.]+) ms, drawing "
                    r"([0-9.]+) ms\), ([0-9]+) frames over 16 ms; longest gap without a frame so far ([0-9.]+) ms; most main-thread CPU in one gap so far ([0-9.]+) ms", text)
    enc, srch, res = ([float(t[i]) for t in served] for i in range(3))
    daemon_ms = med([a + b + c for a, b, c in zip(enc, srch, res)])
    s = {"latency": med(lat), "reply": med(reply), "served": daemon_ms, "dbus": med(reply) - daemon_ms, "results": med(res),
         "update": med(update), "drawn": med(drawn)}
    summary[label] = s
    print(f"{label}: {len(lat)} list updates; keystroke→list median {s['latency']:.1f} ms, "
          f"p95 {lat[int(0.95 * (len(lat) - 1))]:.1f} ms, max {lat[-1]:.1f} ms", flush=True)
    print(f"  split (medians): service {daemon_ms:.1f} ms (encoding {med(enc):.1f}, index search {med(srch):.1f}, "
          f"results {med(res):.1f}) + D-Bus and the window's wait {s['dbus']:.1f} ms = reply {s['reply']:.1f} ms; "
          f"list update {s['update']:.1f} ms; first frame after it {s['drawn']:.1f} ms "
          f"(its layout {med(layout):.1f} ms, drawing {med(paint):.1f} ms)", flush=True)
    if end:
        g, f_, fl, fp, n16, out, cpu = end[-1]
        print(f"  main loop: longest gap {g} ms; longest frame {f_} ms (layout {fl} ms, drawing {fp} ms), "
              f"{n16} frames over 16 ms; longest gap without a frame {out} ms; the most CPU the window's main thread "
              f"used within one gap {cpu} ms (the rest of a gap: waiting for the CPU on a loaded machine)", flush=True)
    steady = re.findall(r"without page switches so far: longest gap ([0-9.]+) ms, longest frame ([0-9.]+) ms, ([0-9]+) frames "
                        r"over 16 ms", text)
    if steady:
        g, f_, n16 = steady[-1]
        print(f"  main loop without the frames that switch the page (status page <-> results, all drawn anew): "
              f"longest gap {g} ms, longest frame {f_} ms, {n16} frames over 16 ms", flush=True)
    splice, select = num(r"\(splice ([0-9.]+) ms"), num(r"selection and preview ([0-9.]+) ms;")
    bind, preview = num(r"rows bound in ([0-9.]+) ms"), num(r"preview filled in ([0-9.]+) ms\)")
    nbound = num(r"ms \(([0-9]+) rows\)")
    print(f"  list update (medians): model splice {med(splice):.1f} ms, selection {med(select):.1f} ms; within them "
          f"binding {med(nbound):.0f} rows {med(bind):.1f} ms, filling the preview {med(preview):.1f} ms", flush=True)



def typing_while_indexing():
    # New files to index, then type while the service works on them.
    for i in range(60, 260):
        with open(os.path.join(docs, f"doc{i:03d}.txt"), "w") as f:
            f.write(" ".join(words[(i * 5 + k) % len(words)] for k in range(400)) + "\n")
    a11y.wait("indexing to start", lambda: status()["state"] in ("crawling", "indexing"), 60)
    measure("while indexing", ["Steuererklärung Finanzamt", "garden tomatoes honey"])
    s = status()
    print(f"(the service was {s['state']}, {s['files-pending']} files pending, at the end)", flush=True)


try:
    a11y.wait("the service to index", lambda: status()["files-indexed"] >= 60 and status()["files-pending"] == 0, 600)
    measure("idle service", ["Steuererklärung Finanzamt", "tax office receipts", "세금 영수증"])
    if not os.environ.get("M3_BENCH_IDLE_ONLY"):  # M3_BENCH_IDLE_ONLY=1: the idle part alone (quick comparisons)
        typing_while_indexing()
    if SUMMARY:
        with open(SUMMARY, "w") as f:
            json.dump(summary, f)
finally:
    daemon.terminate()
    daemon.wait(timeout=60)
