import { describe, expect, it } from "vitest";

import { choosePartSize, createClient, memoryStore, MIN_PART, planParts, type Progress } from "../src/index.js";
import { envelope, failure, FakeApi } from "./fake.js";

const MIB = 2 ** 20;

describe("part planning", () => {
  it("cuts a file into partSize parts, the last one shorter", () => {
    expect(planParts(12 * MIB + 3, 5 * MIB)).toEqual([
      { partNumber: 1, start: 0, end: 5 * MIB },
      { partNumber: 2, start: 5 * MIB, end: 10 * MIB },
      { partNumber: 3, start: 10 * MIB, end: 12 * MIB + 3 },
    ]);
    expect(planParts(5 * MIB, 5 * MIB)).toHaveLength(1);
  });

  it("keeps parts at least 5 MiB and at most 10,000 of them", () => {
    expect(choosePartSize(100, 1)).toBe(MIN_PART);
    expect(choosePartSize(200 * MIB)).toBe(16 * MIB);
    const huge = 5 * 2 ** 40; // 5 TiB
    const size = choosePartSize(huge);
    expect(planParts(huge, size).length).toBeLessThanOrEqual(10_000);
    expect(size % MIB).toBe(0);
  });
});

/** The files routes and a bucket, in memory: what was PUT where, what completes. */
class FakeFiles extends FakeApi {
  readonly puts: string[] = [];
  readonly objects = new Map<string, Uint8Array>();
  readonly parts = new Map<number, Uint8Array>();
  completed: { partNumber: number; etag: string }[] | null = null;
  file = { id: "f1", name: "", size: 0, partSize: null as number | null, status: "pending", contentType: "" };
  failPart: number | null = null;

  readonly files: typeof fetch = async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (url.host === "bucket.test") {
      this.puts.push(url.pathname + url.search);
      const bytes = new Uint8Array(await request.arrayBuffer());
      const part = url.searchParams.get("partNumber");
      if (part === null) {
        this.objects.set(url.pathname, bytes);
        return new Response(null, { status: 200, headers: { ETag: '"whole"' } });
      }
      if (Number(part) === this.failPart) throw new TypeError("connection reset");
      this.parts.set(Number(part), bytes);
      return new Response(null, { status: 200, headers: { ETag: `"etag-${part}"` } });
    }
    const route = `${request.method} ${url.pathname}`;
    this.calls.push(route);
    const urlOf = (n: number) => ({ partNumber: n, url: `http://bucket.test/o?partNumber=${n}`, size: this.partLength(n) });
    if (route === "POST /api/v1/files/uploads") {
      const body = (await request.json()) as { name: string; size: number; contentType: string; partSize?: number };
      this.file = { ...this.file, name: body.name, size: body.size, contentType: body.contentType, partSize: body.partSize ?? null };
      if (body.partSize === undefined) {
        return envelope({ file: this.file, uploadUrl: "http://bucket.test/o", method: "PUT", headers: { "If-None-Match": "*", "Content-Type": body.contentType }, parts: null, expiresIn: 900 }, 201);
      }
      const count = Math.ceil(body.size / body.partSize);
      return envelope({ file: this.file, uploadUrl: null, method: "PUT", headers: {}, parts: Array.from({ length: count }, (_, i) => urlOf(i + 1)), expiresIn: 900 }, 201);
    }
    if (route === "GET /api/v1/files/f1") return envelope(this.file);
    if (route === "GET /api/v1/files/f1/parts") {
      if (this.file.status === "ready") return failure(409, "upload_complete");
      const count = Math.ceil(this.file.size / this.file.partSize!);
      const all = Array.from({ length: count }, (_, i) => i + 1);
      return envelope({
        uploaded: all.filter((n) => this.parts.has(n)).map((n) => ({ partNumber: n, etag: `"etag-${n}"`, size: this.parts.get(n)!.length })),
        missing: all.filter((n) => !this.parts.has(n)).map(urlOf),
        expiresIn: 900,
      });
    }
    if (route === "POST /api/v1/files/f1/complete") {
      const text = await request.text();
      this.completed = text ? (JSON.parse(text) as { parts: { partNumber: number; etag: string }[] }).parts : null;
      this.file = { ...this.file, status: "ready" };
      return envelope(this.file);
    }
    if (route === "DELETE /api/v1/files/f1") return envelope(null);
    return this.fetch(input, init);
  };

  partLength(n: number): number {
    const size = this.file.size;
    const part = this.file.partSize!;
    return Math.min(part, size - (n - 1) * part);
  }
}

function blobOf(size: number): Blob {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) % 251;
  return new Blob([bytes], { type: "application/pdf" });
}

async function setup() {
  const api = new FakeFiles();
  const store = memoryStore();
  const client = createClient({ baseUrl: "http://api.test", store, locks: null, channel: null, fetch: api.files, autoRefresh: false });
  await client.login("ada", "s3cret!pw");
  return { api, client, store };
}

describe("uploads", () => {
  it("sends a small file in one PUT with the signed headers, then completes it", async () => {
    const { api, client } = await setup();
    const seen: Progress[] = [];
    const file = await client.upload(blobOf(1000), { name: "a.pdf", onProgress: (p) => seen.push(p) });
    expect(file.status).toBe("ready");
    expect(api.puts).toEqual(["/o"]);
    expect(api.objects.get("/o")?.length).toBe(1000);
    expect(api.completed).toBeNull(); // one PUT completes with no body
    expect(seen.at(-1)).toEqual({ loaded: 1000, total: 1000 });
  });

  it("sends a large file in parts, each its slice, and completes with every ETag in order", async () => {
    const { api, client } = await setup();
    const blob = blobOf(11 * MIB);
    const seen: Progress[] = [];
    const file = await client.upload(blob, { name: "big.bin", threshold: 5 * MIB, partSize: 5 * MIB, onProgress: (p) => seen.push(p) });
    expect(file.status).toBe("ready");
    expect([...api.parts.keys()].sort()).toEqual([1, 2, 3]);
    const joined = Buffer.concat([1, 2, 3].map((n) => api.parts.get(n)!));
    expect(joined.equals(Buffer.from(await blob.arrayBuffer()))).toBe(true); // byte-identical, in order
    expect(api.completed).toEqual([1, 2, 3].map((n) => ({ partNumber: n, etag: `"etag-${n}"` })));
    expect(seen.at(-1)).toEqual({ loaded: 11 * MIB, total: 11 * MIB });
  });

  it("resumes from GET /files/{id}/parts: only the missing parts go up again", async () => {
    const { api, client, store } = await setup();
    const blob = new File([blobOf(11 * MIB)], "big.bin", { type: "application/octet-stream", lastModified: 1 });
    api.failPart = 2; // the network drops part 2 (three tries), as a reload would
    await expect(client.upload(blob, { threshold: 0, partSize: 5 * MIB, concurrency: 1 })).rejects.toMatchObject({ error: "network_error" });
    expect(await store.get("multidb:upload:big.bin:11534336:1")).toBe("f1"); // remembered for the next try
    expect(await client.isResumable("f1")).toBe(true);
    api.failPart = null;
    api.puts.length = 0;
    const file = await client.upload(blob, { threshold: 0, partSize: 5 * MIB });
    expect(file.status).toBe("ready");
    expect(api.puts.every((p) => !p.endsWith("partNumber=1"))).toBe(true); // part 1 was kept
    expect(api.puts.some((p) => p.endsWith("partNumber=2"))).toBe(true);
    expect(api.completed?.map((p) => p.partNumber)).toEqual([1, 2, 3]);
    expect(await store.get("multidb:upload:big.bin:11534336:1")).toBeNull();
    expect(await client.isResumable("f1")).toBe(false); // done: nothing left to resume
    expect(api.count("POST /api/v1/files/uploads")).toBe(1); // no second upload was created
  });

  it("stops on abort (resumable), and abortUpload deletes it", async () => {
    const { api, client } = await setup();
    const controller = new AbortController();
    controller.abort();
    await expect(
      client.upload(blobOf(11 * MIB), { threshold: 0, partSize: 5 * MIB, signal: controller.signal }),
    ).rejects.toMatchObject({ error: "aborted" });
    expect(api.parts.size).toBe(0);
    await client.abortUpload("f1");
    expect(api.calls).toContain("DELETE /api/v1/files/f1");
  });

  it("abortUpload forgets the resume record: the same file then starts a new upload", async () => {
    const { api, client, store } = await setup();
    const blob = new File([blobOf(11 * MIB)], "big.bin", { type: "application/octet-stream", lastModified: 1 });
    const controller = new AbortController();
    const stopped = client.upload(blob, { threshold: 0, partSize: 5 * MIB, signal: controller.signal, onStart: () => controller.abort() });
    await expect(stopped).rejects.toMatchObject({ error: "aborted" });
    expect(await store.get("multidb:upload:big.bin:11534336:1")).toBe("f1"); // stopped, still resumable
    expect(await client.isResumable("f1")).toBe(true);
    await client.abortUpload("f1");
    expect(await client.isResumable("f1")).toBe(false);
    expect(await store.get("multidb:upload:big.bin:11534336:1")).toBeNull();
    expect(await store.get("multidb:upload-record:f1")).toBeNull();
    const file = await client.upload(blob, { threshold: 0, partSize: 5 * MIB });
    expect(file.status).toBe("ready");
    expect(api.calls).not.toContain("GET /api/v1/files/f1"); // no resume was tried
    expect(api.count("POST /api/v1/files/uploads")).toBe(2);
  });
});
