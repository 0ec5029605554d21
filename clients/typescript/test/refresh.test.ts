import { afterEach, describe, expect, it } from "vitest";

import { createClient, memoryStore, type Client, type ClientOptions } from "../src/index.js";
import { FakeApi, FakeLocks } from "./fake.js";

const clients: Client[] = [];
function make(api: FakeApi, options: Partial<ClientOptions> = {}): Client {
  const client = createClient({ baseUrl: "http://api.test", store: memoryStore(), locks: null, channel: null, fetch: api.fetch, ...options });
  clients.push(client);
  return client;
}
/** A client of a fresh fake API, logged in as ada. */
async function loggedIn(options: Partial<ClientOptions> = {}) {
  const api = new FakeApi();
  const client = make(api, options);
  return { api, client, session: await client.login("ada", "s3cret!pw") };
}
afterEach(() => {
  for (const client of clients.splice(0)) client.dispose();
});


describe("retry once after an expiry signal", () => {
  it("refreshes and retries after the backend's 401 token_expired", async () => {
    const { api, client, session } = await loggedIn({ autoRefresh: false });
    const server = api.clock;
    api.clock = () => server() + 10_000; // the server's clock says expired; the kit's does not
    api.calls.length = 0;
    expect(await client.get("/api/v1/auth/user/info")).toMatchObject({ username: "ada" });
    expect(api.calls).toEqual(["GET /api/v1/auth/user/info", "POST /api/v1/auth/token/refresh", "GET /api/v1/auth/user/info"]);
    expect((await client.current())?.accessToken).not.toBe(session.accessToken);
  });

  it("reads the gateway's 403 as expiry when the token is within the skew tolerance of exp", async () => {
    const api = new FakeApi();
    api.expiry = "gateway_forbidden";
    const client = make(api, { autoRefresh: false, refreshAheadMs: 0, skewToleranceMs: 30_000 });
    const session = await client.login("ada", "s3cret!pw");
    const now = Date.now;
    try {
      Date.now = () => session.expiresAt - 10_000 - (client as unknown as { skewMs: number }).skewMs;
      api.clock = () => session.expiresAt / 1000 + 1; // the gateway's clock is ahead
      api.calls.length = 0;
      expect(await client.get("/api/v1/auth/user/info")).toMatchObject({ username: "ada" });
    } finally {
      Date.now = now;
    }
    expect(api.calls).toEqual(["GET /api/v1/auth/user/info", "POST /api/v1/auth/token/refresh", "GET /api/v1/auth/user/info"]);
  });

  it("does not refresh on a gateway 403 while the token is still valid: that is a permission denied", async () => {
    const { api, client } = await loggedIn();
    api.revoked.add([...api.refreshTokens.values()][0]!.family); // the authorizer says No for another reason
    api.calls.length = 0;
    await expect(client.get("/api/v1/auth/user/info")).rejects.toMatchObject({ status: 403, error: "gateway_forbidden" });
    expect(api.calls).toEqual(["GET /api/v1/auth/user/info"]);
  });

  it("does not refresh on the function's own 403", async () => {
    const { api, client } = await loggedIn();
    api.calls.length = 0;
    await expect(client.get("/api/v1/roles")).rejects.toMatchObject({ status: 403, error: "permission_denied" });
    expect(api.calls).toEqual(["GET /api/v1/roles"]);
  });

  it("retries exactly once: a second expiry signal is thrown", async () => {
    const { api, client } = await loggedIn({ autoRefresh: false });
    const server = api.clock;
    api.clock = () => server() + 10_000;
    const issue = api.issue.bind(api);
    api.issue = (family) => issue(family, -5); // every new token is born expired
    api.calls.length = 0;
    await expect(client.get("/api/v1/auth/user/info")).rejects.toMatchObject({ status: 401, error: "token_expired" });
    expect(api.calls).toEqual(["GET /api/v1/auth/user/info", "POST /api/v1/auth/token/refresh", "GET /api/v1/auth/user/info"]);
  });
});

describe("refresh before exp", () => {
  it("refreshes before sending when the token is due (30 s ahead, at most a fifth of its life)", async () => {
    const { api, client, session } = await loggedIn();
    const now = Date.now;
    try {
      Date.now = () => session.expiresAt - 31_000;
      api.calls.length = 0;
      await client.get("/api/v1/auth/user/info");
      expect(api.calls).toEqual(["GET /api/v1/auth/user/info"]);
      Date.now = () => session.expiresAt - 29_000;
      await client.get("/api/v1/auth/user/info");
      expect(api.calls.slice(1)).toEqual(["POST /api/v1/auth/token/refresh", "GET /api/v1/auth/user/info"]);
    } finally {
      Date.now = now;
    }
  });

  it("refreshes on a timer, without any request", async () => {
    const api = new FakeApi();
    api.ttl = 1; // refresh ahead is a fifth of the lifetime: 200 ms
    const client = make(api);
    const events: string[] = [];
    client.onSession((event) => events.push(event.type));
    await client.login("ada", "s3cret!pw");
    await new Promise<void>((resolve) => client.onSession((event) => event.type === "refresh" && resolve()));
    expect(events).toEqual(["login", "refresh"]);
    expect(api.count("POST /api/v1/auth/token/refresh")).toBeGreaterThanOrEqual(1);
  });

  it("ends the session when the refresh token is refused", async () => {
    const { api, client } = await loggedIn({ autoRefresh: false });
    for (const issued of api.refreshTokens.values()) issued.spent = true;
    const events: unknown[] = [];
    client.onSession((event) => events.push(event));
    await expect(client.refresh()).resolves.toBeNull();
    expect(events).toEqual([{ type: "ended", reason: "refresh_token_reused" }]);
    expect(await client.current()).toBeNull();
  });
});

describe("single-flight refresh", () => {
  it("in one tab: ten calls with an expired token make one refresh", async () => {
    const { api, client, session } = await loggedIn({ autoRefresh: false });
    const now = Date.now;
    try {
      Date.now = () => session.expiresAt + 1000;
      api.clock = () => Date.now() / 1000;
      (client as unknown as { skewMs: number }).skewMs = 0;
      const answers = await Promise.all(Array.from({ length: 10 }, () => client.get("/api/v1/auth/user/info")));
      expect(answers).toHaveLength(10);
    } finally {
      Date.now = now;
    }
    expect(api.count("POST /api/v1/auth/token/refresh")).toBe(1);
    expect(api.revoked.size).toBe(0);
  });

  it.each([
    ["a channel", false],
    ["a shared store", true],
  ])("across tabs: a Web Lock and %s, one refresh, no spent token presented, both keep the session", async (_, shared) => {
    const api = new FakeApi();
    const locks = new FakeLocks();
    const store = memoryStore();
    const channel = (name: string) => new BroadcastChannel(name) as never;
    // two tabs, one lock manager: they share either a channel (each its own memory) or a store (no channel)
    const tab = shared ? { store, channel: null } : { channel };
    const a = make(api, { locks, ...tab, autoRefresh: false, namespace: `twotabs${shared}` });
    const b = make(api, { locks, ...tab, autoRefresh: false, namespace: `twotabs${shared}` });
    const session = await a.login("ada", "s3cret!pw");
    await new Promise<void>((resolve) => {
      const poll = async () => ((await b.current())?.accessToken === session.accessToken ? resolve() : setTimeout(poll, 5));
      void poll();
    });
    const now = Date.now;
    try {
      Date.now = () => session.expiresAt + 1000;
      api.clock = () => Date.now() / 1000;
      for (const c of [a, b]) (c as unknown as { skewMs: number }).skewMs = 0;
      const answers = await Promise.all([a, b, a, b].map((tab) => tab.get("/api/v1/auth/user/info")));
      expect(answers).toHaveLength(4);
    } finally {
      Date.now = now;
    }
    expect(api.count("POST /api/v1/auth/token/refresh")).toBe(1);
    expect(api.revoked.size).toBe(0); // nobody presented the spent refresh token
    expect((await a.current())?.accessToken).toBe((await b.current())?.accessToken);
    expect(locks.granted).toBeGreaterThanOrEqual(2); // the second tab waited for the lock
  });
});
