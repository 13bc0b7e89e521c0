# SPDX-License-Identifier: MIT
#
# The window with the real indexer service (m3searchd from the build tree, the tiny model) on the
# private session bus: typing a query shows the service's results for it, in its order, best first
# (the German tax letter for a German query); the preview shows the passage; find similar from a
# result shows the service's FindSimilar list without the file itself; adding a folder in the
# preferences (through the file chooser) makes the service index it and the window shows its file.
# Screenshots: results with preview, similar, preferences, indexing progress.
import fcntl
import os
import signal
import subprocess
import time

from gi.repository import Atspi, Gio, GLib

import a11y
import harness
from harness import (REDUCED, check, finish, focus_window, key, label_shown, m3search, screenshot, stop, text_of,
                     type_text)

BUILD = os.environ["M3_BUILD"]
tmp = os.environ["M3_TEST_TMP"]
home = os.environ["HOME"]
docs = os.path.join(home, "Documents")
other = os.path.join(home, "Other")
os.makedirs(other)
DEADLINE = 90 if REDUCED else 30

TEXTS = {
    "tax.txt": "Die Steuererklärung muss bis Ende Mai beim Finanzamt sein. Belege und Quittungen beilegen.",
    "korean.txt": "세무서에서 소득세 신고에 관한 편지를 보냈습니다. 영수증을 준비하세요.",
    "cat.txt": "Le chat dort sur le canapé toute la journée.",
    "gato.txt": "El gato duerme en el sofá todo el día.",
    "compiler.txt": "The compiler builds the program from its sources.",
}
for name, text in TEXTS.items():
    with open(os.path.join(docs, name), "w") as f:
        f.write((text + " ") * 3 + "\n")
with open(os.path.join(other, "garden.txt"), "w") as f:
    f.write("Tomatoes and beans grow in the garden in summer. " * 3 + "\n")
# Enough files in the folder added later that the window shows the service's progress for a while.
NOTES = 0 if REDUCED else 150
for i in range(NOTES):
    with open(os.path.join(other, f"note{i:03d}.txt"), "w") as f:
        f.write(f"Note {i}: " + " ".join(TEXTS[k] for k in sorted(TEXTS)) + "\n")

with open(os.path.join(docs, "broken.txt"), "w") as f:
    f.write("\x00\x01\x02 not text at all \x00\x00")  # the service cannot read it: a failed file

settings = Gio.Settings.new("org.m3search.Search")
settings.set_strv("folders", [docs])
Gio.Settings.sync()

env = dict(os.environ, M3SEARCHD_QUIET_MS="300", M3SEARCHD_COMMIT_MS="100", M3SEARCHD_RESCAN_S="2")


def start_daemon():
    return subprocess.Popen([os.path.join(BUILD, "app", "m3searchd"), "--model", os.environ["M3_TINY_MODEL"],
                             "--index", os.path.join(tmp, "index")], env=env)


daemon = start_daemon()
bus = Gio.bus_get_sync(Gio.BusType.SESSION)


def call(method, args=None, reply=None):
    return bus.call_sync("org.m3search.Indexer", "/org/m3search/Indexer", "org.m3search.Indexer1", method, args,
                         GLib.VariantType(reply) if reply else None, Gio.DBusCallFlags.NONE, 60000, None).unpack()


def status():
    return call("Status", None, "(a{sv})")[0]


def wait(what, cond, deadline=DEADLINE):
    return a11y.wait(what, cond, deadline)


def names(results):
    return [os.path.basename(r["path"]) for r in results]


def passage(app):
    """The text of the passage the preview shows (the selected result's), or None."""
    node = a11y.find(app, role="text", name="Matched passage")
    return text_of(node) if node else None


def previewed(app, name):
    """Waits for the preview to show the passage of NAME (one of TEXTS): the selected result."""
    start = TEXTS[name][:20]
    return wait(f"the preview of {name}", lambda: start in (passage(app) or ""))


def entry_holds(app, text):
    for n, _ in a11y.walk(app):
        if n.get_role_name() in ("text", "entry") and a11y.showing(n) and text_of(n) == text:
            return n
    return None


def type_query(app, text):
    """Types TEXT into the search entry (Ctrl+F first selects what is there, so typing replaces it);
    the entry, or None when it does not come to hold TEXT."""
    key("ctrl+f")
    type_text(text)
    try:
        return wait(f"the search entry to hold {text!r}", lambda: entry_holds(app, text), 5)
    except AssertionError as e:
        print(e, flush=True)
        return None


def menu_items(app):
    """The names of the menu items showing (a popover menu), in order."""
    return a11y.texts(app, role="menu item")


def search(query, options=None):
    opts = {"limit": GLib.Variant("u", 50)}
    opts.update(options or {})
    return names(call("Search", GLib.Variant("(sa{sv})", (query, opts)), "(aa{sv})")[0])


def sliders(app):
    """The ranking popover's three weights (Meaning, Words, Passages) as (value, sensitive)."""
    out = []
    for name in ("Meaning", "Words", "Passages"):
        n = a11y.find(app, role="slider", name=name)
        if n is None:
            return None
        out.append((round(n.get_value_iface().get_current_value(), 2),
                    n.get_state_set().contains(Atspi.StateType.SENSITIVE)))
    return out


def press(node):
    """Clicks NODE: its action, or the pointer at its middle (a menu button has no action)."""
    act = node.get_action_iface()
    if act is not None and act.get_n_actions() > 0:
        act.do_action(0)
        return
    # GTK 4.8 gives positions in the window only; the window's own is X's (run-gui.sh has no
    # window manager: the window stays where it was mapped).
    e = node.get_component_iface().get_extents(Atspi.CoordType.WINDOW)
    x = y = 0
    ids = subprocess.run(["xdotool", "search", "--name", "^m3search$"], capture_output=True, text=True).stdout.split()
    for wid in ids:
        geo = subprocess.run(["xdotool", "getwindowgeometry", "--shell", wid], capture_output=True, text=True)
        at = dict(line.split("=", 1) for line in geo.stdout.split() if "=" in line)
        if geo.returncode == 0 and "X" in at:
            x, y = int(at["X"]), int(at["Y"])
    subprocess.run(["xdotool", "mousemove", str(x + e.x + e.width // 2), str(y + e.y + e.height // 2), "click", "1"],
                   check=True)


def width_of(node):
    return node.get_component_iface().get_extents(Atspi.CoordType.WINDOW).width


def shown(app):
    """The file names of the result rows the window shows, top to bottom."""
    rows = a11y.find(app, role="list", name="Results")
    out = []
    for n, _ in a11y.walk(rows) if rows else []:
        if n.get_role_name() == "filler" and " in " in (n.get_name() or "") and a11y.showing(n):
            out.append(n.get_name().split(" in ")[0])
    return out


win = None
try:
    wait("the service to index the 5 files", lambda: status()["files-indexed"] == 5 and status()["files-pending"] == 0
         and status()["files-failed"] == 1)
    win = m3search()
    app = a11y.app()
    check("the window says how many files are indexed",
          label_shown(app, "5 files are indexed. Type in any language.", DEADLINE) is not None)
    # The failed file: a banner, and the list with the reason behind its button.
    banner = label_shown(app, "1 file could not be read", DEADLINE)
    check("a banner says that 1 file could not be read", banner is not None)
    a11y.click(wait("the banner's Show button", lambda: a11y.find(app, role="push button", contains="Show")))
    check("Show lists the failed files", label_shown(app, "Files That Could Not Be Read") is not None)
    check("the list names broken.txt", wait("broken.txt in the list",
                                             lambda: a11y.find(app, role="label", contains="broken.txt")) is not None)
    screenshot("failed-files")
    a11y.click(wait("Read All Again", lambda: a11y.find(app, role="push button", contains="Read All Again")))
    a11y.click(wait("Back", lambda: a11y.find(app, role="push button", name="Back to the Results")))
    wait("the failed files' page to go", lambda: a11y.find(app, role="label", name="Files That Could Not Be Read") is None)
    # Read All Again makes the service read broken.txt again; type once it is done with that, so
    # that the results compared below are those of the same index.
    wait("the service to be idle again", lambda: (lambda st: st["state"] == "idle" and st["files-pending"] == 0)(
        call("Status", None, "(a{sv})")[0]))
    focus_window()
    query = "Steuererklärung Finanzamt"
    check("the search entry holds the typed query", type_query(app, query) is not None)  # Ctrl+F, as a person would
    expected = names(call("Search", GLib.Variant("(sa{sv})", (query, {"limit": GLib.Variant("u", 50)})), "(aa{sv})")[0])
    got = wait("the results of the typed query", lambda: shown(app) if shown(app) == expected else None)
    check(f"typing shows the service's results in its order: {got}", got == expected)
    check("the German tax letter is first", got and got[0] == "tax.txt")
    # The score bar's numbers reach screen readers (its tooltip is built only when shown).
    top = call("Search", GLib.Variant("(sa{sv})", (query, {"limit": GLib.Variant("u", 1)})), "(aa{sv})")[0][0]
    bar = wait("the first result's score bar", lambda: a11y.find(app, role="image", contains=f"Score {top['score']:.3f}"))
    check(f"the first result's score bar reads its score and parts: {bar.get_name()!r}",
          f"meaning {top['dense']:.3f}" in bar.get_name() and f"passages {top['colbert']:.3f}" in bar.get_name())
    # The first row is selected: its passage is in the preview (a new query's results start at the
    # best match, not at the file selected in the previous keystroke's results).
    check("the preview shows the first result's passage", previewed(app, "tax.txt"))
    # The snippet is cut ("…"); the preview finds it in the file and shows the file's text around it:
    # all three repetitions of the letter, with the words past the snippet's end.
    whole = " ".join(((TEXTS["tax.txt"] + " ") * 3).split())
    check("the preview shows the passage in its file's context",
          wait("the file's text in the preview", lambda: " ".join((passage(app) or "").split()) == whole))
    screenshot("results")
    # A path reads left to right as a unit whatever surrounds it (a right-to-left UI, a Hebrew
    # place): the row's folder and the preview's details hold it between U+2066 and U+2069.
    check("the row's folder is a left-to-right isolate",
          a11y.find(app, role="label", name="\u2066~/Documents\u2069") is not None)
    check("the preview's folder is a left-to-right isolate",
          a11y.find(app, role="label", contains="\u2066~/Documents\u2069\n") is not None)
    # Down moves into the results onto the selected row; the next Down selects the row below it.
    key("Down")
    time.sleep(0.3)
    check("Down from the search entry keeps the first result selected", previewed(app, "tax.txt"))
    key("Down")
    check(f"Down in the results selects the second, {expected[1]}", previewed(app, expected[1]))
    key("Up")
    check("Up selects the first again", previewed(app, "tax.txt"))
    # A refresh (the service's IndexChanged after a file changed) keeps the selected file selected;
    # Down from the search entry then goes to that row, not to the row that last had the focus.
    changed = []
    sub = bus.signal_subscribe(None, "org.m3search.Indexer1", "IndexChanged", "/org/m3search/Indexer", None,
                               Gio.DBusSignalFlags.NONE, lambda *args: changed.append(True))
    key("Down")
    check(f"Down selects the second, {expected[1]}", previewed(app, expected[1]))
    key("ctrl+f")
    with open(os.path.join(docs, "compiler.txt"), "a") as f:
        f.write(TEXTS["compiler.txt"] + "\n")
    wait("the service's IndexChanged", lambda: GLib.MainContext.default().iteration(False) and False or changed)
    bus.signal_unsubscribe(sub)
    time.sleep(1.0)  # the window's refresh
    now = names(call("Search", GLib.Variant("(sa{sv})", (query, {"limit": GLib.Variant("u", 50)})), "(aa{sv})")[0])
    got = wait("the refreshed results", lambda: shown(app) if shown(app) == now else None)
    check(f"the refresh keeps {expected[1]} selected", previewed(app, expected[1]))
    nxt = now[now.index(expected[1]) + 1]
    key("Down")
    time.sleep(0.3)
    key("Down")
    check(f"Down, Down from the search entry selects the row below it, {nxt}", previewed(app, nxt))
    check("the search entry holds the query typed again", type_query(app, query) is not None)
    check("a new query's results start at the first again", previewed(app, "tax.txt"))
    # Clearing the entry empties the list (the window keeps the rows' widgets for the next results,
    # blank): the start page again, no result row and no passage left for a screen reader; typing
    # again shows the query's results as before.
    key("ctrl+a", "BackSpace")
    check("clearing the entry shows the start page again",
          wait("the start page", lambda: a11y.find(app, role="label", contains="files are indexed")) is not None)
    check("no result row is left once the entry is cleared", wait("the rows to go", lambda: not shown(app)))
    check("the preview shows no passage once the entry is cleared", wait("the passage to go", lambda: not passage(app)))
    check("the search entry holds the query typed after clearing it", type_query(app, query) is not None)
    again = names(call("Search", GLib.Variant("(sa{sv})", (query, {"limit": GLib.Variant("u", 50)})), "(aa{sv})")[0])
    got = wait("the results after clearing", lambda: shown(app) if shown(app) == again else None)
    check(f"typing after clearing shows the service's results in its order: {got}", got == again)
    check("the first result is selected again", previewed(app, "tax.txt"))

    # The context menu from the keyboard, on the selected result: Menu, then Shift+F10 (the
    # keyboard's right click), and an action chosen in it with the keyboard.
    key("Down")
    time.sleep(0.3)
    for k in ("Menu", "shift+F10"):
        key(k)
        items = wait(f"{k} to open the result's context menu", lambda: menu_items(app))
        check(f"{k} opens the result's context menu: {items}",
              items == ["Open", "Show in Folder", "Find Similar", "Copy Path"])
        if k == "Menu":
            screenshot("context-menu")
            key("Escape")
            wait("the context menu to close", lambda: not menu_items(app))
    key("Up")  # from the first item (the menu focuses it) round to the last, Copy Path
    key("Return")
    check("Copy Path chosen in the menu with the keyboard copies the path",
          label_shown(app, "Path copied") is not None)
    check("the result stays selected", previewed(app, "tax.txt"))
    key("ctrl+f")

    # Find similar from the selected (first) result, with its shortcut.
    key("ctrl+m")
    check("find similar shows “Similar to tax.txt”", label_shown(app, "Similar to tax.txt") is not None)
    sim = names(call("FindSimilar", GLib.Variant("(sa{sv})", (os.path.join(docs, "tax.txt"),
                                                             {"limit": GLib.Variant("u", 50)})), "(aa{sv})")[0])
    got = wait("the similar files", lambda: shown(app) if shown(app) == sim else None)
    check(f"find similar lists the service's similar files without the file itself: {got}",
          got == sim and "tax.txt" not in got)
    screenshot("similar")
    # Typing in similar mode leaves it: the chip goes and the typed text is searched.
    type_text("compiler program")
    typed = search("compiler program")
    check("typing in similar mode ends it (the chip goes)",
          wait("the chip to go", lambda: a11y.find(app, role="label", name="Similar to tax.txt") is None))
    got = wait("the typed query's results", lambda: shown(app) if shown(app) == typed else None)
    check(f"typing in similar mode shows the typed query's results: {got}", got == typed)
    key("ctrl+m")
    check("find similar again shows “Similar to compiler.txt”",
          label_shown(app, "Similar to compiler.txt") is not None)
    key("Escape")
    wait("similar mode to end", lambda: a11y.find(app, role="label", name="Similar to compiler.txt") is None)
    check("the search entry holds the query after find similar", type_query(app, "compiler program") is not None)
    wait("the typed query's results", lambda: shown(app) == typed)

    # The ranking popover: its weights follow the default ranking (the "weights" setting, changed
    # in Preferences, here directly), and the results are ranked by them; they are off when the
    # ranking is not hybrid (they count only there).
    # The menu button and, inside it, the button that opens the popover: the innermost one.
    ranking = wait("the Ranking button", lambda: [n for n, _ in a11y.walk(app) if n.get_name() == "Ranking"
                                                   and n.get_role_name() in ("push button", "toggle button")
                                                   and a11y.showing(n)])
    press(ranking[-1])
    before = wait("the ranking sliders", lambda: sliders(app))
    check(f"the sliders start at the default weights and are on: {before}", all(sens for _, sens in before))
    settings.set_value("weights", GLib.Variant("ad", [0.2, 0.7, 0.1]))
    Gio.Settings.sync()
    after = wait("the sliders to follow the setting",
                 lambda: (lambda v: v if v and [x for x, _ in v] == [0.2, 0.7, 0.1] else None)(sliders(app)))
    check(f"a new default ranking moves the sliders: {after}", after is not None)
    reranked = search("compiler program", {"weights": GLib.Variant("ad", [0.2, 0.7, 0.1])})
    got = wait("the results ranked by the new weights", lambda: shown(app) if shown(app) == reranked else None)
    check(f"the query is ranked by the new weights: {got}", got == reranked)
    # Rank by: the drop-down (focused first in the popover), its second item, Meaning (dense).
    press(wait("the Rank by drop-down", lambda: a11y.find(app, role="combo box")))
    wait("the drop-down's list", lambda: a11y.find(app, name="Meaning (dense)", role="label"))
    time.sleep(0.3)
    key("Down", "Return")  # its list's second item (positions inside a popover are the popover's)
    off = wait("the sliders to turn off", lambda: (lambda v: v if v and not any(s for _, s in v) else None)(sliders(app)))
    check(f"ranking by meaning only turns the weights off: {off}", off is not None)
    screenshot("ranking-dense")
    a11y.click(wait("Reset to Defaults", lambda: a11y.find(app, role="push button", contains="Reset to Defaults")))
    on = wait("the sliders to turn on", lambda: (lambda v: v if v and all(s for _, s in v) else None)(sliders(app)))
    check(f"Reset to Defaults ranks hybrid again, the weights on: {on}", on is not None)
    settings.reset("weights")
    Gio.Settings.sync()
    wait("the sliders back at the default", lambda: [x for x, _ in sliders(app)] == [x for x, _ in before])
    key("Escape")
    focus_window()

    # A narrow window: the list keeps a readable width; the preview gives way.
    def resize(width):
        ids = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "^m3search$"], capture_output=True,
                             text=True).stdout.split()
        for wid in ids:
            subprocess.run(["xdotool", "windowsize", wid, str(width), "640"])

    resize(600)
    rows = wait("the narrow list", lambda: (lambda n: n if n and width_of(n) <= 600 else None)(
        a11y.find(app, role="list", name="Results")))
    time.sleep(0.5)
    width = width_of(a11y.find(app, role="list", name="Results"))
    check(f"at 600 px the results list is at least 360 px wide: {width}", width >= 360)
    check("at 600 px the preview is hidden", wait("the preview to go", lambda: passage(app) is None))
    screenshot("narrow")
    resize(960)
    check("at 960 px the preview is back", wait("the preview", lambda: passage(app) is not None))

    if not REDUCED:
        # Paused first (as from another window), so that the progress can be seen and resumed.
        call("Pause")
        paused = wait("the paused bar", lambda: a11y.find(app, role="label", contains="Indexing paused"))
        check(f"the window says indexing is paused: {paused.get_name()!r}", paused is not None)
        # Preferences → Add Folder… → the file chooser → the service indexes the new folder.
        key("ctrl+comma")
        add = wait("Add Folder…", lambda: a11y.find(app, role="push button", contains="Add Folder"))
        a11y.click(add)
        wait("the file chooser", lambda: a11y.find(app, role="label", name="Add a Folder to Index")
             or a11y.find(app, name="Add a Folder to Index"))
        time.sleep(0.5)
        focus_window("Add a Folder to Index")
        key("ctrl+l")
        type_text(other + "/")
        time.sleep(0.5)
        key("Return")
        time.sleep(0.3)
        # Enter on a folder typed with a trailing slash opens it; Add selects it.
        add_button = a11y.find(app, role="push button", name="Add")
        if add_button is not None and a11y.find(app, name="Add a Folder to Index"):
            a11y.click(add_button)
        check("the folder appears in the preferences (as ~/Other)", label_shown(app, "~/Other", DEADLINE) is not None)
        screenshot("preferences-folders")
        # The Indexing page shows the model and index the running service uses (it was started with
        # --model and --index, which the settings do not hold).
        tab = a11y.find(app, name="Indexing")
        if tab is not None:
            a11y.click(tab)
        check("Preferences show the service's model", label_shown(app, os.environ["M3_TINY_MODEL"]) is not None)
        check("Preferences show the service's index folder",
              wait("the index row", lambda: a11y.find(app, role="label", contains=os.path.join(tmp, "index")))
              is not None)
        key("Escape")
        focus_window()
        screenshot("paused")
        check("nothing of the added folder is indexed while paused", status()["files-indexed"] == 5)
        a11y.click(wait("Resume", lambda: a11y.find(app, role="push button", contains="Resume")))
        progress = wait("the indexing progress", lambda: a11y.find(app, role="label", contains="Indexing: ")
                        or status()["files-pending"] == 0)
        if hasattr(progress, "get_name"):
            print(f"progress seen: {progress.get_name()!r}", flush=True)
            screenshot("indexing")
        wait("the service to index the added folder", lambda: status()["files-indexed"] == 6 + NOTES and
             status()["files-pending"] == 0, DEADLINE * 4)
        check("the progress bar goes away when the service is done",
              wait("the progress to end", lambda: a11y.find(app, role="label", contains="Indexing: ") is None))
        check("the service indexed the added folder", any(f == os.path.realpath(other) for f in status()["folders"]))
        focus_window()
        key("ctrl+f")
        type_text("garden tomatoes")
        got = wait("garden.txt in the results", lambda: "garden.txt" in shown(app))
        check("the added folder's file is found", bool(got))
    # The service restarts while a query is typed: the window says the service is not running,
    # then, while the service gets ready (its index held by another writer here, so that the
    # service says NotReady until it retries), that it is loading, never that the model is missing;
    # once ready, the query typed meanwhile runs and its results show.
    focus_window()
    daemon.send_signal(signal.SIGKILL)
    daemon.wait()
    check("the window says the service is not running",
          label_shown(app, "The Search Service Is Not Running", DEADLINE) is not None)
    key("ctrl+f")
    type_text("chat canape")
    lock = open(os.path.join(tmp, "index", "writer.lock"), "a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    daemon = start_daemon()
    check("while the service gets ready the window says it is loading",
          label_shown(app, "Loading the Language Model…", DEADLINE) is not None)
    check("the window does not say the model is missing",
          a11y.find(app, role="label", name="The Language Model Is Missing") is None)
    screenshot("service-loading")
    fcntl.flock(lock, fcntl.LOCK_UN)
    lock.close()
    wait("the service to open its index", lambda: status()["state"] != "error", DEADLINE + 15)
    after_restart = search("chat canape")
    got = wait("the query typed meanwhile", lambda: shown(app) if shown(app) == after_restart else None, DEADLINE)
    check(f"after the restart the query typed meanwhile shows its results: {got}", got == after_restart)
    scores = {call("Search", GLib.Variant("(sa{sv})", ("chat canape", {"limit": GLib.Variant("u", 50)})),
                   "(aa{sv})")[0][i]["score"] for i in range(len(after_restart))}
    read = [n for n in a11y.texts(app, role="image") if n.startswith("Score")]
    check(f"every score bar reads a score of the query shown: {read[:3]}",
          all(any(n.startswith(f"Score {v:.3f} ") for v in scores) for n in read))

    # A file deleted after it was indexed (the service paused, so it is still found): opening it
    # says so, short, with the file's name.
    call("Pause")
    os.remove(os.path.join(docs, "gato.txt"))
    check("the search entry holds the query for the deleted file", type_query(app, TEXTS["gato.txt"]) is not None)
    rows = wait("gato.txt in the results", lambda: (lambda r: r if "gato.txt" in r else None)(shown(app)))
    if rows[0] != "gato.txt":  # the notes hold its sentence too: its row, from the first one down
        key("Down", *["Down"] * rows.index("gato.txt"))
        check("gato.txt is selected", previewed(app, "gato.txt"))
    key("Return")
    check("opening a deleted file says ““gato.txt” no longer exists”",
          label_shown(app, "“gato.txt” no longer exists") is not None)
    screenshot("deleted-file")
except BaseException:
    screenshot("failure-search")  # what the window showed when the test gave up
    harness.show_window_log()
    raise
finally:
    if win:
        stop(win)
    daemon.terminate()
    daemon.wait(timeout=60)
finish()
