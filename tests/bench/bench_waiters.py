#!/usr/bin/env python3
"""bench_waiters: 10,000 parked blocking lookups on one berthd.

Starts berthd (--max-connections 20000), then per round:

  1. opens 10,000 keep-alive connections and waits until berthd has
     accepted them all (berth_connections in /metrics): RSS per idle
     connection;
  2. sends GET /v1/services/NAME?wait=60 on each and waits until
     /v1/status shows "waiters": 10000: RSS per parked waiter, counting the
     connection it holds (the figure a client that parks one lookup costs);
  3. acquires NAME and times from sending the acquire to the last of the
     10,000 waiters having its complete 200 answer (and to the first), and
     how much CPU berthd spent on it.

Memory is berthd's VmRSS only (/proc/PID/status); the kernel's socket
memory (both ends of every loopback connection, /proc/net/sockstat) is
shown for information and not counted. The first round's memory deltas are
the ones reported (later rounds reuse memory freed by the earlier ones);
the wake time is the median over the rounds.

The client is this Python process, epoll-driven: its reading of the 10,000
answers is part of the wake time measured here, so the figure is an upper
bound on berthd's own; berthd's CPU time during the wake is shown beside it.

Environment:
  BERTHD          the daemon (default: the build dir's src/berthd, then PATH)
  BENCH_WAITERS   parked lookups (default 10000)
  BENCH_ROUNDS    rounds (default 3; BENCH_LONG=1: 5)

Prints human output and RESULT lines (RESULT key value unit).
Loopback only; every process started here is ended by pid; temp files are
removed; client sockets close with an RST (SO_LINGER 0), leaving no
TIME_WAIT behind.
"""

import json
import os
import re
import select
import shutil
import socket
import statistics
import struct
import sys
import time

from benchlib import (HZ, berthtest, proc_cpu_s, raise_nofile, result,
                      rss_kib, vm_kib)

LONG = os.environ.get("BENCH_LONG") == "1"
COUNT = int(os.environ.get("BENCH_WAITERS", "10000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5" if LONG else "3"))
WAIT_S = 60
TARGET_KIB_EACH = 10
PAGE = os.sysconf("SC_PAGE_SIZE")
LINGER_RST = struct.pack("ii", 1, 0)


def sock_mem_kib():
    """Kernel memory of all TCP sockets (/proc/net/sockstat "mem", pages)."""
    with open("/proc/net/sockstat") as f:
        m = re.search(r"^TCP:.* mem (\d+)", f.read(), re.M)
    return int(m.group(1)) * PAGE // 1024


def metric(d, name):
    text = d.get("/metrics").body
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1))


def poll_until(what, fn, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.05)


def settle_rss(pid):
    time.sleep(0.3)
    return rss_kib(pid)


def open_conns(d, n):
    """n connected client sockets (blocking connect, then non-blocking)."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
        s.settimeout(10)
        s.connect((d.host, d.port))
        s.setblocking(False)
        socks.append(s)
    return socks


def close_all(socks):
    for s in socks:
        s.close()


def complete(buf):
    """(status, body) if buf holds one complete response, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].decode("latin-1")
    m = re.search(r"(?im)^content-length:\s*(\d+)", head)
    clen = int(m.group(1)) if m else 0
    if len(buf) < end + 4 + clen:
        return None
    return int(head.split(" ", 2)[1]), buf[end + 4:end + 4 + clen]


def one_round(d, rnd, name):
    pid = d.proc.pid
    base_conns = metric(d, "berth_connections")
    rss0, sk0 = settle_rss(pid), sock_mem_kib()

    t = time.monotonic()
    socks = open_conns(d, COUNT)
    poll_until("berthd to accept %d connections" % COUNT,
               lambda: metric(d, "berth_connections") >= base_conns + COUNT)
    t_conn = time.monotonic() - t
    rss1, sk1 = settle_rss(pid), sock_mem_kib()

    req = ("GET /v1/services/%s?wait=%d HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
           % (name, WAIT_S)).encode()
    t = time.monotonic()
    for s in socks:
        if s.send(req) != len(req):
            raise RuntimeError("short send of a waiter request")
    poll_until("%d waiters in /v1/status" % COUNT,
               lambda: d.get("/v1/status").json["waiters"] >= COUNT)
    t_park = time.monotonic() - t
    if d.get("/v1/status").json["waiters"] != COUNT:
        raise RuntimeError("more waiters than sent")
    rss2, sk2 = settle_rss(pid), sock_mem_kib()

    ep = select.epoll()
    byfd = {}
    for s in socks:
        ep.register(s.fileno(), select.EPOLLIN)
        byfd[s.fileno()] = [s, b""]
    # The acquire goes on its own connection, read in the same loop as the
    # waiters, so neither answer waits for the client to read the other.
    acq = open_conns(d, 1)[0]
    ep.register(acq.fileno(), select.EPOLLIN)
    byfd[acq.fileno()] = [acq, b""]
    body = b'{"name": "%s"}' % name.encode()
    acq_req = (b"POST /v1/services HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n"
               b"\r\n%s" % (len(body), body))
    hwm0 = vm_kib(pid, "VmHWM")
    cpu0 = proc_cpu_s(pid)
    t0 = time.monotonic()
    acq.send(acq_req)
    left = COUNT + 1
    t_first = t_ack = None
    answers = []
    while left:
        events = ep.poll(30)
        if not events:
            raise RuntimeError("%d answers missing 30 s after the acquire"
                               % left)
        for fd, _ in events:
            ent = byfd[fd]
            data = ent[0].recv(4096)
            if not data:
                raise RuntimeError("berthd closed a connection")
            ent[1] += data
            r = complete(ent[1])
            if r is None:
                continue
            now = time.monotonic()
            ep.unregister(fd)
            left -= 1
            if ent[0] is acq:
                t_ack = now
                lease = r
            else:
                if t_first is None:
                    t_first = now
                answers.append(r)
    t_last = time.monotonic()
    cpu = proc_cpu_s(pid) - cpu0
    hwm = vm_kib(pid, "VmHWM")
    ep.close()
    acq.close()
    if lease[0] != 201:
        raise RuntimeError("acquire %s: %d %r" % (name, lease[0], lease[1]))
    port = b'"port":%d' % json.loads(lease[1])["port"]
    bad = sum(1 for st, b in answers
              if st != 200 or port not in b.replace(b" ", b""))
    if bad:
        raise RuntimeError("%d waiters got a wrong answer" % bad)
    close_all(socks)
    poll_until("berthd to close the connections",
               lambda: metric(d, "berth_connections") <= base_conns)
    rss3 = settle_rss(pid)

    wake_ms = (t_last - t0) * 1000
    out = {
        "conn_kib": (rss1 - rss0) / COUNT,
        "waiter_kib": (rss2 - rss1) / COUNT,
        "total_kib": (rss2 - rss0) / COUNT,
        "wake_ms": wake_ms,
        "peak_kib": (max(hwm, hwm0) - rss0) / COUNT if hwm > hwm0 else None,
        "ack_ms": (t_ack - t0) * 1000,
        "first_ms": (t_first - t0) * 1000,
        "cpu_ms": cpu * 1000,
        "rss_after_mib": rss3 / 1024,
    }
    print("round %d: RSS %.1f MiB idle, %.1f MiB with %d connections "
          "(connect %.2f s), %.1f MiB with them parked (park %.2f s), "
          "%.1f MiB after they closed" % (rnd, rss0 / 1024, rss1 / 1024,
                                          COUNT, t_conn, rss2 / 1024, t_park,
                                          rss3 / 1024))
    print("         per connection %.2f KiB, per parked lookup on it %.2f KiB "
          "more, together %.2f KiB; kernel TCP socket memory (both ends, "
          "not counted) %.1f MiB -> %.1f MiB -> %.1f MiB"
          % (out["conn_kib"], out["waiter_kib"], out["total_kib"],
             sk0 / 1024, sk1 / 1024, sk2 / 1024))
    print("         acquire answered in %.1f ms; first waiter answered at "
          "%.1f ms, last at %.1f ms; berthd CPU %.0f ms meanwhile; peak RSS "
          "%.1f MiB%s" % (out["ack_ms"], out["first_ms"], wake_ms,
                          out["cpu_ms"], hwm / 1024,
                          " (%.2f KiB per waiter over idle)" % out["peak_kib"]
                          if out["peak_kib"] is not None else
                          " (not above an earlier peak)"),
          flush=True)
    return out


def main():
    raise_nofile(COUNT + 100, "bench_waiters")
    print("bench_waiters: berthd %s, %d waiters, %d rounds"
          % (berthtest.BERTHD, COUNT, ROUNDS), flush=True)
    d = berthtest.Berthd(["--log-level", "warn",
                          "--max-connections", str(max(20000, COUNT + 100))])
    try:
        with open("/proc/%d/limits" % d.proc.pid) as f:
            lim = re.search(r"Max open files\s+(\d+)", f.read()).group(1)
        if int(lim) < COUNT + 50:
            sys.exit("bench_waiters: berthd's open files limit %s < %d"
                     % (lim, COUNT + 50))
        for i in range(20):     # warm up: the request path's first allocations
            d.get("/v1/services/warmup-%d" % i)
        rounds = [one_round(d, r + 1, "wanted-%d" % (r + 1))
                  for r in range(ROUNDS)]
    finally:
        d.close()
        shutil.rmtree(d.tmp, ignore_errors=True)

    first = rounds[0]
    wake = statistics.median(r["wake_ms"] for r in rounds)
    print("memory per waiter (connection + parked lookup, first round) "
          "%.2f KiB (target <= %d KiB): %s"
          % (first["total_kib"], TARGET_KIB_EACH,
             "met" if first["total_kib"] <= TARGET_KIB_EACH else "MISSED"))
    print("wake of %d waiters, median of %d rounds: %.1f ms %s"
          % (COUNT, ROUNDS, wake, ["%.1f" % r["wake_ms"] for r in rounds]))
    result("waiters_count", COUNT, "waiters")
    result("waiter_kib_each", first["total_kib"], "KiB")
    result("waiter_conn_kib_each", first["conn_kib"], "KiB")
    result("waiter_park_kib_each", first["waiter_kib"], "KiB")
    result("waiters_wake_ms", wake, "ms")
    result("waiters_first_ms",
           statistics.median(r["first_ms"] for r in rounds), "ms")
    result("waiters_acquire_ms",
           statistics.median(r["ack_ms"] for r in rounds), "ms")
    result("waiters_wake_cpu_ms",
           statistics.median(r["cpu_ms"] for r in rounds), "ms")
    result("waiters_rss_after_mib", first["rss_after_mib"], "MiB")
    if first["peak_kib"] is not None:
        result("waiter_peak_kib_each", first["peak_kib"], "KiB")


if __name__ == "__main__":
    main()
