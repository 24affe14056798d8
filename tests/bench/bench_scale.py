#!/usr/bin/env python3
"""bench_scale: berthd with 1, 10,000 and 50,000 live leases.

For each lease count N it starts a berthd on a temporary database, fills it
to N leases over several keep-alive connections at once (berthd commits one
event-loop turn as one transaction, so concurrent acquires share an fsync),
and measures:

  - RSS (VmRSS of /proc/PID/status) after the fill, and again after a
    restart (leases loaded from SQLite, no request history);
  - restart time: SIGTERM, then from the exec of the new berthd to its
    READY=1 datagram on NOTIFY_SOCKET, and to the answer of the first lookup
    sent right after it (median of several restarts); also how long the old
    berthd took to exit after SIGTERM, and the sum (a supervisor's restart,
    SIGTERM to serving again);
  - lookup latency of one fixed name over keep-alive with wrk
    (wrk -t1 -cC -dDs --latency), the three daemons alternating
    (1, 10k, 50k, 1, 10k, 50k, ...), median of the rounds' p50/p99, and the
    ratio of each p99 to the 1-lease p99.

The pool is --range 1024-65535: 50,000 leases need 50,000 pool ports that
pass berthd's test bind, more than the ports left outside the kernel's
ephemeral range. A lease holds no socket, so leasing ephemeral ports takes
nothing from other processes; only the instant of each test bind does.

Environment:
  BERTHD                 the daemon (default: the build dir's src/berthd,
                         then berthd on PATH)
  BENCH_SCALE_COUNTS     lease counts, comma-separated (default 1,10000,50000)
  BENCH_ROUNDS           wrk rounds per daemon (default 3)
  BENCH_DURATION         seconds per wrk round (default 5)
  BENCH_CONNECTIONS      wrk connections (default 16)
  BENCH_RESTARTS         restarts per daemon to time (default 3)
  BENCH_FILL_CONNECTIONS connections used to fill (default 64)
  BENCH_QUIET_WAIT       seconds to wait before each wrk round for other
                         processes' load to drop (default 3)
  BENCH_RETRIES          times a wrk round is redone when other processes
                         kept over 0.15 cores busy during it (default 2)
  BENCH_LONG=1           longer run: 5 rounds of 10 s, 5 restarts

Prints human output and RESULT lines (RESULT key value unit).
Loopback only; every process started here is ended by pid; temp files are
removed.
"""

import json
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time

from benchlib import (HZ, berthtest, have, proc_cpu_s, raise_nofile, result,
                      rss_kib)

LONG = os.environ.get("BENCH_LONG") == "1"
COUNTS = [int(x) for x in os.environ.get("BENCH_SCALE_COUNTS",
                                         "1,10000,50000").split(",")]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5" if LONG else "3"))
DURATION = int(os.environ.get("BENCH_DURATION", "10" if LONG else "5"))
WRK_CONNS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
RESTARTS = int(os.environ.get("BENCH_RESTARTS", "5" if LONG else "3"))
FILL_CONNS = int(os.environ.get("BENCH_FILL_CONNECTIONS", "64"))
QUIET_WAIT = float(os.environ.get("BENCH_QUIET_WAIT", "3"))
RETRIES = int(os.environ.get("BENCH_RETRIES", "2"))
NOISY = 0.15            # cores of other load that make a round noisy
RANGE = "1024-65535"
TARGET = "bench-target"

# Targets from the issue, at 10k leases.
TARGET_RSS_MIB = 16
TARGET_RESTART_MS = 300
TARGET_P99_RATIO = 1.2


def label(n):
    return "%dk" % (n // 1000) if n >= 1000 and n % 1000 == 0 else str(n)


def machine_busy_s():
    """CPU seconds all CPUs have spent busy (not idle or iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / HZ


def children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def idle_cpu_pct(pid, seconds=2.0):
    """Share of one CPU an idle berthd uses (its timers: reaper, cooling)."""
    c0, t0 = proc_cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (proc_cpu_s(pid) - c0) / (time.monotonic() - t0)


def wait_quiet(max_s):
    """Wait up to max_s seconds for the machine to be quiet (under a quarter
    of a core busy over half a second; berthds idling here use nothing);
    returns the last load seen, in cores."""
    deadline = time.monotonic() + max_s
    while True:
        b0, t0 = machine_busy_s(), time.monotonic()
        time.sleep(0.5)
        load = (machine_busy_s() - b0) / (time.monotonic() - t0)
        if load < 0.25 or time.monotonic() >= deadline:
            return load


class Conn:
    """One keep-alive client connection driven by a selector."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.out = b""
        self.inbuf = b""

    def take_response(self):
        """(status, body) of one complete response in inbuf, or None."""
        end = self.inbuf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.inbuf[:end].decode("latin-1")
        m = re.search(r"(?im)^content-length:\s*(\d+)", head)
        clen = int(m.group(1)) if m else 0
        if len(self.inbuf) < end + 4 + clen:
            return None
        status = int(head.split(" ", 2)[1])
        body = self.inbuf[end + 4:end + 4 + clen]
        self.inbuf = self.inbuf[end + 4 + clen:]
        return status, body


def pump(host, port, requests, nconns):
    """Send the raw requests over nconns keep-alive connections, one in
    flight per connection; return the list of (status, body) in no order."""
    sel = selectors.DefaultSelector()
    todo = list(reversed(requests))
    answers = []
    conns = []
    for _ in range(min(nconns, len(todo))):
        c = Conn(host, port)
        conns.append(c)
        c.out = todo.pop()
        sel.register(c.sock, selectors.EVENT_WRITE, c)
    busy = len(conns)
    while busy:
        for key, ev in sel.select(30):
            c = key.data
            if ev & selectors.EVENT_WRITE:
                n = c.sock.send(c.out)
                c.out = c.out[n:]
                if not c.out:
                    sel.modify(c.sock, selectors.EVENT_READ, c)
                continue
            data = c.sock.recv(65536)
            if not data:
                raise RuntimeError("berthd closed a connection mid-fill")
            c.inbuf += data
            r = c.take_response()
            if r is None:
                continue
            answers.append(r)
            if todo:
                c.out = todo.pop()
                sel.modify(c.sock, selectors.EVENT_WRITE, c)
            else:
                sel.unregister(c.sock)
                busy -= 1
    for c in conns:
        c.sock.close()
    sel.close()
    return answers


def acquire_request(name):
    body = json.dumps({"name": name}).encode()
    return (b"POST /v1/services HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body))


def fill(d, n):
    """Acquire TARGET and n-1 other names; returns seconds taken."""
    r = d.acquire(TARGET)
    if r.status != 201:
        raise RuntimeError("acquire %s: %r" % (TARGET, r))
    reqs = [acquire_request("lease-%06d" % i) for i in range(1, n)]
    t0 = time.monotonic()
    answers = pump(d.host, d.port, reqs, FILL_CONNS) if reqs else []
    took = time.monotonic() - t0
    bad = {}
    for status, body in answers:
        if status != 201:
            try:
                code = json.loads(body)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = body[:60]
            bad[(status, code)] = bad.get((status, code), 0) + 1
    if bad:
        raise RuntimeError("fill to %d: failed acquires %r" % (n, bad))
    st = d.get("/v1/status").json
    if st["leases"] != n:
        raise RuntimeError("fill to %d: status shows %d leases" % (n, st["leases"]))
    return took


def timed_restart(d):
    """SIGTERM d, start it again; (ms to READY=1, ms to first lookup, ms
    the old one took to exit after SIGTERM)."""
    # A blocking wait (Popen.wait with a timeout polls in sleeps of up to
    # 50 ms), with a timer that kills a berthd that hangs on SIGTERM.
    guard = threading.Timer(10, d.proc.kill)
    guard.start()
    ts = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    status = d.proc.wait()
    stop_ms = (time.monotonic() - ts) * 1000
    guard.cancel()
    d.log.close()
    if status != 0:
        raise RuntimeError("berthd exited %r on SIGTERM" % status)
    t0 = time.monotonic()
    d.start()          # returns when the READY=1 datagram arrived
    t_ready = time.monotonic()
    r = d.get("/v1/services/" + TARGET)
    t_lookup = time.monotonic()
    if r.status != 200:
        raise RuntimeError("lookup after restart: %r" % r)
    return (t_ready - t0) * 1000, (t_lookup - t0) * 1000, stop_ms


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(out):
    """(rps, p50_ms, p99_ms, errors, requests) from wrk --latency output."""
    def ms(text):
        m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
        return float(m.group(1)) * _UNIT_MS[m.group(2)]
    pct = dict(re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return rps, ms(pct["50"]), ms(pct["99"]), errors, requests


def wrk_round(d):
    """wrk against d: (rps, p50_ms, p99_ms, errors, cpu_us, other_load);
    cpu_us is berthd's CPU time per request (user + system), which other
    load on the machine disturbs far less than latency; other_load is the
    CPUs (in cores) busy with neither wrk nor this berthd meanwhile, other
    work on the machine that blurs the figures."""
    url = "http://127.0.0.1:%d/v1/services/%s" % (d.port, TARGET)
    b0, d0, w0 = machine_busy_s(), proc_cpu_s(d.proc.pid), children_cpu_s()
    t0 = time.monotonic()
    out = subprocess.run(["wrk", "-t1", "-c%d" % WRK_CONNS,
                          "-d%ds" % DURATION, "--latency", url],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         check=True, timeout=DURATION + 30).stdout.decode()
    wall = time.monotonic() - t0
    dcpu = proc_cpu_s(d.proc.pid) - d0
    other = ((machine_busy_s() - b0) - dcpu - (children_cpu_s() - w0)) / wall
    rps, p50, p99, errors, requests = parse_wrk(out)
    return rps, p50, p99, errors, 1e6 * dcpu / requests, max(other, 0.0)


def report(verdicts, med, base):
    """The targets at 10k leases: met or MISSED (latency only if measured)."""
    for what, got, target, unit in verdicts:
        print("target at 10k: %-26s %8.3f %-3s (target <= %g): %s"
              % (what, got, unit, target,
                 "met" if got <= target else "MISSED"))
    if med is not None and 10000 in COUNTS and COUNTS[0] == 1:
        r = med[10000][2] / base
        print("target at 10k: %-26s %8.3f %-3s (target <= %g): %s"
              % ("lookup p99 / 1-lease p99", r, "x", TARGET_P99_RATIO,
                 "met" if r <= TARGET_P99_RATIO else "MISSED"))


def main():
    raise_nofile(who="bench_scale")
    use_wrk = have("wrk", "lookup latency of scale: RSS and restarts only")
    print("bench_scale: berthd %s, pool %s, counts %s, %d wrk rounds x %d s "
          "(-t1 -c%d), %d restarts" % (berthtest.BERTHD, RANGE, COUNTS, ROUNDS,
                                       DURATION, WRK_CONNS, RESTARTS), flush=True)
    daemons = {}
    verdicts = []
    try:
        for n in COUNTS:
            d = berthtest.Berthd(["--log-level", "warn", "--range", RANGE])
            daemons[n] = d
            took = fill(d, n)
            time.sleep(0.5)
            rss_fill = rss_kib(d.proc.pid)
            ready, lookup, stop = [], [], []
            for _ in range(RESTARTS):
                a, b, c = timed_restart(d)
                ready.append(a)
                lookup.append(b)
                stop.append(c)
            time.sleep(0.5)
            rss_loaded = rss_kib(d.proc.pid)
            idle = idle_cpu_pct(d.proc.pid)
            st = d.get("/v1/status").json
            if st["leases"] != n:
                raise RuntimeError("after restart: %d leases, want %d"
                                   % (st["leases"], n))
            dbsize = sum(os.path.getsize(d.db + sfx) for sfx in ("", "-wal")
                         if os.path.exists(d.db + sfx))
            print("N=%-6d fill %.2f s (%.0f acquires/s)  RSS after fill %.1f MiB, "
                  "after restart %.1f MiB  db %.1f MiB  restart to READY "
                  "median %.1f ms %s, to first lookup median %.1f ms; "
                  "exit on SIGTERM median %.1f ms; idle CPU %.1f%%"
                  % (n, took, (n - 1) / took if took else 0, rss_fill / 1024,
                     rss_loaded / 1024, dbsize / 1048576,
                     statistics.median(ready),
                     ["%.1f" % x for x in ready], statistics.median(lookup),
                     statistics.median(stop), idle),
                  flush=True)
            lab = label(n)
            result("scale_rss_mib_" + lab, rss_fill / 1024, "MiB")
            result("scale_rss_restarted_mib_" + lab, rss_loaded / 1024, "MiB")
            if n > 1:
                result("scale_fill_s_" + lab, took, "s")
            result("scale_restart_ms_" + lab, statistics.median(ready), "ms")
            result("scale_restart_lookup_ms_" + lab,
                   statistics.median(lookup), "ms")
            result("scale_idle_cpu_pct_" + lab, idle, "%")
            result("scale_stop_ms_" + lab, statistics.median(stop), "ms")
            full = statistics.median(a + c for a, c in zip(ready, stop))
            result("scale_restart_full_ms_" + lab, full, "ms")
            if n == 10000:
                verdicts += [("RSS after fill", rss_fill / 1024,
                              TARGET_RSS_MIB, "MiB"),
                             ("restart to READY", statistics.median(ready),
                              TARGET_RESTART_MS, "ms"),
                             ("SIGTERM to READY again", full,
                              TARGET_RESTART_MS, "ms")]

        if not use_wrk:
            report(verdicts, None, None)
            return
        # Lookup latency, alternating the daemons round by round.
        lat = {n: [] for n in COUNTS}
        busy = []
        for rnd in range(ROUNDS):
            for n in COUNTS:
                # Another process's burst ruins a round's p99 (this is a
                # 2-core machine): redo such a round, keeping the quietest.
                best = None
                for attempt in range(1 + RETRIES):
                    wait_quiet(QUIET_WAIT)
                    got = wrk_round(daemons[n])
                    if got[3]:
                        raise RuntimeError("wrk against N=%d: %d errors"
                                           % (n, got[3]))
                    if best is None or got[5] < best[5]:
                        best = got
                    if got[5] < NOISY:
                        break
                    print("round %d N=%-6d p99 %.3f ms with %.2f cores of "
                          "other load: %s" % (rnd + 1, n, got[2], got[5],
                                              "again" if attempt < RETRIES
                                              else "keeping the quietest"),
                          flush=True)
                rps, p50, p99, errors, cpu_us, other = best
                lat[n].append((rps, p50, p99, cpu_us))
                busy.append(other)
                print("round %d N=%-6d %8.0f req/s  p50 %.3f ms  p99 %.3f ms"
                      "  berthd CPU %.1f us/req  (other load on the machine "
                      "%.2f cores)" % (rnd + 1, n, rps, p50, p99, cpu_us, other),
                      flush=True)
        med = {n: (statistics.median(x[0] for x in lat[n]),
                   statistics.median(x[1] for x in lat[n]),
                   statistics.median(x[2] for x in lat[n]),
                   statistics.median(x[3] for x in lat[n])) for n in COUNTS}
        for n in COUNTS:
            lab = label(n)
            result("scale_lookup_p50_ms_" + lab, med[n][1], "ms")
            result("scale_lookup_p99_ms_" + lab, med[n][2], "ms")
            result("scale_lookup_rps_" + lab, med[n][0], "req/s")
            result("scale_lookup_cpu_us_" + lab, med[n][3], "us/req")
        if max(busy) > NOISY:
            print("warning: other processes kept up to %.2f cores busy during "
                  "the wrk rounds; the latency figures are noisy" % max(busy))
        base = med[COUNTS[0]][2]
        for n in COUNTS[1:]:
            print("p99 N=%d / N=%d round by round: %s" % (
                n, COUNTS[0], " ".join("%.2f" % (a[2] / b[2]) for a, b
                                       in zip(lat[n], lat[COUNTS[0]]))))
        for n in COUNTS[1:]:
            result("scale_p99_ratio_" + label(n), med[n][2] / base, "x")
            result("scale_cpu_ratio_" + label(n), med[n][3] / med[COUNTS[0]][3],
                   "x")

        report(verdicts, med, base)
    finally:
        for d in daemons.values():
            d.close()
            shutil.rmtree(d.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
