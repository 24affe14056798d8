// Types for berth, the Node.js client of berthd (index.js).

import { EventEmitter } from "node:events";

/** berthd's address when neither an explicit one nor BERTH_ADDR is given. */
export const DEFAULT_ADDR: string;

/** An error answer from berthd, or a failure to reach it. */
export class BerthError extends Error {
  constructor(code: string, message: string, status?: number, options?: { cause?: unknown });
  /** The API's error code (name_taken, not_found, ...), or "unreachable", "timeout", "invalid_addr", "http_error". */
  code: string;
  /** The HTTP status; 0 when berthd did not answer. */
  status: number;
}

/** Nothing answered at the address: "cannot reach berthd at ADDR: WHY (is berthd running?)". */
export class BerthUnreachableError extends BerthError {
  constructor(addr: string, why: string, cause?: unknown);
  code: "unreachable";
  addr: string;
}

/** A lease as berthd describes it (docs/api.md, the lease object). */
export interface LeaseInfo {
  name: string;
  port: number;
  proto: "tcp" | "udp" | "both";
  host: string;
  ttl: number;
  expires_at: string | null;
  pid: number | null;
  meta: Record<string, string>;
  created_at: string;
  renewed_at: string;
  uid: number | null;
  ready: boolean | null;
  publish: boolean;
}

/** One node's published lease, in the cluster's view. */
export interface Instance {
  name: string;
  node: string;
  host: string;
  port: number;
  proto: "tcp" | "udp" | "both";
  meta: Record<string, string>;
  ready: boolean | null;
}

export interface ServiceList {
  services: LeaseInfo[];
  index: number;
}

export interface ClusterList {
  services: Instance[];
  index: number;
  stale: boolean;
}

export interface ClusterLookup {
  name: string;
  instances: Instance[];
  index: number;
  stale: boolean;
}

export interface ClientOptions {
  /** "HOST:PORT", "[V6]:PORT" or "unix:/path"; default BERTH_ADDR, else DEFAULT_ADDR. */
  addr?: string;
  /** Reuse connections (an http.Agent with keepAlive); default false. */
  keepAlive?: boolean;
  /** Seconds a request may take beyond its wait; default 10. */
  timeout?: number;
}

export interface AcquireOptions {
  port?: number;
  proto?: "tcp" | "udp" | "both";
  ttl?: number;
  pid?: number;
  meta?: Record<string, string>;
  publish?: boolean;
  host?: string;
  /** A lapsed lease's token: take the name (and its port) back. */
  token?: string;
  /** Renew in the background and release on exit and on SIGINT/SIGTERM; default true. */
  hold?: boolean;
}

export interface LookupOptions {
  /** Seconds (0-300) to wait for the name to be registered. */
  wait?: number;
  /** Wait for the lease to be served too (something listens on its port). */
  ready?: boolean;
  /** Ask the cluster's view (berthd --cluster). */
  cluster?: boolean;
}

export interface WatchOptions {
  /** Start after this index instead of with the list as it is now. */
  index?: number;
  /** Seconds each blocking query may last (1-300); default 60. */
  wait?: number;
  cluster?: boolean;
  /** Ends the iteration after the query in flight. */
  signal?: AbortSignal;
}

export interface RequestOptions {
  body?: unknown;
  token?: string;
  wait?: number;
}

export interface Answer {
  status: number;
  index: number;
  body: any;
}

/** A lease from acquire(): the fields of LeaseInfo (merged in below), its token. */
export interface Lease extends LeaseInfo {}

/** A lease from acquire(), renewed in the background while held. */
export class Lease extends EventEmitter {
  token: string;
  /** Whether it is still renewed and released on exit. */
  readonly held: boolean;
  renew(ttl?: number): Promise<this>;
  /** Stop renewing and release (once); a lease already gone is not an error. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
  toJSON(): LeaseInfo & { token: string };
  on(event: "renewed" | "reclaimed", listener: (lease: Lease) => void): this;
  on(event: "lost" | "renew-failed", listener: (err: BerthError) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class Client {
  constructor(options?: ClientOptions);
  readonly addr: string;
  request(method: string, path: string, options?: RequestOptions): Promise<Answer>;
  acquire(name: string, options?: AcquireOptions): Promise<Lease>;
  lookup(name: string, options?: LookupOptions & { cluster?: false }): Promise<LeaseInfo>;
  lookup(name: string, options: LookupOptions & { cluster: true }): Promise<ClusterLookup>;
  list(options?: { cluster?: false }): Promise<ServiceList>;
  list(options: { cluster: true }): Promise<ClusterList>;
  watch(options?: WatchOptions & { cluster?: false }): AsyncGenerator<ServiceList, void, undefined>;
  watch(options: WatchOptions & { cluster: true }): AsyncGenerator<ClusterList, void, undefined>;
  renew(name: string, token: string, ttl?: number): Promise<LeaseInfo>;
  release(name: string, token: string): Promise<void>;
  revoke(name: string): Promise<void>;
  /** Close keep-alive connections. */
  close(): void;
}

// The module functions: the same calls on a Client for BERTH_ADDR.
export const acquire: Client["acquire"];
export const lookup: Client["lookup"];
export const list: Client["list"];
export const watch: Client["watch"];
export const renew: Client["renew"];
export const release: Client["release"];
export const revoke: Client["revoke"];

/** A socket passed by `berth run --fd` or systemd: server.listen(handle). */
export interface ListenFd {
  fd: number;
  name: string;
}

export function listenFds(options?: { unsetEnv?: boolean }): ListenFd[];
