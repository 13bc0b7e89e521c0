# SPDX-License-Identifier: MIT
#
# Reads the window as assistive technology does: through AT-SPI (the accessibility bus that GTK
# registers on the session bus). The GUI tests check what this tree shows — labels, buttons, list
# items, their states — never the program's variables.
import sys
import time

import gi

gi.require_version("Atspi", "2.0")
from gi.repository import Atspi  # noqa: E402


def app(name="m3search", timeout=20.0):
    """The application's accessible, waiting for it to register."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        desktop = Atspi.get_desktop(0)
        for i in range(desktop.get_child_count()):
            a = desktop.get_child_at_index(i)
            if a is not None and a.get_name() == name:
                return a
        time.sleep(0.2)
    raise AssertionError(f"no application named {name!r} on the accessibility bus")


def walk(node, depth=0):
    yield node, depth
    try:
        n = node.get_child_count()
    except Exception:
        return
    for i in range(n):
        c = node.get_child_at_index(i)
        if c is not None:
            yield from walk(c, depth + 1)


def showing(node):
    # GTK 4.8 sets SHOWING on windows only; VISIBLE is what it keeps up to date (and the window marks
    # hidden stack pages and bars hidden, which takes them out of the tree).
    try:
        return node.get_state_set().contains(Atspi.StateType.VISIBLE)
    except Exception:
        return False


def texts(root, role=None):
    """The names of every showing accessible under root (optionally of one role), in tree order."""
    out = []
    for n, _ in walk(root):
        if not showing(n):
            continue
        if role and n.get_role_name() != role:
            continue
        name = n.get_name()
        if name:
            out.append(name)
    return out


def find(root, name=None, role=None, contains=None):
    for n, _ in walk(root):
        if not showing(n):
            continue
        if role and n.get_role_name() != role:
            continue
        nm = n.get_name() or ""
        if name is not None and nm != name:
            continue
        if contains is not None and contains not in nm:
            continue
        return n
    return None


def wait(what, predicate, timeout=20.0):
    """Polls predicate until it returns something true; fails the test naming what was awaited."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = predicate()
        except Exception as e:  # the tree changes under us; try again
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def settled(node, timeout=5.0):
    """Waits until node stops moving on screen (a stack's slide has ended), so that a screenshot
    shows the page where a person sees it: its extents the same over three polls 100 ms apart."""
    def extents():
        e = node.get_component_iface().get_extents(Atspi.CoordType.WINDOW)
        return (e.x, e.y, e.width, e.height)
    end = time.monotonic() + timeout
    seen = []
    while time.monotonic() < end:
        seen = (seen + [extents()])[-3:]
        if len(seen) == 3 and seen[0] == seen[1] == seen[2]:
            return node
        time.sleep(0.1)
    raise AssertionError(f"{node.get_name()!r} still moving after {timeout} s: {seen}")


def dump(root, out=sys.stderr):
    for n, d in walk(root):
        if showing(n):
            print("  " * d + f"[{n.get_role_name()}] {n.get_name()!r}", file=out)


def click(node):
    """Activates a button (or any accessible with an action) the way a screen reader does."""
    act = node.get_action_iface()
    if act is None or act.get_n_actions() == 0:
        raise AssertionError(f"{node.get_name()!r} has no action")
    act.do_action(0)
