"""leakprobe's Python probe.

leak-client watch --probe python puts the folder holding this file first on PYTHONPATH, so every
Python process of the watched tree imports it at start-up. At start-up, then on a daemon thread's
timer, it appends one JSON line to the file named by LEAKPROBE_PROBE_OUT: the process's resident
set and its anonymous part (`rss`, `anon`: /proc/self/statm, what the process keeps in memory:
Python's objects, malloc'd buffers, a C extension's own memory, at page granularity and with what
the allocators hold of freed memory) after collecting the young generations (gc.collect(1): well
under a millisecond; freed memory stays resident, so a full collection would not lower it), and
sys.getallocatedblocks() (a count of objects). With LEAKPROBE_PROBE_TRACEMALLOC=1 it runs a full
gc.collect() and adds tracemalloc's traced bytes (exact bytes of Python's own allocations, but
tracing every allocation cost a request loop 2.7-4.5x its CPU time, see client/src/watch/probe.rs).
leakprobe pairs each line's CLOCK_MONOTONIC time "t" with the server's count of requests served.

When: every LEAKPROBE_PROBE_INTERVAL_MS milliseconds if it is set (at least 10); otherwise 20 x the
mean CPU time of the last 5 readings (a reading holds the GIL; `cost_us` in the line), at least
20 ms, so readings take at most 1/20 (5%) of the process's time and a short run still gets many.

Sites (LEAKPROBE_PROBE_SITES=<N>, `watch --sites`, which implies tracemalloc): _leakprobe_sites()
below starts tracemalloc with 16 frames, and at each reading (after the full collection) appends
the totals per traceback to sites-<pid>-0.jsonl beside LEAKPROBE_PROBE_OUT (paced on its own, at
most 1/20 of the process's time, so not at every reading): each traceback once
({"ev":"stack","id","frames":[[file,line],...]}, innermost first), then per reading
{"ev":"sites","seq","t","traces":[[id,bytes,blocks],...],"rest":[bytes,blocks],"cut":bytes}: the
N largest tracebacks, the others summed as "rest" (each of them holds at most "cut" bytes).

Promises: the thread is a daemon (it never keeps the process alive), a failure stops the probe
silently and never reaches the program, nothing happens when LEAKPROBE_PROBE_OUT is unset, and a
sitecustomize this file shadows is still imported.
"""


def _leakprobe_probe():
    import os

    out = os.environ.get("LEAKPROBE_PROBE_OUT")
    if not out:
        return
    import gc
    import sys
    import threading
    import time

    try:
        fixed = int(os.environ.get("LEAKPROBE_PROBE_INTERVAL_MS") or 0)
    except ValueError:
        fixed = 0
    every = max(10, fixed) / 1000.0 if fixed > 0 else 0.0
    # The adaptive interval: BUDGET x the mean of the last COSTS readings' CPU times, >= FLOOR s.
    budget, floor, keep = 20, 0.02, 5
    costs = []
    try:
        page = os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        page = 4096

    def memory():
        # /proc/self/statm: size resident shared ...; resident - shared is RssAnon.
        try:
            with open("/proc/self/statm", "rb") as f:
                fields = f.read().split()
            return int(fields[1]) * page, (int(fields[1]) - int(fields[2])) * page
        except (OSError, ValueError, IndexError):
            return None
    traced = None
    sites = _leakprobe_sites(out)
    if sites is not None or os.environ.get("LEAKPROBE_PROBE_TRACEMALLOC") == "1":
        import tracemalloc

        if not tracemalloc.is_tracing():
            tracemalloc.start()
        traced = tracemalloc.get_traced_memory
    state = {"fd": -1, "seq": 0, "stopped": False, "pid": os.getpid(), "lock": threading.Lock()}

    def sample(ev):
        with state["lock"]:
            if state["stopped"]:
                return
            try:
                c0 = time.thread_time_ns()
                t = time.monotonic_ns()
                # A full collection only for tracemalloc's bytes, which fall when garbage is freed.
                gc.collect() if traced is not None else gc.collect(1)
                gc_us = (time.monotonic_ns() - t) // 1000
                line = '{"rt":"python","ev":"%s","pid":%d,"tid":0,"seq":%d,"t":%d,"gc":%s,"gc_us":%d,"blocks":%d' % (
                    ev, os.getpid(), state["seq"], t, "true" if traced is not None else "false", gc_us,
                    sys.getallocatedblocks())
                mem = memory()
                cpu_us = (time.thread_time_ns() - c0) // 1000
                # cost_us: what the pacing counts (here the CPU time; the Node probe's too).
                line += ',"cpu_us":%d,"cost_us":%d' % (cpu_us, cpu_us)
                if mem is not None:
                    line += ',"rss":%d,"anon":%d' % mem
                if traced is not None:
                    line += ',"traced":%d' % traced()[0]
                line += "}\n"
                state["seq"] += 1
                if state["fd"] < 0:
                    state["fd"] = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
                os.write(state["fd"], line.encode())
                if len(costs) == keep:
                    costs.pop(0)
                costs.append((time.thread_time_ns() - c0) / 1e9)
                if sites is not None and ev != "exit":
                    # After the bytes were read (the snapshot allocates, and is freed again), and
                    # paced by its own cost, apart from the reading's.
                    sites.read(state["seq"] - 1, t)
            except Exception:
                state["stopped"] = True

    def interval():
        if every > 0:
            return every
        mean = sum(costs) / len(costs) if costs else 0.0
        return max(floor, budget * mean)

    def loop():
        while not state["stopped"]:
            time.sleep(interval())
            sample("tick")

    def start():
        t = threading.Thread(target=loop, name="leakprobe-probe", daemon=True)
        t.start()

    def after_fork():
        # A forked child (multiprocessing's fork start method) has no probe thread: start one,
        # with a fresh lock (the parent's thread may have held the old one at the fork).
        state["lock"] = threading.Lock()
        state["seq"] = 0
        if sites is not None:
            sites.forked()
        if state["pid"] != os.getpid():
            state["pid"] = os.getpid()
            state["stopped"] = False
            start()

    import atexit

    sample("start")
    start()
    os.register_at_fork(after_in_child=after_fork)
    atexit.register(sample, "exit")


def _leakprobe_sites(out):
    """`watch --sites`: tracemalloc's totals per traceback at each reading, kept apart from the
    rest of the probe. None when off; stops itself silently on any failure."""
    import os

    try:
        top = int(os.environ.get("LEAKPROBE_PROBE_SITES") or 0)
    except ValueError:
        top = 0
    if top <= 0:
        return None
    import json
    import sys
    import time
    import tracemalloc

    tracemalloc.start(16)

    class Sites:
        def __init__(self):
            self.forked()
            self.dead = False

        def forked(self):
            # A forked child writes its own file and interns its own tracebacks.
            self.ids = {}
            self.fd = -1
            self.next_ns = 0
            self.costs = []
            self.path = os.path.join(os.path.dirname(out), "sites-%d-0.jsonl" % os.getpid())

        def totals(self):
            # Bytes and blocks per traceback. tracemalloc's own list when it has one (each
            # traceback is one shared tuple, innermost frame first, so grouping by identity is
            # exact and cheap); else through a snapshot (3-4x slower).
            try:
                import _tracemalloc

                raw = _tracemalloc._get_traces()
            except (ImportError, AttributeError):
                raw = None
            groups = {}
            if raw is not None:
                for trace in raw:
                    tb = trace[2]
                    g = groups.get(id(tb))
                    if g is None:
                        groups[id(tb)] = [tb, trace[1], 1]
                    else:
                        g[1] += trace[1]
                        g[2] += 1
                return list(groups.values())
            for st in tracemalloc.take_snapshot().statistics("traceback"):
                # A snapshot lists the oldest frame first.
                tb = tuple((f.filename, f.lineno) for f in reversed(st.traceback))
                groups.setdefault(tb, [tb, 0, 0])
                groups[tb][1] += st.size
                groups[tb][2] += st.count
            return list(groups.values())

        def read(self, seq, t):
            # Paced apart from the readings: at most 1/20 of the process's time, 20 x the mean
            # CPU time of the last 5 (a 40k-block heap's totals take ~50-150 ms).
            if self.dead or time.monotonic_ns() < self.next_ns:
                return
            switch = sys.getswitchinterval()
            try:
                # Hold the GIL through the read, as a collection does: handed back every 5 ms,
                # the busy main thread stretched a 0.3 s read (CPU) to 6 s of wall time, and the
                # heap readings behind it with it.
                sys.setswitchinterval(max(switch, 1.0))
                c0 = time.thread_time_ns()
                stats = self.totals()
                stats.sort(key=lambda g: g[1], reverse=True)
                lines = []
                traces = []
                for tb, size, count in stats[:top]:
                    key = tuple(tuple(f) for f in tb)
                    i = self.ids.get(key)
                    if i is None:
                        i = len(self.ids)
                        self.ids[key] = i
                        lines.append(json.dumps({"ev": "stack", "id": i, "frames": [list(f) for f in key]}))
                    traces.append([i, size, count])
                rest = stats[top:]
                cut = stats[top - 1][1] if len(stats) >= top else 0
                lines.append(json.dumps({
                    "ev": "sites", "seq": seq, "t": t, "traces": traces,
                    "rest": [sum(g[1] for g in rest), sum(g[2] for g in rest)], "cut": cut,
                }, separators=(",", ":")))
                del stats, rest
                if self.fd < 0:
                    self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
                os.write(self.fd, ("\n".join(lines) + "\n").encode())
                cost = time.thread_time_ns() - c0
                self.costs = (self.costs + [cost])[-5:]
                self.next_ns = time.monotonic_ns() + 20 * sum(self.costs) // len(self.costs)
            except Exception:
                self.dead = True
            finally:
                sys.setswitchinterval(switch)

    return Sites()


def _leakprobe_chain():
    # Import the sitecustomize this file shadows, if there is one further along the path.
    import importlib.machinery
    import importlib.util
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


try:
    _leakprobe_probe()
except Exception:
    pass
try:
    _leakprobe_chain()
except Exception:
    pass
