"""leakprobe's Python probe.

leak-client watch --probe python puts the folder holding this file first on PYTHONPATH, so every
Python process of the watched tree imports it at start-up. Every LEAKPROBE_PROBE_INTERVAL_MS
(default 1000) a daemon thread runs gc.collect() and appends one JSON line to the file named by
LEAKPROBE_PROBE_OUT: sys.getallocatedblocks() (objects alive in Python's allocator) and, with
LEAKPROBE_PROBE_TRACEMALLOC=1, tracemalloc's traced bytes (exact, but it slows allocation-heavy
code: 45-70% in leakprobe's measurements, see client/src/watch/probe.rs). leakprobe pairs each line's
CLOCK_MONOTONIC time "t" with the server's count of requests served.

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
        every = max(10, int(os.environ.get("LEAKPROBE_PROBE_INTERVAL_MS") or 1000)) / 1000.0
    except ValueError:
        every = 1.0
    traced = None
    if os.environ.get("LEAKPROBE_PROBE_TRACEMALLOC") == "1":
        import tracemalloc

        tracemalloc.start()
        traced = tracemalloc.get_traced_memory
    state = {"fd": -1, "seq": 0, "stopped": False, "pid": os.getpid(), "lock": threading.Lock()}

    def sample(ev):
        with state["lock"]:
            if state["stopped"]:
                return
            try:
                t = time.monotonic_ns()
                gc.collect()
                gc_us = (time.monotonic_ns() - t) // 1000
                line = '{"rt":"python","ev":"%s","pid":%d,"tid":0,"seq":%d,"t":%d,"gc":true,"gc_us":%d,"blocks":%d' % (
                    ev, os.getpid(), state["seq"], t, gc_us, sys.getallocatedblocks())
                if traced is not None:
                    line += ',"traced":%d' % traced()[0]
                line += "}\n"
                state["seq"] += 1
                if state["fd"] < 0:
                    state["fd"] = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
                os.write(state["fd"], line.encode())
            except Exception:
                state["stopped"] = True

    def loop():
        while not state["stopped"]:
            time.sleep(every)
            sample("tick")

    def start():
        t = threading.Thread(target=loop, name="leakprobe-probe", daemon=True)
        t.start()

    def after_fork():
        # A forked child (multiprocessing's fork start method) has no probe thread: start one,
        # with a fresh lock (the parent's thread may have held the old one at the fork).
        state["lock"] = threading.Lock()
        state["seq"] = 0
        if state["pid"] != os.getpid():
            state["pid"] = os.getpid()
            state["stopped"] = False
            start()

    import atexit

    sample("start")
    start()
    os.register_at_fork(after_in_child=after_fork)
    atexit.register(sample, "exit")


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
