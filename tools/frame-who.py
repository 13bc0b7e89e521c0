#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# What ran on each CPU during the window's frames: its own main thread, the X server, the service,
# or nothing (the CPU idle: the frame was waiting, e.g. on a round trip to the X server). A frame's
# wall time beyond its main thread's CPU time is spent somewhere; this says where.
#
# Usage, around the window bench (tools/bench-window.py through tests/ui/run-gui.sh):
#   perf record -a -k mono -e sched:sched_switch -o sched.data &     # -k mono: the trace's clock
#   M3_BENCH_TRACE=3 M3_BENCH_LOGS=DIR M3_BENCH_IDLE_ONLY=1 tests/ui/run-gui.sh build ../../tools/bench-window.py MODEL
#   kill -INT %1
#   tools/frame-who.py sched.data DIR/idle-service.log [N]       # the N longest frames (15)
import bisect
import collections
import re
import subprocess
import sys


def switches(data):
    """For each CPU, the times it switched task and the task it switched to (comm)."""
    out = subprocess.run(["perf", "script", "-i", data, "-F", "cpu,time,event,trace"], capture_output=True, text=True,
                         check=True).stdout
    per_cpu = collections.defaultdict(list)
    for line in out.splitlines():
        m = re.match(r"\s*\[(\d+)\]\s+([0-9.]+):\s+sched:sched_switch:.*==> next_comm=(.+?) next_pid=", line)
        if m:
            per_cpu[int(m.group(1))].append((float(m.group(2)), m.group(3)))
    return per_cpu


def usage(per_cpu, start, end):
    """Milliseconds each task (comm) ran within [start, end), all CPUs together; idle is 'swapper/N'."""
    used = collections.Counter()
    for events in per_cpu.values():
        times = [t for t, _ in events]
        i = max(bisect.bisect_right(times, start) - 1, 0)
        while i < len(events) and events[i][0] < end:
            t1 = events[i + 1][0] if i + 1 < len(events) else end
            lo, hi = max(events[i][0], start), min(t1, end)
            if hi > lo:
                used[events[i][1]] += (hi - lo) * 1000
            i += 1
    return used


def main():
    data, log = sys.argv[1], sys.argv[2]
    shown = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    frames = [tuple(float(x) for x in m.groups()) for m in
              re.finditer(r"every frame: from ([0-9.]+) s to ([0-9.]+) s, main-thread CPU ([0-9.]+) ms", open(log).read())]
    if not frames:
        sys.exit(f"{log}: no frames (run the window with M3SEARCH_TRACE=3, the bench with M3_BENCH_TRACE=3)")
    per_cpu = switches(data)
    rows = sorted(((end - start) * 1000, cpu, usage(per_cpu, start, end)) for start, end, cpu in frames)[::-1]
    total = collections.Counter()
    for _, _, used in rows:
        total.update(used)
    print(f"{len(rows)} frames; over all of them (ms):", ", ".join(f"{k} {v:.0f}" for k, v in total.most_common(8)))
    for ms, cpu, used in rows[:shown]:
        print(f"frame {ms:5.1f} ms, the window's main thread {cpu:4.1f} ms of CPU:",
              ", ".join(f"{k} {v:.1f}" for k, v in used.most_common(6)))


main()
