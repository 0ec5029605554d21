/** Socket.IO with the session's token: reconnects after a refresh, acks with timeouts, typed events. */
import { io, type Socket } from "socket.io-client";

import { ApiError, errorFromAck } from "./errors.js";

export interface ServerEvents {
  "task:finished": { taskId: string; task: string; state: string };
  notification: { from: string | null; data: unknown };
  message: { from: string | null; data: unknown };
  "session:revoked": { reason: string };
  "permissions:changed": Record<string, never>;
}

export interface ClientEvents {
  ping: { payload: null; data: "pong" };
  "presence:list": { payload: null; data: { connectedAt: string; userAgent: string | null; current: boolean }[] };
  "message:send": { payload: { to: string; text: string }; data: { deliveredTo: number } };
}

export interface RealtimeEvents extends ServerEvents {
  connect: undefined;
  disconnect: { reason: string };
  /** A refused connection: `message` says why (`token expired`, `authentication required`, …). */
  connect_error: { message: string };
}

/** What the socket needs from the client. */
export interface SessionSource {
  accessToken(): Promise<string | null>;
  refreshAfterDenial(stale: string): Promise<string | null>;
  endedByServer(reason: string): void;
  onTokens(listener: (token: string | null) => void): () => void;
}

export interface RealtimeOptions {
  /** Default timeout of `emitWithAck`, in milliseconds. */
  ackTimeout?: number;
  transports?: ("websocket" | "polling")[];
}

const EXPIRED = "token expired";

export class Realtime {
  readonly socket: Socket;
  private readonly listeners = new Map<string, Set<(payload: never) => void>>();
  private token: string | null = null;
  private closed = false;
  private revokedReason: string | null = null;
  private readonly unsubscribe: () => void;
  private readonly ackTimeout: number;

  constructor(url: string, private readonly session: SessionSource, options: RealtimeOptions = {}) {
    this.ackTimeout = options.ackTimeout ?? 10_000;
    this.socket = io(url, {
      autoConnect: false,
      transports: options.transports ?? ["websocket"],
      // called on every (re)connection, so each carries the freshest token
      auth: (callback) => {
        void this.session.accessToken().then(
          (token) => {
            this.token = token;
            callback({ token: token ?? "" });
          },
          () => callback({ token: "" }),
        );
      },
    });
    this.socket.on("connect", () => this.dispatch("connect", undefined));
    this.socket.on("disconnect", (reason) => {
      this.dispatch("disconnect", { reason });
      // a server-side disconnect is not retried by socket.io-client: reconnect unless the session ended
      if (reason === "io server disconnect" && !this.closed && this.revokedReason === null) this.reconnect();
    });
    this.socket.on("connect_error", (error: Error) => {
      this.dispatch("connect_error", { message: error.message });
      if (error.message === EXPIRED && this.token !== null && !this.closed) {
        const stale = this.token;
        void this.session.refreshAfterDenial(stale).then((fresh) => {
          if (fresh !== null && fresh !== stale) this.reconnect();
        });
      }
    });
    this.socket.on("session:revoked", (payload: { reason: string }) => {
      this.dispatch("session:revoked", payload);
      if (payload.reason === EXPIRED) {
        const stale = this.token;
        if (stale !== null) void this.session.refreshAfterDenial(stale).catch(() => undefined);
      } else {
        this.revokedReason = payload.reason;
        this.session.endedByServer(payload.reason);
      }
    });
    for (const event of ["task:finished", "notification", "message", "permissions:changed"] as const) {
      this.socket.on(event, (payload: unknown) => this.dispatch(event, payload));
    }
    this.unsubscribe = this.session.onTokens((token) => {
      if (token === null) this.close();
      // a refresh: an open connection carries the new token from now on (an attempt under way
      // already waits for it in the auth callback)
      else if (token !== this.token && this.socket.connected && !this.closed) this.reconnect();
    });
    this.socket.connect();
  }

  /** Listen to a server event (typed) or to the connection's own events; returns the unsubscriber. */
  on<E extends keyof RealtimeEvents>(event: E, listener: (payload: RealtimeEvents[E]) => void): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) this.listeners.set(event, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => set.delete(listener as (payload: never) => void);
  }

  /** Wait for the next occurrence of an event. */
  once<E extends keyof RealtimeEvents>(event: E, timeout = this.ackTimeout): Promise<RealtimeEvents[E]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new ApiError({ status: 0, error: "socket_timeout", message: `no ${event} within ${timeout} ms` }));
      }, timeout);
      const off = this.on(event, (payload) => {
        clearTimeout(timer);
        off();
        resolve(payload);
      });
    });
  }

  get connected(): boolean {
    return this.socket.connected;
  }

  /** Emit a client event and resolve with its acknowledged `data`, or throw its ApiError. */
  async emitWithAck<E extends keyof ClientEvents>(
    event: E,
    payload: ClientEvents[E]["payload"],
    options: { timeout?: number } = {},
  ): Promise<ClientEvents[E]["data"]> {
    const timeout = options.timeout ?? this.ackTimeout;
    let ack: unknown;
    try {
      ack = await this.socket.timeout(timeout).emitWithAck(event, payload);
    } catch (cause) {
      throw new ApiError({ status: 0, error: "socket_timeout", message: `no answer to ${event} within ${timeout} ms`, cause });
    }
    const error = errorFromAck(ack);
    if (error !== null) throw error;
    if (typeof ack === "object" && ack !== null && "data" in ack) return (ack as { data: ClientEvents[E]["data"] }).data;
    return ack as ClientEvents[E]["data"];
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.socket.disconnect();
  }

  private reconnect(): void {
    if (this.closed) return;
    if (this.socket.connected) this.socket.disconnect();
    if (!this.socket.active) this.socket.connect();
  }

  private dispatch(event: string, payload: unknown): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        (listener as (payload: unknown) => void)(payload);
      } catch (error) {
        console.error(`a ${event} listener failed`, error);
      }
    }
  }
}
