# SPDX-License-Identifier: MIT
#
# The window with no indexer service on the bus (none installed, none running): it says so in
# words and offers to try again; a second `m3search` hands its arguments to the running window
# (single instance); the file manager's way in — D-Bus activation of app.find-similar with a
# file:// URI, and GApplication.Open — puts the window into "Similar to FILE" mode; the keyboard
# reaches the shortcuts window and the preferences.
import os
import subprocess

import a11y
from harness import check, finish, focus_window, key, label_shown, m3search, screenshot, stop, text_of

tmp = os.environ["M3_TEST_TMP"]
docs = os.path.join(os.environ["HOME"], "Documents")
for name in ("report.txt", "other.txt", "third.txt"):
    with open(os.path.join(docs, name), "w") as f:
        f.write("text\n")

def gdbus(argv, **kw):
    r = subprocess.run(argv, **kw)
    check(f"{argv[8]} over D-Bus is accepted" + (f" ({r.stderr.strip()})" if r.returncode else ""), r.returncode == 0)


win = m3search("first query")
try:
    app = a11y.app()
    check("no service: says the search service is not running",
          label_shown(app, "The Search Service Is Not Running") is not None)
    check("no service: offers Try Again",
          a11y.wait("Try Again", lambda: a11y.find(app, role="push button", contains="Try Again")) is not None)
    entry = a11y.wait("the search entry", lambda: a11y.find(app, name="Search", role="entry"))
    check("`m3search QUERY` puts QUERY into the search entry", text_of(entry) == "first query")
    screenshot("no-service")

    # A second invocation goes to the running window.
    m3search("--similar", os.path.join(docs, "report.txt"), wait=True)
    check("`m3search --similar FILE` shows “Similar to FILE”", label_shown(app, "Similar to report.txt") is not None)
    m3search("second", "query", wait=True)
    a11y.wait("the entry to hold the second query", lambda: text_of(entry) == "second query")
    check("`m3search QUERY` again replaces the query and leaves similar mode",
          a11y.find(app, name="Similar to report.txt", role="label") is None)

    # The file-manager extension: D-Bus activation of app.find-similar with a file:// URI.
    uri = "file://" + os.path.join(docs, "other.txt")
    gdbus(["gdbus", "call", "--session", "--dest", "org.m3search.Search", "--object-path",
                    "/org/m3search/Search", "--method", "org.freedesktop.Application.ActivateAction",
                    "find-similar", f"[<'{uri}'>]", "{}"], check=False, capture_output=True, text=True, timeout=20)
    check("app.find-similar over D-Bus shows “Similar to other.txt”",
          label_shown(app, "Similar to other.txt") is not None)
    # GApplication.Open with a file: find similar too.
    uri = "file://" + os.path.join(docs, "third.txt")
    gdbus(["gdbus", "call", "--session", "--dest", "org.m3search.Search", "--object-path",
                    "/org/m3search/Search", "--method", "org.freedesktop.Application.Open",
                    f"['{uri}']", "{}"], check=False, capture_output=True, text=True, timeout=20)
    check("GApplication.Open(FILE) shows “Similar to third.txt”", label_shown(app, "Similar to third.txt") is not None)
    screenshot("similar-chip")

    # Keyboard: Escape leaves similar mode; Ctrl+? opens the shortcuts; Ctrl+, the preferences.
    focus_window()
    key("Escape")
    a11y.wait("similar mode to end", lambda: a11y.find(app, name="Similar to third.txt", role="label") is None)
    check("Escape leaves similar mode", True)
    key("ctrl+question")
    shortcuts = a11y.wait("the shortcuts window", lambda: a11y.find(app, role="label", name="Find similar files"))
    check("Ctrl+? opens the keyboard shortcuts window", shortcuts is not None)
    screenshot("shortcuts")
    key("Escape")
    focus_window()
    key("ctrl+comma")
    prefs = a11y.wait("the preferences window", lambda: a11y.find(app, role="label", name="Folders to Index"))
    check("Ctrl+, opens the preferences", prefs is not None)
    check("preferences list the default folders (XDG Documents, Desktop), the home folder as ~",
          a11y.find(app, role="label", name="~/Documents") is not None
          and a11y.find(app, role="label", name="~/Desktop") is not None)
    screenshot("preferences")
finally:
    stop(win)
finish()
