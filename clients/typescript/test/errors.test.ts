import { describe, expect, it } from "vitest";

import { ApiError, createClient, errorFromAck, errorFromBody, memoryStore } from "../src/index.js";

describe("error mapping", () => {
  it("reads the error envelope: status, code, error name, message, field errors, request id, Retry-After", () => {
    const headers = new Headers({ "x-request-id": "req-1", "retry-after": "7" });
    const body = { code: 422, error: "invalid_input", message: "Invalid input.", ts: 1, data: [{ field: "name", message: "too short" }] };
    const error = errorFromBody(422, body, headers);
    expect(error).toBeInstanceOf(ApiError);
    expect([error.status, error.code, error.error, error.message, error.gateway]).toEqual([422, 422, "invalid_input", "Invalid input.", false]);
    expect(error.data).toEqual([{ field: "name", message: "too short" }]);
    expect([error.requestId, error.retryAfter]).toEqual(["req-1", 7]);
  });

  it.each([
    [401, "Unauthorized", "gateway_unauthorized"],
    [403, "Forbidden", "gateway_forbidden"],
    [404, "Not Found", "gateway_not_found"],
    [429, "Too Many Requests", "gateway_throttled"],
    [413, "Request Entity Too Large", "gateway_payload_too_large"],
    [418, "Teapot", "gateway_418"],
  ])("names API Gateway's own %i body {message: %s} %s", (status, message, name) => {
    const error = errorFromBody(status, { message });
    expect([error.status, error.code, error.error, error.message, error.gateway]).toEqual([status, status, name, message, true]);
  });

  it("names a body that is neither", () => {
    expect(errorFromBody(502, "<html>bad gateway</html>").error).toBe("unexpected_response");
    expect(errorFromBody(500, { message: "x", other: 1 }).error).toBe("unexpected_response");
  });

  it("reads a Socket.IO ack in the error envelope, and lets a success through", () => {
    expect(errorFromAck({ code: 403, error: "permission_denied", message: "no", ts: 1, data: null })?.error).toBe("permission_denied");
    expect(errorFromAck({ code: 200, message: "Success", ts: 1, data: [] })).toBeNull();
    expect(errorFromAck("pong")).toBeNull();
  });

  it("throws typed errors from calls, the gateway's included, and network failures", async () => {
    const answers: Record<string, () => Response> = {
      "/api/v1/roles": () => Response.json({ message: "Unauthorized" }, { status: 401 }),
      "/api/v1/users": () => Response.json({ code: 409, error: "username_taken", message: "taken", ts: 1, data: null }, { status: 409 }),
    };
    const client = createClient({
      baseUrl: "http://api.test",
      store: memoryStore(),
      locks: null,
      channel: null,
      fetch: async (input) => {
        const path = new URL(String(input)).pathname;
        const answer = answers[path];
        if (answer === undefined) throw new TypeError("fetch failed");
        return answer();
      },
    });
    await expect(client.get("/api/v1/roles")).rejects.toMatchObject({ status: 401, error: "gateway_unauthorized", gateway: true });
    const body = { name: "A", email: "a@b.c", username: "a", password: "x" };
    await expect(client.post("/api/v1/users", { body })).rejects.toMatchObject({ status: 409, error: "username_taken", message: "taken" });
    await expect(client.get("/api/v1/tasks")).rejects.toMatchObject({ status: 0, error: "network_error" });
  });
});
