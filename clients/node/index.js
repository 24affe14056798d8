// berth: a client for berthd's HTTP API (docs/api.md), for Node 18 or
// later, with node:http only. A Client talks to one address; the module
// functions use a Client for BERTH_ADDR (read at each call).

import http from "node:http";
import os from "node:os";
import { EventEmitter } from "node:events";

// `await using` looks this symbol up; Node 18 and 20 may lack it.
Symbol.asyncDispose ??= Symbol.for("Symbol.asyncDispose");

export const DEFAULT_ADDR = "127.0.0.1:62893";
const WAIT_MAX = 300;           // berthd holds a blocking query at most this
const TIMEOUT = 10;             // seconds a request may take beyond its wait
const SIGNALS = ["SIGINT", "SIGTERM"];

// An error answer from berthd (code and status as the API gives them),
// or a failure to reach it (code "unreachable" or "timeout", status 0).
export class BerthError extends Error {
  constructor(code, message, status = 0, options) {
    super(message, options);
    this.name = "BerthError";
    this.code = code;
    this.status = status;
  }
}

// berthd is not there: nothing listens at the address, or it did not answer.
export class BerthUnreachableError extends BerthError {
  constructor(addr, why, cause) {
    super("unreachable", `cannot reach berthd at ${addr}: ${why} ` +
          "(is berthd running?)", 0, { cause });
    this.name = "BerthUnreachableError";
    this.addr = addr;
  }
}

// How a system error reads in the message, as berth(1) says it.
const WHY = {
  ECONNREFUSED: "connection refused",
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  ECONNRESET: "connection reset by peer",
  EHOSTUNREACH: "no route to host",
  ENOTFOUND: "unknown host",
};

// "unix:/path", "[v6]:port" or "host:port" as http.request options.
function parseAddr(addr) {
  if (addr.startsWith("unix:")) {
    if (addr.length === 5) throw new BerthError("invalid_addr", `bad address '${addr}': no socket path`);
    return { socketPath: addr.slice(5) };
  }
  let m = /^\[([^\]]+)\]:(\d+)$/.exec(addr) ?? /^([^:[\]]+):(\d+)$/.exec(addr);
  if (!m || +m[2] < 1 || +m[2] > 65535) {
    throw new BerthError("invalid_addr", `bad address '${addr}': want HOST:PORT, [V6]:PORT or unix:/path`);
  }
  return { host: m[1], port: +m[2] };
}

const clampWait = (w) => Math.max(0, Math.min(WAIT_MAX, Math.floor(w ?? 0)));

export class Client {
  // addr: as BERTH_ADDR takes it; an explicit one wins over the
  // environment. keepAlive: reuse connections (an http.Agent of our own).
  constructor({ addr, keepAlive = false, timeout = TIMEOUT } = {}) {
    this.addr = addr || process.env.BERTH_ADDR || DEFAULT_ADDR;
    this.target = parseAddr(this.addr);
    this.timeout = timeout;
    this.agent = keepAlive ? new http.Agent({ keepAlive: true }) : false;
  }

  // One request; resolves to { status, index, body } (body decoded JSON,
  // or null), rejects with a BerthError for an answer outside 2xx.
  request(method, path, { body, token, wait = 0 } = {}) {
    const headers = { Host: this.target.socketPath ? "localhost" : hostHeader(this.target) };
    let data;
    if (body !== undefined) {
      data = Buffer.from(JSON.stringify(body));
      headers["Content-Type"] = "application/json";
      headers["Content-Length"] = data.length;
    } else if (method === "POST") {
      headers["Content-Length"] = 0;
    }
    if (token) headers.Authorization = `Bearer ${token}`;
    const limit = (wait + this.timeout) * 1000;
    return new Promise((resolve, reject) => {
      const req = http.request({ ...this.target, method, path, headers, agent: this.agent }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("error", (e) => reject(this.unreachable(e)));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json = null;
          try {
            json = text ? JSON.parse(text) : null;
          } catch {
            // not berthd's JSON: said below if it matters
          }
          const status = res.statusCode;
          if (status >= 200 && status < 300) {
            resolve({ status, index: Number(res.headers["x-berth-index"] ?? 0), body: json });
          } else if (json?.error?.code) {
            reject(new BerthError(json.error.code, json.error.message, status));
          } else {
            reject(new BerthError("http_error", `${this.addr} answered ${status} ` +
                                  "without a berthd error: is it berthd?", status));
          }
        });
      });
      req.setTimeout(limit, () => {
        req.destroy(new BerthError("timeout", `berthd at ${this.addr} did not answer ` +
                                   `${method} ${path} within ${limit / 1000} s`));
      });
      req.on("error", (e) => reject(e instanceof BerthError ? e : this.unreachable(e)));
      req.end(data);
    });
  }

  unreachable(e) {
    return new BerthUnreachableError(this.addr, WHY[e.code] ?? e.message, e);
  }

  // Lease a port under name. opts: port, proto, ttl, pid, meta, publish,
  // host, token (a lapsed lease's, to take it back), hold (default true:
  // renew in the background and release on exit, see Lease).
  async acquire(name, opts = {}) {
    const { token, hold = true, ...fields } = opts;
    const body = { name };
    for (const k of ["port", "proto", "ttl", "pid", "meta", "publish", "host"]) {
      if (fields[k] !== undefined) body[k] = fields[k];
    }
    const r = await this.request("POST", "/v1/services", { body, token });
    return new Lease(this, r.body, body, hold);
  }

  // The lease of name. wait: seconds to wait for it to be registered (with
  // ready, for it to be served too). cluster: ask the cluster's view.
  async lookup(name, { wait = 0, ready = false, cluster = false } = {}) {
    const w = clampWait(wait);
    const q = [];
    if (w > 0 || ready) q.push(`wait=${w}`);
    if (ready) q.push("ready=1");
    const base = cluster ? "/v1/cluster/services/" : "/v1/services/";
    const path = base + encodeURIComponent(name) + (q.length ? `?${q.join("&")}` : "");
    return (await this.request("GET", path, { wait: w })).body;
  }

  // The live leases: { services, index } (the cluster's: also stale).
  async list({ cluster = false } = {}) {
    return (await this.request("GET", cluster ? "/v1/cluster/services" : "/v1/services")).body;
  }

  // The list now, then again each time it changes: an async iterator over
  // { services, index }. index: start after this index instead of with
  // the list now. wait: seconds each blocking query may last.
  async *watch({ index, wait = 60, cluster = false, signal } = {}) {
    const base = cluster ? "/v1/cluster/services" : "/v1/services";
    let last = index;
    if (last === undefined) {
      const now = await this.list({ cluster });
      last = now.index;
      yield now;
    }
    const w = Math.max(1, clampWait(wait));
    while (!signal?.aborted) {
      const r = await this.request("GET", `${base}?index=${last}&wait=${w}`, { wait: w });
      if (signal?.aborted) return;
      if (r.body.index !== last) {
        last = r.body.index;
        yield r.body;
      }
    }
  }

  // Renew name's lease for ttl seconds (its own TTL when undefined).
  async renew(name, token, ttl) {
    const body = ttl === undefined ? undefined : { ttl };
    return (await this.request("POST", `/v1/services/${encodeURIComponent(name)}/renew`,
                               { body, token })).body;
  }

  // Give the lease back: its port is free at once.
  async release(name, token) {
    await this.request("DELETE", `/v1/services/${encodeURIComponent(name)}`, { token });
  }

  // End name's lease without its token (root or berthd's own user only).
  async revoke(name) {
    await this.request("DELETE", `/v1/services/${encodeURIComponent(name)}?force=1`);
  }

  // Close the keep-alive connections, if any.
  close() {
    if (this.agent) this.agent.destroy();
  }
}

function hostHeader({ host, port }) {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

// ---- holding a lease --------------------------------------------------

const held = new Set();         // the leases being held, for exit and signals

// A lease acquired with acquire(). Its fields are the API's lease object
// (name, port, proto, host, ttl, expires_at, pid, meta, ready, publish,
// token, ...). While held, a lease with a TTL is renewed every third of
// it; a renewal that finds it lapsed takes it back with its token, as
// `berth run` does. Events: "renewed", "reclaimed" (lease), "lost" (err:
// released, revoked or taken by another), "renew-failed" (err: berthd
// did not answer; retried). "reclaimed", "lost" and "renew-failed" are
// said on stderr when nothing listens for them.
export class Lease extends EventEmitter {
  #client;
  #request;
  #timer = null;
  #state = "ok";        // ok, failing (berthd silent), gone (lapsed), lost, closed

  constructor(client, fields, request, hold) {
    super();
    Object.assign(this, fields);
    this.#client = client;
    this.#request = request;
    if (hold) {
      held.add(this);
      watchProcess();
      this.#schedule();
    }
  }

  get held() {
    return held.has(this);
  }

  #schedule() {
    if (!held.has(this) || !(this.ttl > 0)) return;
    this.#timer = setTimeout(() => this.#renewNow(), (this.ttl * 1000) / 3);
    this.#timer.unref();
  }

  #say(event, arg, text) {
    if (this.listenerCount(event) > 0) this.emit(event, arg);
    else process.stderr.write(`berth: ${text}\n`);
  }

  async #renewNow() {
    try {
      await this.#renewOrReclaim();
    } finally {
      this.#schedule();
    }
  }

  async #renewOrReclaim() {
    let err;
    try {
      const l = await this.#client.renew(this.name, this.token);
      if (!held.has(this)) return;
      Object.assign(this, l);
      if (this.#state !== "ok") this.#say("renewed", this, `renewed ${this.name} again`);
      else this.emit("renewed", this);
      this.#state = "ok";
      return;
    } catch (e) {
      err = e;
    }
    if (!held.has(this)) return;
    if (err.code === "not_found") {
      try {
        const l = await this.#client.request("POST", "/v1/services", {
          body: { ...this.#request, port: this.port }, token: this.token });
        if (!held.has(this)) {
          await this.#client.release(this.name, this.token).catch(() => {});
          return;
        }
        Object.assign(this, l.body);
        this.#state = "ok";
        this.#say("reclaimed", this, `the lease on ${this.name} had lapsed; ` +
                  `reclaimed it (port ${this.port})`);
        return;
      } catch (e) {
        err = e;
      }
      if (err.code !== "bad_token" && err.code !== "name_taken") {
        if (this.#state !== "gone") {
          this.#say("renew-failed", err, `the lease on ${this.name} has ended and ` +
                    `cannot be taken again yet, will retry: ${err.message}`);
        }
        this.#state = "gone";
        return;
      }
    }
    if (err.code === "bad_token" || err.code === "name_taken") {
      this.#lose();
      this.#say("lost", err, `${this.name}: the lease was released, revoked or ` +
                `taken by another holder; no longer renewing it: ${err.message}`);
      return;
    }
    if (this.#state !== "failing") {
      this.#say("renew-failed", err, `cannot renew ${this.name}, will retry: ${err.message}`);
    }
    this.#state = "failing";
  }

  #lose() {
    this.#state = "lost";
    clearTimeout(this.#timer);
    held.delete(this);
    watchProcess();
  }

  // Renew now, for ttl seconds (the lease's own TTL when undefined).
  async renew(ttl) {
    Object.assign(this, await this.#client.renew(this.name, this.token, ttl));
    return this;
  }

  // Stop renewing and release the lease (once; later calls do nothing).
  // A lease already gone (lapsed, revoked) is not an error here.
  async close() {
    if (this.#state === "closed") return;
    const lost = this.#state === "lost";
    this.#state = "closed";
    clearTimeout(this.#timer);
    held.delete(this);
    watchProcess();
    if (lost) return;
    try {
      await this.#client.release(this.name, this.token);
    } catch (e) {
      if (e.code !== "not_found" && e.code !== "bad_token") throw e;
    }
  }

  [Symbol.asyncDispose]() {
    return this.close();
  }

  toJSON() {
    const o = {};
    for (const k of Object.keys(this)) if (!k.startsWith("_")) o[k] = this[k];
    return o;
  }
}

// While a lease is held: release it when the event loop runs dry
// (beforeExit), and on SIGINT or SIGTERM when nothing else listens for
// the signal. Node's default for those is to die at once without
// releasing; ours releases every held lease, stops listening and sends
// the signal again, so that the process ends by it, as it would have
// without berth (a shell sees 130 or 143; systemd a clean stop). With a
// listener of the program's own, the program decides: close the lease
// there.
let watching = false;

function watchProcess() {
  if (held.size > 0 && !watching) {
    watching = true;
    process.on("beforeExit", onBeforeExit);
    for (const s of SIGNALS) process.on(s, onSignal);
  } else if (held.size === 0 && watching) {
    watching = false;
    process.off("beforeExit", onBeforeExit);
    for (const s of SIGNALS) process.off(s, onSignal);
  }
}

function onBeforeExit() {
  closeAll();
}

function closeAll() {
  const all = [...held];
  return Promise.allSettled(all.map((l) => l.close()));
}

async function onSignal(sig) {
  if (process.listenerCount(sig) > 1) return;
  // Not for ever: berthd may be gone too.
  const bound = new Promise((r) => setTimeout(r, 3000).unref());
  await Promise.race([closeAll(), bound]);
  held.clear();
  watchProcess();
  process.kill(process.pid, sig);
  // The default action ends the process at once; should the signal be
  // caught after all (a listener added meanwhile), end as the shell
  // would have seen it.
  setTimeout(() => process.exit(128 + os.constants.signals[sig]), 1000);
}

// ---- the module functions: a Client for BERTH_ADDR -----------------------

let shared = null;

function client() {
  const addr = process.env.BERTH_ADDR || DEFAULT_ADDR;
  if (shared?.addr !== addr) shared = new Client({ addr });
  return shared;
}

export const acquire = (name, opts) => client().acquire(name, opts);
export const lookup = (name, opts) => client().lookup(name, opts);
export const list = (opts) => client().list(opts);
export const watch = (opts) => client().watch(opts);
export const renew = (name, token, ttl) => client().renew(name, token, ttl);
export const release = (name, token) => client().release(name, token);
export const revoke = (name) => client().revoke(name);

// The sockets `berth run --fd` (or systemd) passed in: [{ fd, name }],
// each usable as server.listen(handle). Empty unless LISTEN_PID is this
// process. With unsetEnv, LISTEN_* are removed (children do not see them).
export function listenFds({ unsetEnv = false } = {}) {
  const env = process.env;
  let out = [];
  if (env.LISTEN_PID === String(process.pid)) {
    const n = Number.parseInt(env.LISTEN_FDS ?? "", 10);
    const names = (env.LISTEN_FDNAMES ?? "").split(":");
    if (n > 0) out = Array.from({ length: n }, (_, i) => ({ fd: 3 + i, name: names[i] || "unknown" }));
  }
  if (unsetEnv) {
    delete env.LISTEN_PID;
    delete env.LISTEN_FDS;
    delete env.LISTEN_FDNAMES;
  }
  return out;
}
