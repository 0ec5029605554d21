/** Uploads: one PUT below a threshold, else in parts (presigned part URLs), with progress, resume and abort. */
import type { Client } from "./client.js";
import { ApiError, networkError } from "./errors.js";
import type { Schemas } from "./types.js";

export const MIB = 2 ** 20;
export const MIN_PART = 5 * MIB; // S3's smallest part (but the last)
export const MAX_PARTS = 10_000;

export interface Progress {
  loaded: number;
  total: number;
}

export interface UploadOptions {
  /** Default: the File's name, else "blob". */
  name?: string;
  /** Default: the Blob's type, else application/octet-stream. */
  contentType?: string;
  /** Files above this many bytes go up in parts (default 64 MiB). */
  threshold?: number;
  /** Size of each part (default 16 MiB, grown to keep within 10,000 parts). */
  partSize?: number;
  /** Parts in flight at once (default 4). */
  concurrency?: number;
  onProgress?: (progress: Progress) => void;
  /** Called once the upload exists, with its id: keep it to resume. */
  onStart?: (fileId: string) => void;
  /** Stops the transfer; an upload in parts stays resumable (`abortUpload` deletes it and its resume record). */
  signal?: AbortSignal;
  /** Remember uploads in parts in the client's store and resume the same file (default true). */
  resume?: boolean;
}

export interface PlannedPart {
  partNumber: number;
  start: number;
  end: number;
}

/** The part size the kit uses for `size` bytes: at least 5 MiB and few enough parts. */
export function choosePartSize(size: number, wanted = 16 * MIB): number {
  const least = Math.ceil(size / MAX_PARTS / MIB) * MIB;
  return Math.max(wanted, MIN_PART, least);
}

/** Every part of a file: `partSize` bytes each but the last. */
export function planParts(size: number, partSize: number): PlannedPart[] {
  const parts: PlannedPart[] = [];
  for (let start = 0, n = 1; start < size; start += partSize, n++) {
    parts.push({ partNumber: n, start, end: Math.min(start + partSize, size) });
  }
  return parts;
}

/** The browser sets these itself and refuses them from scripts. */
const FORBIDDEN = new Set(["content-length", "host", "connection", "accept-encoding"]);

/** PUT a body to a presigned URL; returns the ETag. XMLHttpRequest (with progress) where it exists. */
export function putBytes(
  fetcher: typeof fetch,
  url: string,
  body: Blob,
  headers: Record<string, string>,
  onBytes: (loaded: number) => void,
  signal?: AbortSignal,
): Promise<string | null> {
  const send = Object.fromEntries(Object.entries(headers).filter(([key]) => !FORBIDDEN.has(key.toLowerCase())));
  if (typeof XMLHttpRequest !== "undefined") {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      for (const [key, value] of Object.entries(send)) xhr.setRequestHeader(key, value);
      xhr.upload.onprogress = (event) => onBytes(event.loaded);
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          onBytes(body.size);
          resolve(xhr.getResponseHeader("ETag"));
        } else {
          reject(new ApiError({ status: xhr.status, error: "upload_refused", message: `the bucket answered ${xhr.status}` }));
        }
      };
      xhr.onerror = () => reject(networkError(new Error("upload failed")));
      xhr.onabort = () => reject(networkError(new DOMException("aborted", "AbortError")));
      if (signal?.aborted) return xhr.onabort(new ProgressEvent("abort"));
      signal?.addEventListener("abort", () => xhr.abort(), { once: true });
      xhr.send(body);
    });
  }
  return (async () => {
    let response: Response;
    try {
      response = await fetcher(url, { method: "PUT", headers: send, body, signal });
    } catch (cause) {
      throw networkError(cause);
    }
    if (!response.ok) {
      throw new ApiError({ status: response.status, error: "upload_refused", message: `the bucket answered ${response.status}` });
    }
    onBytes(body.size);
    return response.headers.get("ETag");
  })();
}

function fingerprint(blob: Blob, name: string): string {
  const modified = (blob as Partial<File>).lastModified ?? 0;
  return `${name}:${blob.size}:${modified}`;
}

function describe(blob: Blob, options: UploadOptions): { name: string; contentType: string } {
  const name = options.name ?? (blob as Partial<File>).name ?? "blob";
  const type = options.contentType ?? (blob.type.split(";")[0]?.trim() || "application/octet-stream");
  return { name, contentType: type };
}

class Meter {
  private readonly parts = new Map<number, number>();
  constructor(
    private readonly total: number,
    private readonly onProgress?: (progress: Progress) => void,
  ) {}
  set(partNumber: number, loaded: number): void {
    this.parts.set(partNumber, loaded);
    let sum = 0;
    for (const value of this.parts.values()) sum += value;
    this.onProgress?.({ loaded: Math.min(sum, this.total), total: this.total });
  }
}

/** Upload a Blob (or File) and complete it; resolves with the file, then `ready`. */
export async function upload(client: Client, blob: Blob, options: UploadOptions = {}): Promise<Schemas["FilePublic"]> {
  const { name, contentType } = describe(blob, options);
  const key = `${storeKey(client)}${fingerprint(blob, name)}`;
  if (options.resume !== false) {
    const remembered = await client.store.get(key);
    if (remembered !== null) {
      try {
        return await resumeUpload(client, remembered, blob, options);
      } catch (error) {
        // gone (deleted, swept) or not resumable: start over
        if (!(error instanceof ApiError) || ![404, 409].includes(error.status)) throw error;
        await client.store.remove(key);
        await forget(client, remembered);
      }
    }
  }
  const threshold = options.threshold ?? 64 * MIB;
  if (blob.size <= threshold && options.partSize === undefined) {
    const created = await client.post("/api/v1/files/uploads", { body: { name, size: blob.size, contentType }, signal: options.signal });
    options.onStart?.(created.file.id);
    const meter = new Meter(blob.size, options.onProgress);
    if (created.uploadUrl == null) throw new ApiError({ status: 0, error: "unexpected_response", message: "no upload URL" });
    await putBytes(client.fetchImpl, created.uploadUrl, blob, created.headers, (loaded) => meter.set(1, loaded), options.signal);
    return client.post("/api/v1/files/{file_id}/complete", { path: { file_id: created.file.id }, signal: options.signal });
  }
  const partSize = choosePartSize(blob.size, options.partSize);
  const created = await client.post("/api/v1/files/uploads", {
    body: { name, size: blob.size, contentType, partSize },
    signal: options.signal,
  });
  const fileId = created.file.id;
  if (options.resume !== false) {
    await client.store.set(key, fileId);
    await client.store.set(recordOf(client, fileId), key); // so abortUpload(fileId) can forget it
  }
  options.onStart?.(fileId);
  const etags = new Map<number, string>();
  const meter = new Meter(blob.size, options.onProgress);
  await sendParts(client, blob, partSize, created.parts ?? [], etags, meter, options);
  const file = await finishParts(client, fileId, blob, partSize, etags, meter, options);
  if (options.resume !== false) await forget(client, fileId);
  return file;
}

/** Continue an upload in parts: what the bucket holds is kept, the missing parts are sent, then it completes. */
export async function resumeUpload(
  client: Client,
  fileId: string,
  blob: Blob,
  options: UploadOptions = {},
): Promise<Schemas["FilePublic"]> {
  const file = await client.get("/api/v1/files/{file_id}", { path: { file_id: fileId }, signal: options.signal });
  if (file.size !== blob.size) {
    throw new ApiError({ status: 0, error: "resume_mismatch", message: "the upload is of another size" });
  }
  if (file.status === "ready") return file;
  if (file.partSize == null) {
    throw new ApiError({ status: 409, error: "not_multipart", message: "a one-PUT upload cannot be resumed" });
  }
  options.onStart?.(fileId);
  const file_ = await finishParts(client, fileId, blob, file.partSize, new Map(), new Meter(blob.size, options.onProgress), options);
  const { name } = describe(blob, options);
  await client.store.remove(`${storeKey(client)}${fingerprint(blob, name)}`);
  await forget(client, fileId);
  return file_;
}

/** Delete an upload (an upload in parts is aborted: the bucket drops its parts) and forget
 *  its resume record, so choosing the same file again starts a new upload. */
export async function abortUpload(client: Client, fileId: string): Promise<void> {
  await client.delete("/api/v1/files/{file_id}", { path: { file_id: fileId } });
  await forget(client, fileId);
}

/** Whether the store remembers an upload in parts of this file (after a reload, too). */
export async function isResumable(client: Client, fileId: string): Promise<boolean> {
  const key = await client.store.get(recordOf(client, fileId));
  return key !== null && (await client.store.get(key)) === fileId;
}

function storeKey(client: Client): string {
  return `${client.ns}:upload:`;
}

/** Where the store keeps which file an upload's resume record points to (the record is keyed
 *  by the file's fingerprint, which only the Blob gives). */
function recordOf(client: Client, fileId: string): string {
  return `${client.ns}:upload-record:${fileId}`;
}

/** Drop an upload's resume record and the pointer to it. */
async function forget(client: Client, fileId: string): Promise<void> {
  const pointer = recordOf(client, fileId);
  const key = await client.store.get(pointer);
  if (key !== null && (await client.store.get(key)) === fileId) await client.store.remove(key);
  await client.store.remove(pointer);
}

async function sendParts(
  client: Client,
  blob: Blob,
  partSize: number,
  urls: Schemas["PartUrl"][],
  etags: Map<number, string>,
  meter: Meter,
  options: UploadOptions,
): Promise<void> {
  const queue = urls.filter((part) => !etags.has(part.partNumber));
  const workers = Array.from({ length: Math.min(options.concurrency ?? 4, queue.length) }, async () => {
    for (let part = queue.shift(); part !== undefined; part = queue.shift()) {
      const start = (part.partNumber - 1) * partSize;
      const body = blob.slice(start, start + part.size);
      let lastError: unknown;
      for (let attempt = 0; attempt < 3; attempt++) {
        if (options.signal?.aborted) throw networkError(new DOMException("aborted", "AbortError"));
        try {
          const number = part.partNumber;
          const etag = await putBytes(client.fetchImpl, part.url, body, {}, (loaded) => meter.set(number, loaded), options.signal);
          if (etag !== null) etags.set(number, etag);
          lastError = undefined;
          break;
        } catch (error) {
          lastError = error;
          if (error instanceof ApiError && (error.error === "aborted" || (error.status >= 400 && error.status < 500))) break;
        }
      }
      if (lastError !== undefined) throw lastError;
    }
  });
  await Promise.all(workers);
}

/** Ask the server what is there, send what is missing, repeat; then complete with every part's ETag. */
async function finishParts(
  client: Client,
  fileId: string,
  blob: Blob,
  partSize: number,
  etags: Map<number, string>,
  meter: Meter,
  options: UploadOptions,
): Promise<Schemas["FilePublic"]> {
  const total = planParts(blob.size, partSize).length;
  for (let round = 0; ; round++) {
    const state = await client.get("/api/v1/files/{file_id}/parts", {
      path: { file_id: fileId },
      query: { limit: 1000 },
      signal: options.signal,
    });
    for (const part of state.uploaded) {
      etags.set(part.partNumber, part.etag); // the bucket's word (also where CORS hides the ETag header)
      meter.set(part.partNumber, part.size);
    }
    if (state.missing.length === 0 && etags.size >= total) break;
    if (round >= 20) throw new ApiError({ status: 0, error: "upload_stalled", message: "parts keep missing" });
    for (const part of state.missing) etags.delete(part.partNumber);
    await sendParts(client, blob, partSize, state.missing, etags, meter, options);
  }
  const parts = [...etags.entries()].sort(([a], [b]) => a - b).map(([partNumber, etag]) => ({ partNumber, etag }));
  return client.post("/api/v1/files/{file_id}/complete", { path: { file_id: fileId }, body: { parts }, signal: options.signal });
}
