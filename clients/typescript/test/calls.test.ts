import { describe, expect, expectTypeOf, it } from "vitest";

import { createClient, memoryStore, type Schemas } from "../src/index.js";
import { FakeApi } from "./fake.js";

function recorder() {
  const seen: { method: string; url: string; body: string | null; headers: Headers }[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const request = new Request(input, init);
    seen.push({ method: request.method, url: request.url, body: init?.body ? String(init.body) : null, headers: request.headers });
    if (request.url.endsWith("/jwks.json")) return Response.json({ keys: [{ kid: "k1" }] });
    return Response.json({ code: 200, message: "Success", ts: Date.now(), data: { id: "r1", echo: request.url } });
  };
  return { seen, client: createClient({ baseUrl: "http://api.test/", store: memoryStore(), locks: null, channel: null, fetch }) };
}

describe("typed calls", () => {
  it("fills path parameters (encoded), the query and the JSON body, and returns the envelope's data", async () => {
    const { seen, client } = recorder();
    const role = await client.put("/api/v1/roles/{role_id}", { path: { role_id: "a/b c" }, body: { name: "Editors" } });
    expectTypeOf(role).toEqualTypeOf<Schemas["RolePublic"]>();
    expect(role).toMatchObject({ id: "r1" });
    await client.get("/api/v1/users", { query: { page: 2, pageSize: 50, keyword: "ä&x", status: undefined } });
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      "PUT http://api.test/api/v1/roles/a%2Fb%20c",
      "GET http://api.test/api/v1/users?page=2&pageSize=50&keyword=%C3%A4%26x",
    ]);
    expect(seen[0]?.body).toBe('{"name":"Editors"}');
    expect(seen[0]?.headers.get("content-type")).toBe("application/json");
    expect(seen[1]?.headers.get("authorization")).toBeNull(); // no session yet
  });

  it("returns the JWKS as it is (not enveloped)", async () => {
    const { client } = recorder();
    expect(await client.get("/api/v1/auth/.well-known/jwks.json")).toEqual({ keys: [{ kid: "k1" }] });
  });
});

describe("login", () => {
  it("encrypts the password with RSA-OAEP SHA-256 and keeps each user's device token for the next login", async () => {
    const api = new FakeApi();
    const store = memoryStore();
    const client = createClient({ baseUrl: "http://api.test", store, locks: null, channel: null, fetch: api.fetch });
    const session = await client.login("ada", "s3cret!pw");
    expect(session.username).toBe("ada");
    const first = api.loginBodies[0]!;
    expect(first.password).not.toContain("s3cret");
    expect(await api.decrypt(first.password as string)).toBe("s3cret!pw");
    expect(first).not.toHaveProperty("deviceToken");
    await client.login("ada", "s3cret!pw");
    await client.login("bob", "s3cret!pw");
    expect(api.loginBodies[1]?.deviceToken).toBe("device-of-ada");
    expect(api.loginBodies[2]).not.toHaveProperty("deviceToken"); // another user's token is not sent
    expect(await store.get("multidb:device:bob")).toBe("device-of-bob");
    expect(await client.get("/api/v1/auth/user/info")).toMatchObject({ username: "ada" });
    await expect(client.login("ada", "wrong")).rejects.toMatchObject({ status: 401, error: "bad_credentials" });
  });

  it("logout ends the session on the server and here, and tells other tabs", async () => {
    const api = new FakeApi();
    const store = memoryStore();
    const heard: unknown[] = [];
    const channel = (_: string) => ({ postMessage: (m: unknown) => heard.push(m), addEventListener: () => undefined, close: () => undefined });
    const client = createClient({ baseUrl: "http://api.test", store, locks: null, channel, fetch: api.fetch });
    await client.login("ada", "s3cret!pw");
    await client.logout();
    expect(api.count("POST /api/v1/auth/logout")).toBe(1);
    expect(api.revoked.size).toBe(1);
    expect(await client.current()).toBeNull();
    expect(await store.get("multidb:session")).toBeNull();
    expect(heard.at(-1)).toEqual({ type: "logout", reason: "logout" });
    await expect(client.get("/api/v1/auth/user/info")).rejects.toMatchObject({ error: "gateway_unauthorized" });
  });
});
