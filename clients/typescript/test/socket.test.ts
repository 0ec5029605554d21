import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

import { Server, type Socket } from "socket.io";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { ApiError, createClient, memoryStore, type Client, type Realtime } from "../src/index.js";
import { FakeApi } from "./fake.js";

/** A real Socket.IO server that admits tokens it has not been told are expired, like the realtime service. */
let io: Server;
let url: string;
const expired = new Set<string>();
const admitted: string[] = [];
const sockets: Socket[] = [];

beforeEach(async () => {
  const http = createServer();
  io = new Server(http);
  io.use((socket, next) => {
    const token = (socket.handshake.auth as { token?: string }).token ?? "";
    if (token === "") return next(new Error("authentication required"));
    if (expired.has(token)) return next(new Error("token expired"));
    admitted.push(token);
    next();
  });
  io.on("connection", (socket) => {
    sockets.push(socket);
    socket.on("ping", (_payload: unknown, ack: (answer: unknown) => void) => ack("pong"));
    socket.on("presence:list", (_payload: unknown, ack: (answer: unknown) => void) =>
      ack({ code: 403, error: "permission_denied", message: "permission denied", ts: Date.now(), data: null }),
    );
    socket.on("message:send", () => undefined); // never acknowledged
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

const open: { client: Client; rt?: Realtime }[] = [];
afterEach(async () => {
  for (const { client, rt } of open.splice(0)) {
    rt?.close();
    client.dispose();
  }
  expired.clear();
  admitted.length = 0;
  sockets.length = 0;
  await io.close();
});

async function connected(): Promise<{ api: FakeApi; client: Client; rt: Realtime; first: string }> {
  const api = new FakeApi();
  const client = createClient({ baseUrl: "http://api.test", socketUrl: url, store: memoryStore(), locks: null, channel: null, fetch: api.fetch, autoRefresh: false });
  const first = (await client.login("ada", "s3cret!pw")).accessToken;
  const rt = client.socket({ ackTimeout: 300 });
  open.push({ client, rt });
  await rt.once("connect", 5000);
  return { api, client, rt, first };
}

function until(condition: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (condition() ? resolve() : setTimeout(check, 10));
    check();
  });
}

describe("the Socket.IO helper", () => {
  it("connects with the session's token in auth, acks with data, error acks throw, silence times out", async () => {
    const { rt, first } = await connected();
    expect(admitted).toEqual([first]);
    expect(await rt.emitWithAck("ping", null)).toBe("pong");
    await expect(rt.emitWithAck("presence:list", null)).rejects.toMatchObject({ status: 403, error: "permission_denied" });
    const started = Date.now();
    const silent = rt.emitWithAck("message:send", { to: "u2", text: "hi" }, { timeout: 200 });
    await expect(silent).rejects.toBeInstanceOf(ApiError);
    await expect(silent).rejects.toMatchObject({ status: 0, error: "socket_timeout" });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("surfaces the server's typed events", async () => {
    const { rt } = await connected();
    const finished = rt.once("task:finished");
    const changed = rt.once("permissions:changed");
    sockets[0]!.emit("task:finished", { taskId: "t1", task: "multidb.add", state: "SUCCESS" });
    sockets[0]!.emit("permissions:changed", {});
    expect(await finished).toEqual({ taskId: "t1", task: "multidb.add", state: "SUCCESS" });
    expect(await changed).toEqual({});
  });

  it("after the server ends it for an expired token: refreshes once and connects again with the new token", async () => {
    const { api, client, rt, first } = await connected();
    expired.add(first);
    sockets[0]!.emit("session:revoked", { reason: "token expired" });
    sockets[0]!.disconnect(true);
    await until(() => admitted.length === 2);
    const fresh = (await client.current())?.accessToken;
    expect(admitted).toEqual([first, fresh]);
    expect(fresh).not.toBe(first);
    expect(api.count("POST /api/v1/auth/token/refresh")).toBe(1);
    expect(await rt.emitWithAck("ping", null)).toBe("pong");
  });

  it("a connect_error `token expired` refreshes and connects again", async () => {
    const { api, client, rt, first } = await connected();
    expired.add(first);
    rt.socket.disconnect().connect(); // a network blip: the reconnection presents the expired token
    await until(() => admitted.length === 2);
    expect(admitted[1]).toBe((await client.current())?.accessToken);
    expect(api.count("POST /api/v1/auth/token/refresh")).toBe(1);
  });

  it("reconnects with the new token after the client refreshes", async () => {
    const { client, first } = await connected();
    const fresh = await client.refresh(first);
    await until(() => admitted.length === 2);
    expect(admitted).toEqual([first, fresh?.accessToken]);
  });

  it("any other session:revoked ends the session here, and the socket stays closed", async () => {
    const { api, client, rt } = await connected();
    const events: unknown[] = [];
    client.onSession((event) => events.push(event));
    const revoked = rt.once("session:revoked");
    sockets[0]!.emit("session:revoked", { reason: "password_changed" });
    expect(await revoked).toEqual({ reason: "password_changed" });
    await until(() => events.length > 0);
    expect(events).toEqual([{ type: "ended", reason: "password_changed" }]);
    expect(await client.current()).toBeNull();
    expect(rt.connected).toBe(false);
    expect(api.count("POST /api/v1/auth/token/refresh")).toBe(0);
  });

  it("logout closes the socket", async () => {
    const { client, rt } = await connected();
    await client.logout();
    expect(rt.connected).toBe(false);
  });
});
