/** createClient: login, typed calls, single-flight refresh shared across tabs, logout, sockets, uploads. */
import type { paths } from "./generated/api.js";
import { jwtClaims, encryptPassword } from "./crypto.js";
import { ApiError, errorFromBody, networkError } from "./errors.js";
import { defaultStore, type KeyValueStore } from "./store.js";
import { Realtime, type RealtimeOptions, type SessionSource } from "./socket.js";
import type { CallArgs, CallOptions, Data, Method, Operation, PathsWith, Schemas } from "./types.js";
import { abortUpload, isResumable, resumeUpload, upload, type UploadOptions } from "./uploads.js";

/** The minimal LockManager the kit uses (`navigator.locks`). */
export interface Locks {
  request<T>(name: string, options: { ifAvailable?: boolean }, callback: (lock: unknown) => Promise<T>): Promise<T>;
}

/** The minimal BroadcastChannel the kit uses. */
export interface Channel {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  close(): void;
}

export interface ClientOptions {
  /** The API's origin, e.g. `http://127.0.0.1:3000` (paths start with `/api/v1`). */
  baseUrl: string;
  /** The Socket.IO server, e.g. `http://127.0.0.1:3001`. */
  socketUrl?: string;
  /** Device tokens and the session; default localStorage in browsers, memory elsewhere. */
  store?: KeyValueStore;
  /** Prefix of the store's keys and the name of the lock and channel (default `multidb`). */
  namespace?: string;
  fetch?: typeof fetch;
  /** Web Locks (default `navigator.locks`); null: in-process single-flight only. */
  locks?: Locks | null;
  /** Factory of the cross-tab channel (default BroadcastChannel); null: none. */
  channel?: ((name: string) => Channel) | null;
  /** Refresh this long before `exp` (default: 30 s, at most a fifth of the token's lifetime). */
  refreshAheadMs?: number;
  /**
   * Refresh before `exp` (default true): on a timer, and before sending a request whose token is due.
   * Off, the kit refreshes only after an expiry denial (how the tests prove that path).
   */
  autoRefresh?: boolean;
  /** Clock skew tolerated when a gateway 403 is read as an expiry (default 30 s). */
  skewToleranceMs?: number;
}

export interface Session {
  username: string;
  accessToken: string;
  refreshToken: string;
  /** Server time in ms since the epoch (the token's `exp`, `iat`). */
  expiresAt: number;
  issuedAt: number;
}

export type SessionEvent =
  | { type: "login"; session: Session }
  | { type: "refresh"; session: Session }
  | { type: "logout" }
  | { type: "ended"; reason: string };

type ChannelMessage = { type: "session"; session: Session } | { type: "logout"; reason: string };

interface RawOptions extends CallOptionsBase {
  auth?: boolean;
  extraHeaders?: Record<string, string>;
}
interface CallOptionsBase {
  path?: Record<string, string | number>;
  query?: Record<string, unknown>;
  body?: unknown;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

function defaultLocks(): Locks | null {
  const nav = (globalThis as { navigator?: { locks?: Locks } }).navigator;
  return nav?.locks ?? null;
}

function defaultChannel(): ((name: string) => Channel) | null {
  return typeof BroadcastChannel === "undefined" ? null : (name) => new BroadcastChannel(name) as unknown as Channel;
}

export class Client {
  readonly baseUrl: string;
  readonly socketUrl: string | undefined;
  readonly store: KeyValueStore;
  readonly ns: string;
  /** The fetch the kit uses (also for presigned URLs outside browsers). */
  readonly fetchImpl: typeof fetch;
  private readonly locks: Locks | null;
  private readonly channel: Channel | null;
  private readonly refreshAheadMs: number | undefined;
  private readonly autoRefresh: boolean;
  private readonly skewTolerance: number;
  private session: Session | null = null;
  private loaded: Promise<void> | null = null;
  private inflight: Promise<Session | null> | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private skewMs = 0;
  private readonly sessionListeners = new Set<(event: SessionEvent) => void>();
  private readonly tokenListeners = new Set<(token: string | null) => void>();
  private readonly waiters = new Set<() => void>();

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.socketUrl = options.socketUrl;
    this.store = options.store ?? defaultStore();
    this.ns = options.namespace ?? "multidb";
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.locks = options.locks === undefined ? defaultLocks() : options.locks;
    const makeChannel = options.channel === undefined ? defaultChannel() : options.channel;
    this.channel = makeChannel === null ? null : makeChannel(`${this.ns}:session`);
    this.channel?.addEventListener("message", (event) => this.heard(event.data as ChannelMessage));
    this.refreshAheadMs = options.refreshAheadMs;
    this.autoRefresh = options.autoRefresh ?? true;
    this.skewTolerance = options.skewToleranceMs ?? 30_000;
  }

  // ---- calls ---------------------------------------------------------------------------------

  get<P extends PathsWith<"get">>(path: P, ...args: CallArgs<Operation<P, "get">>): Promise<Data<P, "get">> {
    return this.call("get", path, args[0]);
  }
  post<P extends PathsWith<"post">>(path: P, ...args: CallArgs<Operation<P, "post">>): Promise<Data<P, "post">> {
    return this.call("post", path, args[0]);
  }
  put<P extends PathsWith<"put">>(path: P, ...args: CallArgs<Operation<P, "put">>): Promise<Data<P, "put">> {
    return this.call("put", path, args[0]);
  }
  delete<P extends PathsWith<"delete">>(path: P, ...args: CallArgs<Operation<P, "delete">>): Promise<Data<P, "delete">> {
    return this.call("delete", path, args[0]);
  }

  /** Any route: sends the session's token, refreshes before `exp`, retries once after an expiry signal. */
  async call<P extends keyof paths, M extends Method>(
    method: M,
    path: P,
    options?: CallOptions<Operation<P, M>>,
  ): Promise<Data<P, M>> {
    return (await this.authorized(method, path as string, (options ?? {}) as CallOptionsBase)) as Data<P, M>;
  }

  private async authorized(method: string, path: string, options: CallOptionsBase): Promise<unknown> {
    let token = await this.accessToken();
    try {
      return await this.raw(method, path, { ...options, auth: true }, token);
    } catch (error) {
      if (token === null || !(error instanceof ApiError) || !this.signalsExpiry(error, token)) throw error;
      token = await this.refreshAfterDenial(token);
      if (token === null) throw error;
      return await this.raw(method, path, { ...options, auth: true }, token); // exactly one retry
    }
  }

  /** 401 `token_expired`, or the gateway's 403 while the token is at or past `exp` (give or take the skew). */
  private signalsExpiry(error: ApiError, token: string): boolean {
    if (error.status === 401 && error.error === "token_expired") return true;
    if (error.status === 403 && error.error === "gateway_forbidden") {
      const exp = jwtClaims(token).exp;
      return exp !== undefined && this.now() >= exp * 1000 - this.skewTolerance;
    }
    return false;
  }

  private async raw(method: string, path: string, options: RawOptions, token: string | null): Promise<unknown> {
    let resolved = path.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = options.path?.[name];
      if (value === undefined) throw new TypeError(`missing path parameter ${name}`);
      return encodeURIComponent(String(value));
    });
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value === undefined || value === null) continue;
      for (const item of Array.isArray(value) ? value : [value]) query.append(key, String(item));
    }
    if ([...query].length > 0) resolved += `?${query.toString()}`;
    const headers: Record<string, string> = { accept: "application/json", ...options.headers, ...options.extraHeaders };
    if (options.body !== undefined) headers["content-type"] = "application/json";
    if (options.auth === true && token !== null) headers.authorization = `Bearer ${token}`;
    let response: Response;
    try {
      response = await this.fetchImpl(this.baseUrl + resolved, {
        method: method.toUpperCase(),
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: options.signal,
      });
    } catch (cause) {
      throw networkError(cause);
    }
    const text = await response.text();
    let body: unknown = null;
    if (text !== "") {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    if (!response.ok) throw errorFromBody(response.status, body, response.headers);
    if (typeof body === "object" && body !== null && "code" in body && "ts" in body) {
      const envelope = body as { ts: unknown; data?: unknown };
      if (typeof envelope.ts === "number") this.skewMs = envelope.ts - Date.now();
      return envelope.data ?? null;
    }
    return body; // the JWKS, which is not enveloped
  }

  // ---- session -------------------------------------------------------------------------------

  /** Log in: the password RSA-OAEP encrypted with the server's key, the user's device token sent and kept. */
  async login(username: string, password: string): Promise<Session> {
    const key = (await this.raw("get", "/api/v1/auth/keys/public", {}, null)) as Schemas["LoginPublicKey"];
    const sealed = await encryptPassword(key.publicKey, password);
    const deviceKey = `${this.ns}:device:${username}`;
    const deviceToken = (await this.store.get(deviceKey)) ?? undefined;
    const pair = (await this.raw(
      "post",
      "/api/v1/auth/login",
      { body: { username, password: sealed, ...(deviceToken === undefined ? {} : { deviceToken }) } },
      null,
    )) as Schemas["TokenPairPublic"];
    if (pair.deviceToken != null) await this.store.set(deviceKey, pair.deviceToken);
    const session = this.sessionFrom(username, pair);
    await this.adopt(session, true);
    this.emit({ type: "login", session });
    return session;
  }

  /** End the session on the server (access and refresh token, sockets) and here, in every tab. */
  async logout(): Promise<void> {
    await this.ready();
    const token = this.session?.accessToken ?? null;
    try {
      if (token !== null) await this.raw("post", "/api/v1/auth/logout", { auth: true }, token);
    } catch (error) {
      // an expired or already revoked session is over anyway
      if (!(error instanceof ApiError) || ![401, 403].includes(error.status)) throw error;
    } finally {
      await this.drop("logout", true);
    }
  }

  /** The current session (after a reload: the stored one), or null. */
  async current(): Promise<Session | null> {
    await this.ready();
    return this.session;
  }

  onSession(listener: (event: SessionEvent) => void): () => void {
    this.sessionListeners.add(listener);
    return () => this.sessionListeners.delete(listener);
  }

  /** A valid access token: refreshed first when it is due. Null without a session. */
  async accessToken(): Promise<string | null> {
    await this.ready();
    if (this.inflight !== null) await this.inflight.catch(() => null); // a refresh under way: its pair
    const session = this.session;
    if (session === null) return null;
    if (this.autoRefresh && this.now() >= this.refreshAt(session)) {
      const fresh = await this.refresh(session.accessToken);
      return fresh?.accessToken ?? null;
    }
    return session.accessToken;
  }

  /**
   * Refresh once for everybody: one call in this tab (in-process single-flight), one across tabs (a Web
   * Lock, inside which the stored session is read again: a tab that waited adopts the pair another tab
   * just got instead of spending a refresh token already spent).
   */
  refresh(stale?: string): Promise<Session | null> {
    if (this.inflight !== null) return this.inflight;
    const run = async (): Promise<Session | null> => {
      await this.ready();
      const mine = this.session;
      if (stale !== undefined && mine !== null && mine.accessToken !== stale && this.now() < this.refreshAt(mine)) {
        return mine; // another tab's pair reached us through the channel
      }
      const stored = await this.loadStored();
      if (stored !== null && stored.accessToken !== stale && stale !== undefined && this.now() < this.refreshAt(stored)) {
        await this.adopt(stored, false);
        return stored;
      }
      const current = stored ?? this.session;
      if (current === null) return null;
      let pair: Schemas["TokenPairPublic"];
      try {
        pair = (await this.raw(
          "post",
          "/api/v1/auth/token/refresh",
          { extraHeaders: { "x-refresh-token": current.refreshToken } },
          null,
        )) as Schemas["TokenPairPublic"];
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) {
          await this.drop(error.error, true); // the refresh token is spent, revoked or expired
          return null;
        }
        throw error;
      }
      const session = this.sessionFrom(current.username, pair);
      await this.adopt(session, true);
      this.emit({ type: "refresh", session });
      return session;
    };
    const locked = async (): Promise<Session | null> => {
      if (this.locks === null) return run();
      const name = `${this.ns}:refresh`;
      const got = await this.locks.request(name, { ifAvailable: true }, async (lock) => (lock === null ? "busy" : run()));
      if (got !== "busy") return got;
      // another tab holds the lock: it is refreshing. Wait for it, then for its pair to reach us.
      return this.locks.request(name, {}, async () => {
        await this.settle(stale);
        return run();
      });
    };
    this.inflight = locked().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  /** After an expiry signal: a fresh token (refreshed once, whoever asked first), or null. */
  async refreshAfterDenial(stale: string): Promise<string | null> {
    await this.ready();
    if (this.session !== null && this.session.accessToken !== stale) return this.session.accessToken;
    const session = await this.refresh(stale);
    return session?.accessToken ?? null;
  }

  // ---- sockets and uploads -------------------------------------------------------------------

  /** A Socket.IO connection with this session's token (needs `socketUrl`). */
  socket(options: RealtimeOptions = {}): Realtime {
    if (this.socketUrl === undefined) throw new TypeError("createClient({socketUrl}) is needed for sockets");
    const source: SessionSource = {
      accessToken: () => this.accessToken(),
      refreshAfterDenial: (stale) => this.refreshAfterDenial(stale),
      endedByServer: (reason) => void this.drop(reason, true),
      onTokens: (listener) => {
        this.tokenListeners.add(listener);
        return () => this.tokenListeners.delete(listener);
      },
    };
    return new Realtime(this.socketUrl, source, options);
  }

  upload(blob: Blob, options: UploadOptions = {}): Promise<Schemas["FilePublic"]> {
    return upload(this, blob, options);
  }

  resumeUpload(fileId: string, blob: Blob, options: UploadOptions = {}): Promise<Schemas["FilePublic"]> {
    return resumeUpload(this, fileId, blob, options);
  }

  abortUpload(fileId: string): Promise<void> {
    return abortUpload(this, fileId);
  }

  /** Whether the store remembers this upload in parts: choosing its file again resumes it. */
  isResumable(fileId: string): Promise<boolean> {
    return isResumable(this, fileId);
  }

  /** Stop timers and the channel (sockets close through their own `close`). */
  dispose(): void {
    clearTimeout(this.timer);
    this.channel?.close();
  }

  // ---- internals -----------------------------------------------------------------------------

  now(): number {
    return Date.now() + this.skewMs;
  }

  private refreshAt(session: Session): number {
    const lifetime = Math.max(session.expiresAt - session.issuedAt, 0);
    const ahead = this.refreshAheadMs ?? Math.min(30_000, lifetime / 5);
    return session.expiresAt - ahead;
  }

  private sessionFrom(username: string, pair: Schemas["TokenPairPublic"]): Session {
    const claims = jwtClaims(pair.accessToken);
    const issuedAt = claims.iat !== undefined ? claims.iat * 1000 : this.now();
    const expiresAt = claims.exp !== undefined ? claims.exp * 1000 : issuedAt + pair.expiresIn * 1000;
    return { username, accessToken: pair.accessToken, refreshToken: pair.refreshToken, expiresAt, issuedAt };
  }

  private ready(): Promise<void> {
    this.loaded ??= this.loadStored().then((stored) => {
      if (stored !== null && this.session === null) {
        this.session = stored;
        this.schedule();
      }
    });
    return this.loaded;
  }

  private async loadStored(): Promise<Session | null> {
    const text = await this.store.get(`${this.ns}:session`);
    if (text === null) return null;
    try {
      return JSON.parse(text) as Session;
    } catch {
      return null;
    }
  }

  private async adopt(session: Session, announce: boolean): Promise<void> {
    const changed = this.session?.accessToken !== session.accessToken;
    this.session = session;
    this.loaded ??= Promise.resolve();
    await this.store.set(`${this.ns}:session`, JSON.stringify(session));
    if (announce) this.channel?.postMessage({ type: "session", session } satisfies ChannelMessage);
    this.schedule();
    if (changed) for (const listener of this.tokenListeners) listener(session.accessToken);
    for (const wake of this.waiters) wake();
  }

  private async drop(reason: string, announce: boolean): Promise<void> {
    const had = this.session !== null;
    this.session = null;
    this.loaded ??= Promise.resolve();
    clearTimeout(this.timer);
    await this.store.remove(`${this.ns}:session`);
    if (announce) this.channel?.postMessage({ type: "logout", reason } satisfies ChannelMessage);
    for (const listener of this.tokenListeners) listener(null);
    for (const wake of this.waiters) wake();
    if (had) this.emit(reason === "logout" ? { type: "logout" } : { type: "ended", reason });
  }

  private heard(message: ChannelMessage): void {
    if (message.type === "session") {
      if (this.session === null || message.session.expiresAt >= this.session.expiresAt) {
        void this.adopt(message.session, false);
      }
    } else {
      void this.drop(message.reason, false);
    }
  }

  /** Up to a second for another tab's new pair to arrive (by the channel or the shared store). */
  private async settle(stale: string | undefined): Promise<void> {
    const deadline = Date.now() + 1000;
    while (Date.now() < deadline) {
      const stored = await this.loadStored();
      const seen = this.session?.accessToken;
      if ((stored !== null && stored.accessToken !== stale) || (seen !== undefined && seen !== stale)) {
        if (stored !== null && stored.accessToken !== stale && stored.accessToken !== seen) await this.adopt(stored, false);
        return;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, 50);
        this.waiters.add(done);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
      }).finally(() => this.waiters.clear());
    }
  }

  private schedule(): void {
    clearTimeout(this.timer);
    const session = this.session;
    if (!this.autoRefresh || session === null) return;
    const delay = Math.max(this.refreshAt(session) - this.now(), 0);
    this.timer = setTimeout(() => {
      void this.refresh(session.accessToken).catch(() => {
        // offline: try again shortly; requests refresh before sending anyway
        this.timer = setTimeout(() => this.schedule(), 5000);
      });
    }, delay);
    (this.timer as { unref?: () => void }).unref?.();
  }

  private emit(event: SessionEvent): void {
    for (const listener of this.sessionListeners) {
      try {
        listener(event);
      } catch (error) {
        console.error("a session listener failed", error);
      }
    }
  }
}

export function createClient(options: ClientOptions): Client {
  return new Client(options);
}
