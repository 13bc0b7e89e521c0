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


# The window's standard error, read at the end: a critical warning is a failure, not noise — except
# the one GTK 4.8's AT-SPI code itself emits when a dialog goes away while a screen reader (here,
# the test) listens (g_variant_is_object_path on a NULL path inside GTK).
KNOWN_GTK_CRITICALS = ("g_variant_is_object_path: assertion 'string != NULL' failed",)
_log_path = os.path.join(os.environ.get("M3_TEST_TMP", "/tmp"), "m3search-stderr.log")


def _window_log():
    return open(_log_path, "a")


def show_window_log():
    if os.path.exists(_log_path):
        sys.stderr.write("the window's standard error:\n" + open(_log_path, errors="replace").read())


def _criticals():
    if not os.path.exists(_log_path):
        return []
    text = open(_log_path, errors="replace").read()
    sys.stderr.write(text)
    return [l for l in text.splitlines() if ("CRITICAL" in l or "ERROR" in l)
            and not any(k in l for k in KNOWN_GTK_CRITICALS)]


def finish():
    bad = _criticals()
    check(f"the window logged no critical warning {bad[:3]}", not bad)
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
    """Types TEXT as key presses. xdotool types a character that is not on the keyboard map (ä) by
    mapping it onto a spare key for a moment, and the window, reading that key after the mapping is
    gone, now and then loses it; such characters are typed the way GTK's input method lets a person
    type any character instead: Ctrl+Shift+U, its code in hex, space."""
    run = ""
    for ch in text + "\0":
        if ch == "\0" or not ch.isascii():
            if run:
                xdo("type", "--delay", str(delay_ms), run)
                run = ""
            if ch != "\0":
                xdo("key", "--delay", str(delay_ms), "ctrl+shift+u", *f"{ord(ch):x}", "space")
        else:
            run += ch


def key(*keys):
    xdo("key", "--delay", "80", *keys)


def m3search(*args, wait=False, env=None):
    """Runs m3search ARGS; the first run is the window, later ones hand their arguments to it."""
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.Popen([M3SEARCH, *args], env=e, stderr=_window_log())
    if not wait:
        # GTK failed now and then to open a display that xdotool had just reached ("cannot open
        # display", exit 1 at once): the server's reset after its last client left, which run-gui.sh
        # now turns off (-noreset). Should it happen still, that is the X server, not the window:
        # start it again, twice at most, and say so.
        for attempt in range(2):
            try:
                rc = p.wait(timeout=1.5)
            except subprocess.TimeoutExpired:
                break
            if rc == 0:
                break  # it handed its arguments to a running window
            print(f"note: m3search exited at once with status {rc}; starting it again", flush=True)
            p = subprocess.Popen([M3SEARCH, *args], env=e, stderr=_window_log())
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
