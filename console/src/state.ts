/**
 * The console's one client (the kit: login, refresh, calls, Socket.IO, uploads), who is signed
 * in and what they may see. Menus and buttons follow the caller's router and button codes; the
 * server still decides every call.
 */
import { ApiError, createClient, encryptPassword, type Client, type Realtime, type Schemas } from "@multidb/client";
import { reactive } from "vue";

import { t } from "./i18n";

export interface Config {
  apiUrl: string;
  socketUrl: string;
}

type UserInfo = Schemas["UserInfo"];

export const state = reactive({
  ready: false,
  me: null as UserInfo | null,
  /** Why the last session ended, shown on the sign-in page. */
  ended: "",
  live: false,
  route: "",
});

let client: Client | null = null;
let realtime: Realtime | null = null;

export function api(): Client {
  if (client === null) throw new Error("the console has not started");
  return client;
}

/** Where the API is: config.json beside the page (written by `make deploy`), else the build's env. */
export async function loadConfig(): Promise<Config> {
  const host = `${location.protocol}//${location.hostname}`;
  const fallback: Config = {
    apiUrl: import.meta.env.VITE_API_URL || `${host}:3000`,
    socketUrl: import.meta.env.VITE_SOCKET_URL || `${host}:3001`,
  };
  try {
    const response = await fetch(`${import.meta.env.BASE_URL}config.json`, { cache: "no-store" });
    if (response.ok && (response.headers.get("content-type") ?? "").includes("json")) {
      return { ...fallback, ...((await response.json()) as Partial<Config>) };
    }
  } catch {
    // no config.json: the build's defaults
  }
  return fallback;
}

export async function start(config: Config): Promise<void> {
  client = createClient({ baseUrl: config.apiUrl, socketUrl: config.socketUrl });
  client.onSession((event) => {
    if (event.type === "ended") signedOut(event.reason);
    else if (event.type === "logout") signedOut("logout");
    else if (event.type === "login" && state.me === null) void loadMe();
  });
  if ((await client.current()) !== null) {
    try {
      await loadMe();
    } catch {
      // a stored session the server no longer takes: the kit has ended it
    }
  }
  state.ready = true;
}

function signedOut(reason: string): void {
  realtime?.close();
  realtime = null;
  state.live = false;
  state.me = null;
  state.ended = reason;
}

export async function loadMe(): Promise<void> {
  state.me = await api().get("/api/v1/auth/user/info");
  state.ended = "";
  connect();
}

function connect(): void {
  if (realtime !== null) return;
  realtime = api().socket();
  realtime.on("connect", () => (state.live = true));
  realtime.on("disconnect", () => (state.live = false));
  realtime.on("permissions:changed", () => void loadMe().catch(() => undefined));
}

/** The session's socket (null when signed out). */
export function socket(): Realtime | null {
  return realtime;
}

export async function login(username: string, password: string): Promise<void> {
  await api().login(username, password);
  await loadMe();
}

export async function logout(): Promise<void> {
  await api().logout();
}

/** A password as the API takes it: RSA-OAEP with the login key. */
export async function seal(password: string): Promise<string> {
  const key = await api().get("/api/v1/auth/keys/public");
  return encryptPassword(key.publicKey, password);
}

/** A menu entry: shown with its router code (admins see every one). */
export function canSee(router: string): boolean {
  const me = state.me;
  return me !== null && (me.isAdmin || me.permissions.router.includes(router));
}

/** A button: shown with its button code. */
export function canPress(button: string): boolean {
  const me = state.me;
  return me !== null && (me.isAdmin || me.permissions.button.includes(button));
}

/** A route the caller may call (its interface permission code, `METHOD:/api/v1/...`): what a page
 *  asks for only when it may (the server still decides). */
export function canCall(code: string): boolean {
  const me = state.me;
  return me !== null && (me.isAdmin || me.permissions.interface.includes(code));
}

/** An error as one line for the page. */
export function describe(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 403) return `${t("denied")} (${error.error})`;
    const fields = (error.data ?? []).map((f) => `${f.field}: ${f.message}`).join("; ");
    return fields ? `${error.message}: ${fields}` : `${error.message} (${error.error})`;
  }
  return error instanceof Error ? error.message : String(error);
}
