#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# The indexer service as a user meets it: the real m3searchd on a private session bus (the test runs
# under dbus-run-session), a temporary HOME and XDG folders, settings in a keyfile, the tiny model,
# and a fake UPower (python3-dbusmock) on a private system bus. Files are created, changed, renamed,
# moved and deleted, and each change must show in Search within a deadline.
#
# usage: test-daemon.py BUILD_DIR DATA_DIR   (M3_TEST_REDUCED=1: fewer kills, for sanitizer builds)
import atexit
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

import dbusmock
from gi.repository import Gio, GLib

BUILD, DATA = sys.argv[1], sys.argv[2]
M3 = os.path.join(BUILD, "app", "m3")
DAEMON = os.path.join(BUILD, "app", "m3searchd")
MODEL = os.path.join(DATA, "m3-tiny")
REDUCED = os.environ.get("M3_TEST_REDUCED") == "1"
DEADLINE = 60 if REDUCED else 20  # seconds for a change to show

failures = 0
t0 = time.monotonic()


def ok(cond, what):
    global failures
    print(("ok" if cond else "FAIL") + f" [{time.monotonic() - t0:.0f}s]: {what}", flush=True)
    if not cond:
        failures += 1
    return cond


tmp = tempfile.mkdtemp(prefix="m3d-")
home = os.path.join(tmp, "home")
docs = os.path.join(home, "Documents")
docs2 = os.path.join(home, "Other")
index_dir = os.path.join(tmp, "index")
for d in (docs, docs2, os.path.join(docs, "node_modules"), os.path.join(docs, "sub")):
    os.makedirs(d)
env = dict(os.environ)
env.update(HOME=home, XDG_DATA_HOME=os.path.join(tmp, "data"), XDG_CONFIG_HOME=os.path.join(tmp, "config"),
           XDG_CACHE_HOME=os.path.join(tmp, "cache"), GSETTINGS_BACKEND="keyfile",
           GSETTINGS_SCHEMA_DIR=os.path.join(BUILD, "packaging"), M3SEARCHD_QUIET_MS="300",
           M3SEARCHD_COMMIT_MS="100", M3SEARCHD_RESCAN_S="2", M3SEARCHD_BATCH_TOKENS="600",
           # Idle-class indexing may not run at all while the rest of the test suite keeps both CPUs
           # busy: the normal class here, and the idle class checked once below.
           M3SEARCHD_PRIORITY="normal")
os.environ.update(env)  # Gio.Settings in this process writes the same keyfile


def write(path, text, mode="w"):
    with open(path, mode) as f:
        f.write(text)


SENT = {
    "tax": "Die Steuererklärung muss bis Ende Mai beim Finanzamt sein.",
    "korean": "세무서에서 소득세 신고에 관한 편지를 보냈습니다.",
    "cat": "Le chat dort sur le canapé toute la journée.",
    "gato": "El gato duerme en el sofá todo el día.",
    "compiler": "The compiler builds the program from its sources.",
}
for name, text in SENT.items():
    write(os.path.join(docs, name + ".txt"), (text + " ") * 3 + "\n")
write(os.path.join(docs, "node_modules", "dep.txt"), "Steuererklärung im Paket node_modules.\n")
write(os.path.join(docs, ".hidden.txt"), "Steuererklärung, versteckt.\n")
write(os.path.join(docs, "broken.txt"), "\x00\x01\x02 not text at all \x00\x00", "w")
write(os.path.join(docs2, "garden.txt"), "Tomatoes and beans grow in the garden in summer.\n")

settings = Gio.Settings.new("org.m3search.Search")
settings.set_strv("folders", [docs])
# The CPU backend: "auto" would probe Vulkan (lavapipe here), slow and noisy under the sanitizers.
settings.set_string("backend", "cpu")
Gio.Settings.sync()

# A fake UPower on a private system bus (its dbus-daemon forks away: stopped at exit, whatever happens).
dbusmock.DBusTestCase.start_system_bus()
atexit.register(lambda: dbusmock.DBusTestCase.stop_dbus(dbusmock.DBusTestCase.system_bus_pid))
env["DBUS_SYSTEM_BUS_ADDRESS"] = os.environ["DBUS_SYSTEM_BUS_ADDRESS"]
upower_proc, upower = dbusmock.DBusTestCase.spawn_server_template("upower", {"OnBattery": False},
                                                                   stdout=subprocess.DEVNULL)
system = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)


def set_battery(on):
    system.call_sync("org.freedesktop.UPower", "/org/freedesktop/UPower", "org.freedesktop.DBus.Mock",
                     "UpdateProperties", GLib.Variant("(sa{sv})", ("org.freedesktop.UPower",
                                                                   {"OnBattery": GLib.Variant("b", on)})),
                     None, Gio.DBusCallFlags.NONE, 5000, None)


bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)


def call(method, args=None, reply=None, timeout=30000):
    r = bus.call_sync("org.m3search.Indexer", "/org/m3search/Indexer", "org.m3search.Indexer1", method, args,
                      GLib.VariantType(reply) if reply else None, Gio.DBusCallFlags.NO_AUTO_START, timeout, None)
    return r.unpack() if r else None


def status():
    return call("Status", None, "(a{sv})")[0]


def search(q, **opts):
    o = {}
    for k, v in opts.items():
        o[k] = GLib.Variant({"limit": "u", "mode": "s", "folder": "s", "types": "as", "weights": "ad"}[k], v)
    return call("Search", GLib.Variant("(sa{sv})", (q, o)), "(aa{sv})")[0]


def paths(results):
    return [r["path"] for r in results]


def wait(cond, what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if cond():
                return ok(True, what)
        except GLib.Error:
            pass
        time.sleep(0.1)
    return ok(False, what + f" (not within {deadline} s)")


def idle():
    s = status()
    return s["state"] in ("idle", "paused") and s["files-pending"] == 0


daemon = None
# Whatever happens, no process of this test outlives it.
atexit.register(lambda: daemon is not None and daemon.poll() is None and daemon.kill())
atexit.register(lambda: upower_proc.poll() is None and upower_proc.terminate())


def start(*extra, extra_env=None):
    global daemon
    e = dict(env)
    e.update(extra_env or {})
    daemon = subprocess.Popen([DAEMON, "--model", MODEL, "--index", index_dir, *extra], env=e)
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        try:
            status()
            return True
        except GLib.Error:
            time.sleep(0.05)
    return ok(False, "m3searchd answers on the bus")


def stop(sig=signal.SIGTERM):
    daemon.send_signal(sig)
    rc = daemon.wait(timeout=60)
    return rc


def index_files(idx=index_dir):
    out = subprocess.run([M3, "status", "--index", idx, "--files", "--json"], capture_output=True, text=True, env=env)
    lines = out.stdout.strip().splitlines()[1:]
    return {j["path"]: j for j in map(json.loads, lines)}


# ---- priority ------------------------------------------------------------------------------------
# Without the test knob the indexing thread (and what it starts) is idle class for CPU and I/O.
start(extra_env={"M3SEARCHD_PRIORITY": ""})


def thread_policy(pid, name):
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            if open(f"/proc/{pid}/task/{tid}/comm").read().strip() == name:
                stat = open(f"/proc/{pid}/task/{tid}/stat").read()
                policy = int(stat[stat.rindex(")") + 2:].split()[38])  # field 41: policy
                io = subprocess.run(["ionice", "-p", tid], capture_output=True, text=True).stdout.strip()
                return policy, io
        except OSError:
            pass
    return None, None


wait(lambda: thread_policy(daemon.pid, "m3-indexer")[0] == 5, "the indexing thread has lowered its priority")
policy, io = thread_policy(daemon.pid, "m3-indexer")
ok(policy == 5 and io.startswith("idle"), f"the indexing thread runs at idle priority (policy {policy}: SCHED_IDLE "
   f"is 5; I/O: {io})")
policy, io = thread_policy(daemon.pid, "m3searchd")
ok(policy == 0, f"the main thread (searches, the bus) keeps the normal class (policy {policy})")
stop()
shutil.rmtree(index_dir, ignore_errors=True)

# ---- a model that cannot be used -----------------------------------------------------------------
# Search says why (the file and the problem), not that no model is set.
start("--model", os.path.join(tmp, "no-such-model"))
try:
    search("x")
    ok(False, "Search without a usable model fails")
except GLib.Error as e:
    ok("NotReady" in e.message and "no-such-model" in e.message,
       "Search with a model that cannot be used names it: " + e.message.split(":", 2)[-1].strip())
stop()

# ---- crawl ---------------------------------------------------------------------------------------
start()
wait(lambda: idle() and status()["files-indexed"] == 5, "crawl: the 5 text files indexed")
st = status()
ok(st["backend"] == "cpu" and st["model"] == MODEL and st["folders"] == [os.path.realpath(docs)],
   f"Status names backend, model, folders ({st['backend']}, {st['folders']})")
r = search("Steuererklärung Finanzamt")
ok(r and r[0]["path"].endswith("/tax.txt"), "Search: the tax letter first")
ok(r and r[0]["uri"].startswith("file://") and r[0]["content-type"] == "text/plain" and r[0]["mtime"] > 0,
   "a result has uri, content-type, mtime")
ok(r and any(r[0]["snippet"].encode()[a:b] == "Steuererklärung".encode() for a, b in r[0]["highlights"]),
   "highlights mark the query's word in the snippet")
ok(all(not p.endswith(("dep.txt", ".hidden.txt")) for p in paths(search("Steuererklärung", limit=50))),
   "excluded (node_modules) and hidden files are not indexed")
failed = dict(call("FailedFiles", None, "(a(ss))")[0])
ok(any(p.endswith("broken.txt") for p in failed), f"a broken file only fails itself, with a reason: {failed}")
ok(paths(search("gato", folder=docs2)) == [], "folder filter")
ok(len(search("gato", limit=2)) == 2, "limit")
try:
    search("x", mode="nonsense")
    ok(False, "a bad mode is refused")
except GLib.Error as e:
    ok("InvalidArgument" in e.message, "a bad mode is refused: " + e.message.split(":")[-1].strip())

# A burst of searches from one client, as a window sends while the user types: the newest is answered
# with its results; the older ones are answered too, with results or at once as superseded.
burst = {}


def burst_done(conn, res, i):
    try:
        burst[i] = ("ok", conn.call_finish(res).unpack()[0])
    except GLib.Error as e:
        burst[i] = ("error", e.message)


for i in range(12):
    bus.call("org.m3search.Indexer", "/org/m3search/Indexer", "org.m3search.Indexer1", "Search",
             GLib.Variant("(sa{sv})", ("Steuererklärung Finanzamt"[:6 + 2 * i], {})), GLib.VariantType("(aa{sv})"),
             Gio.DBusCallFlags.NO_AUTO_START, 30000, None, burst_done, i)
end = time.monotonic() + DEADLINE
while len(burst) < 12 and time.monotonic() < end:
    GLib.MainContext.default().iteration(False)
    time.sleep(0.005)
ok(len(burst) == 12 and burst[11][0] == "ok" and burst[11][1] and burst[11][1][0]["path"].endswith("/tax.txt"),
   "a burst of 12 searches: the newest answers with its results")
ok(all(r[0] == "ok" or "Superseded" in r[1] for r in burst.values()),
   f"the older ones: results or Superseded ({sum(r[0] != 'ok' for r in burst.values())} superseded)")

# ---- names that are not UTF-8, a FIFO -------------------------------------------------------------
# D-Bus strings must be UTF-8: such a path goes out in its display form, the exact one in "uri".
odd = os.path.join(docs, os.fsdecode(b"Lebensmittel-\xff.txt"))
write(odd, "Der Wochenmarkt verkauft frisches Gemüse und Obst.\n")
odd_broken = os.path.join(docs, os.fsdecode(b"kaputt-\xfe.txt"))
write(odd_broken, "\x00\x00 binary \x00")
wait(lambda: any(r.get("path", "").endswith("/Lebensmittel-\ufffd.txt") and
                 urllib.parse.unquote_to_bytes(urllib.parse.urlparse(r["uri"]).path) == os.fsencode(odd)
                 for r in search("Wochenmarkt Gemüse")),
     "a name that is not UTF-8: found, its path in display form, its uri exact")
wait(lambda: any(p.endswith("/kaputt-\ufffd.txt") for p, _ in call("FailedFiles", None, "(a(ss))")[0]),
     "FailedFiles lists a failed name that is not UTF-8 (display form)")
os.unlink(odd_broken)
os.unlink(odd)
fifo = os.path.join(docs2, "pipe")
os.mkfifo(fifo)
t = time.monotonic()
try:
    call("FindSimilar", GLib.Variant("(sa{sv})", (fifo, {})), "(aa{sv})", timeout=15000)
    ok(False, "FindSimilar on a FIFO fails")
except GLib.Error as e:
    ok(time.monotonic() - t < 10 and "not a regular file" in e.message,
       "FindSimilar on a FIFO: an error at once: " + e.message.split(":", 2)[-1].strip())
ok(search("Steuererklärung Finanzamt")[0]["path"].endswith("/tax.txt"), "Search still answers after it")
os.unlink(fifo)
# FindSimilar on a large file the index does not hold extracts it outside the search lock: another
# client's Search is answered meanwhile, not after it.
big = os.path.join(docs2, "big.txt")
rnd_big = random.Random(3)
big_words = " ".join(SENT.values()).split()
write(big, "\n".join(" ".join(rnd_big.choice(big_words) for _ in range(12)) + "." for _ in range(300000)))
order = []
bus.call("org.m3search.Indexer", "/org/m3search/Indexer", "org.m3search.Indexer1", "FindSimilar",
         GLib.Variant("(sa{sv})", (big, {})), GLib.VariantType("(aa{sv})"), Gio.DBusCallFlags.NO_AUTO_START, 120000,
         None, lambda c, res: order.append(("similar", time.monotonic() - t_sim)))
t_sim = time.monotonic()
end = time.monotonic() + 0.3
while time.monotonic() < end:
    GLib.MainContext.default().iteration(False)
    time.sleep(0.005)
other = Gio.DBusConnection.new_for_address_sync(
    Gio.dbus_address_get_for_bus_sync(Gio.BusType.SESSION, None),
    Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
r = other.call_sync("org.m3search.Indexer", "/org/m3search/Indexer", "org.m3search.Indexer1", "Search",
                    GLib.Variant("(sa{sv})", ("Steuererklärung Finanzamt", {})), GLib.VariantType("(aa{sv})"),
                    Gio.DBusCallFlags.NO_AUTO_START, 60000, None).unpack()[0]
order.append(("search", time.monotonic() - t_sim))
end = time.monotonic() + 120
while len(order) < 2 and time.monotonic() < end:
    GLib.MainContext.default().iteration(False)
    time.sleep(0.005)
times = dict(order)
ok(r and r[0]["path"].endswith("/tax.txt") and len(times) == 2 and times["similar"] - times["search"] > 0.25,
   f"a Search is answered while FindSimilar extracts a large file (seconds after FindSimilar was sent: {times})")
os.unlink(big)
try:
    call("Reindex", GLib.Variant("(s)", ("/etc",)))
    ok(False, "Reindex of a folder outside the indexed ones is refused")
except GLib.Error as e:
    ok("InvalidArgument" in e.message, "Reindex outside the indexed folders: " + e.message.split(":", 2)[-1].strip())

# ---- changes -------------------------------------------------------------------------------------
new = os.path.join(docs, "new.txt")
write(new, "Ein Brief über Vulkanausbrüche auf Island.\n")
wait(lambda: new in paths(search("Vulkanausbrüche Island")), "created file found")
write(new, "Jetzt geht es um Bienenzucht und Honig.\n")
wait(lambda: search("Bienenzucht Honig")[0]["path"] == new and "Bienenzucht" in search("Bienenzucht")[0]["snippet"],
     "modified file found with its new text")
before = index_files()[os.path.realpath(os.path.join(docs, "cat.txt"))]
renamed = os.path.join(docs, "katze.txt")
os.rename(os.path.join(docs, "cat.txt"), renamed)
wait(lambda: paths(search("chat canapé"))[0] == renamed and not any(p.endswith("/cat.txt") for p in paths(search("chat"))),
     "renamed file found under its new name only")
after = index_files().get(os.path.realpath(renamed), {})
ok(after.get("first_chunk") == before["first_chunk"] and after.get("hash") == before["hash"],
   "a renamed file keeps its vectors (same chunks, not encoded again)")
moved = os.path.join(docs, "sub", "gato.txt")
os.rename(os.path.join(docs, "gato.txt"), moved)
wait(lambda: moved in paths(search("gato sofá")), "file moved into a subfolder found there")
os.unlink(os.path.join(docs, "compiler.txt"))
wait(lambda: not any(p.endswith("compiler.txt") for p in paths(search("compiler program sources", limit=50))),
     "deleted file gone from the results")
write(os.path.join(docs, "node_modules", "later.txt"), "Quallen im Meer.\n")
newdir = os.path.join(docs, "fresh")
os.makedirs(newdir)
write(os.path.join(newdir, "inner.txt"), "Pinguine leben in der Antarktis.\n")
wait(lambda: any(p.endswith("/fresh/inner.txt") for p in paths(search("Pinguine Antarktis"))),
     "a file in a new folder found")
ok(not any(p.endswith("later.txt") for p in paths(search("Quallen Meer", limit=50))),
   "a file created in an excluded folder stays out")

# ---- settings ------------------------------------------------------------------------------------
settings.set_strv("folders", [docs, docs2])
Gio.Settings.sync()
wait(lambda: any(p.endswith("garden.txt") for p in paths(search("tomatoes garden"))), "a folder added in settings is indexed")
settings.set_strv("folders", [docs])
Gio.Settings.sync()
wait(lambda: not any(p.endswith("garden.txt") for p in paths(search("tomatoes garden", limit=50))),
     "a folder removed in settings leaves the index")
# A chosen folder that does not exist is in Status (the window's banner says so) until it does.
gone = os.path.join(home, "Archiv")
settings.set_strv("folders", [docs, gone])
Gio.Settings.sync()
wait(lambda: status()["missing-folders"] == [gone], "Status lists a chosen folder that does not exist")
txt = subprocess.run([M3, "daemon", "status"], capture_output=True, text=True, env=env).stdout
js = json.loads(subprocess.run([M3, "daemon", "status", "--json"], capture_output=True, text=True, env=env).stdout)
ok(f"missing  {gone}" in txt and js["missing-folders"] == [gone], "m3 daemon status names it (text and JSON)")
os.makedirs(gone)
wait(lambda: status()["missing-folders"] == [], "once it exists, it is no longer listed")
os.rmdir(gone)
settings.set_strv("folders", [docs])
Gio.Settings.sync()

# ---- battery and pause ---------------------------------------------------------------------------
set_battery(True)
wait(lambda: status()["state"] == "paused" and status()["paused-reason"] == "battery", "on battery: paused (battery)")
write(os.path.join(docs, "battery.txt"), "Solarzellen laden die Batterie.\n")
time.sleep(1.5)
ok(not any(p.endswith("battery.txt") for p in paths(search("Solarzellen Batterie", limit=50))),
   "nothing indexed while on battery")
ok(status()["files-pending"] >= 1, "the change waits as pending")
set_battery(False)
wait(lambda: any(p.endswith("battery.txt") for p in paths(search("Solarzellen Batterie"))), "on mains power: indexed")
call("Pause")
ok(status()["paused-reason"] == "user", "Pause: paused by the user")
ok(stop() == 0, "SIGTERM: clean exit")
start()
ok(status()["state"] == "paused" and status()["paused-reason"] == "user", "a user's pause survives a restart")
txt = subprocess.run([M3, "daemon", "status"], capture_output=True, text=True, env=env).stdout
ok("paused (user)" in txt and "indexed" in txt, "m3 daemon status: " + txt.splitlines()[0])
call("Resume")
wait(lambda: idle() and status()["files-indexed"] > 0, "Resume: running again")
r = subprocess.run([M3, "index", "--backend", "cpu", "--index", index_dir, "--model", MODEL, docs], capture_output=True,
                   text=True, env=env)
ok(r.returncode != 0 and "m3searchd" in r.stderr, "m3 index on the service's index names the service: " +
   r.stderr.strip()[:100])
write(os.path.join(docs, "broken.txt"), "Jetzt ist die Datei repariert und lesbar.\n")
call("Reindex", GLib.Variant("(s)", ("",)))
wait(lambda: not call("FailedFiles", None, "(a(ss))")[0], "Reindex(\"\") retries failed files")
ok(subprocess.run([M3, "check", "--index", index_dir], capture_output=True, env=env).returncode == 0,
   "m3 check passes while the service runs")
stop()

# ---- watch limit ---------------------------------------------------------------------------------
start(extra_env={"M3SEARCHD_MAX_WATCHES": "1"})
wait(lambda: status()["watch-limited"] and idle(), "watch limit: Status says watch-limited")
write(os.path.join(docs, "sub", "deep.txt"), "Leuchttürme an der Küste.\n")
wait(lambda: any(p.endswith("/sub/deep.txt") for p in paths(search("Leuchttürme Küste"))),
     "past the watch limit, a periodic rescan still finds changes")
stop()
out = subprocess.run([M3, "daemon", "status"], capture_output=True, text=True, env=env)
ok(out.returncode != 0 and "not running" in out.stderr, "m3 daemon status without the service: " + out.stderr.strip())

# ---- SIGKILL at random moments -------------------------------------------------------------------
kill_docs = os.path.join(home, "Many")
os.makedirs(os.path.join(kill_docs, "a"))
rnd = random.Random(7)
words = " ".join(SENT.values()).split()
for i in range(120):
    text = " ".join(rnd.choice(words) for _ in range(40 + 7 * (i % 9)))
    write(os.path.join(kill_docs, "a" if i % 3 else "", f"f{i}.txt"), text + ".\n")
settings.set_strv("folders", [kill_docs])
Gio.Settings.sync()
shutil.rmtree(index_dir)
kills = 5 if REDUCED else 20
clean = True
partial = 0
for k in range(kills):
    # Each round brings new work (files changed while the service was down), so that every kill
    # can land in a crawl or in the middle of indexing.
    for i in rnd.sample(range(120), 15 if k else 0):
        text = " ".join(rnd.choice(words) for _ in range(40 + 7 * (i % 9)))
        write(os.path.join(kill_docs, "a" if i % 3 else "", f"f{i}.txt"), f"{text} ({k}).\n")
    start()
    if k % 2:
        # In the middle of indexing: once the service says so, a moment later.
        end = time.monotonic() + DEADLINE
        # (At least one commit in the index, so that a slow first batch, as under the sanitizers,
        # cannot make every kill land before anything was written.)
        busy = False  # idle only counts once the run has started (the service is idle at first)
        while time.monotonic() < end:
            st = status()
            if st["state"] == "indexing" and st["files-indexed"] > 0:
                break
            busy = busy or st["state"] in ("crawling", "indexing")
            if busy and st["state"] == "idle":
                break
            time.sleep(0.01)
        time.sleep(rnd.uniform(0, 0.3))
    else:
        time.sleep(rnd.uniform(0.01, 0.3))  # starting, opening, crawling
    daemon.kill()
    daemon.wait()
    c = subprocess.run([M3, "check", "--index", index_dir], capture_output=True, text=True, env=env)
    print(f"kill {k + 1}: {len(index_files())} files in the index", flush=True)
    if c.returncode != 0 and "no index" not in c.stderr:
        clean = ok(False, f"after SIGKILL {k + 1}: m3 check: {c.stdout} {c.stderr}")
    elif c.returncode == 0:
        # Mid-indexing: some of the files are not in the index yet, or not with their new text.
        files = index_files()
        current = sum(1 for p, f in files.items() if f["state"] == "done" and f["size"] == os.path.getsize(p))
        partial += 0 < current < 120
ok(partial > 0, f"{partial} of the kills hit the service in the middle of indexing")
ok(clean, f"SIGKILL x{kills} during crawl and indexing: the index opens and checks each time")
start()
wait(lambda: idle() and status()["files-indexed"] == 120, "after the kills the service finishes the job")
stop()
ref = os.path.join(tmp, "ref")
# The same arithmetic as the service's encoder: the "precision" setting's default, auto, as
# `m3 index`'s (bf16 where the CPU has AVX512_BF16, else fp32).
subprocess.run([M3, "index", "--quiet", "--backend", "cpu", "--precision", "auto", "--index", ref, "--model", MODEL,
                kill_docs], check=True, env=env)
got, want = index_files(), index_files(ref)
keep = ("state", "hash", "chunks", "tokens", "size")
ok({p: {k: f[k] for k in keep} for p, f in got.items()} == {p: {k: f[k] for k in keep} for p, f in want.items()},
   "the index after kills equals an uninterrupted run's (files, hashes, chunks, tokens)")
for q in ("Finanzamt", "chat", "compiler sources"):
    a, b = (subprocess.run([M3, "search", "--backend", "cpu", "--index", i, "--model", MODEL, "--json", q],
                           capture_output=True, text=True, env=env).stdout for i in (index_dir, ref))
    ok([r["path"] for r in json.loads(a)["results"]] == [r["path"] for r in json.loads(b)["results"]],
       f"same ranking as the uninterrupted index for '{q}'")

upower_proc.terminate()
upower_proc.wait()
shutil.rmtree(tmp, ignore_errors=True)
print(f"{failures} failures")
sys.exit(1 if failures else 0)
