# SPDX-License-Identifier: MIT
#
# What every GUI test shares: a private desktop (run-gui.sh made it: Xvfb, a private session bus,
# temporary HOME and XDG folders), the window as a child process, key and pointer input through
# xdotool (synthesised X events, as a person types), screenshots of the whole screen, and checks.
import os
import shutil
import subprocess
import sys
import time

import a11y

BUILD = os.environ["M3_BUILD"]  # the build folder (release or sanitizer)
SHOTS = os.environ.get("M3_SCREENSHOTS", os.path.join(BUILD, "tests", "ui", "screenshots"))
# The sanitizer build runs the reduced form: the same checks, fewer of the slow ones.
REDUCED = os.environ.get("M3_GUI_REDUCED") == "1"
M3SEARCH = os.path.join(BUILD, "ui", "m3search")

checks = 0
failures = 0


def check(what, ok):
    global checks, failures
    checks += 1
    if ok:
        print(f"ok: {what}", flush=True)
    else:
        failures += 1
        print(f"FAIL: {what}", flush=True)
    return ok


def finish():
    print(f"{checks} checks, {failures} failed", flush=True)
    sys.exit(0 if checks > 0 and failures == 0 else 1)


def screenshot(name):
    os.makedirs(SHOTS, exist_ok=True)
    path = os.path.join(SHOTS, name + ".png")
    subprocess.run(["import", "-window", "root", path], check=True)
    print(f"screenshot: {path}", flush=True)
    return path


def xdo(*args):
    subprocess.run(["xdotool", *args], check=True)


def type_text(text, delay_ms=60):
    xdo("type", "--delay", str(delay_ms), text)


def key(*keys):
    xdo("key", "--delay", "80", *keys)


def m3search(*args, wait=False, env=None):
    """Runs m3search ARGS; the first run is the window, later ones hand their arguments to it."""
    e = dict(os.environ)
    e.setdefault("G_DEBUG", "fatal-criticals")  # a critical warning is a failure, not noise
    if env:
        e.update(env)
    p = subprocess.Popen([M3SEARCH, *args], env=e)
    if wait:
        rc = p.wait(timeout=30)
        check(f"`m3search {' '.join(args)}` (second instance) exits 0", rc == 0)
    return p


def focus_window(title="m3search"):
    """Without a window manager nothing gives the window the keyboard; xdotool does."""
    out = subprocess.run(["xdotool", "search", "--sync", "--name", f"^{title}$"], capture_output=True,
                         text=True, timeout=20).stdout.split()
    if out:
        subprocess.run(["xdotool", "windowfocus", "--sync", out[-1]], timeout=20)
    return out[-1] if out else None


def text_of(node):
    t = node.get_text_iface()
    return t.get_text(0, t.get_character_count()) if t else None


def label_shown(app, text, timeout=20.0):
    return a11y.wait(f"the label {text!r}", lambda: a11y.find(app, name=text, role="label"), timeout)


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def need(program):
    if not shutil.which(program):
        print(f"SKIP: {program} is not installed")
        sys.exit(77)
