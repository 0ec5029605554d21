/** Where the kit keeps device tokens and the session: any key-value store, sync or async. */

export interface KeyValueStore {
  get(key: string): string | null | Promise<string | null>;
  set(key: string, value: string): void | Promise<void>;
  remove(key: string): void | Promise<void>;
}

export function memoryStore(): KeyValueStore {
  const values = new Map<string, string>();
  return {
    get: (key) => values.get(key) ?? null,
    set: (key, value) => void values.set(key, value),
    remove: (key) => void values.delete(key),
  };
}

/** The page's localStorage (shared by the tabs of one origin). */
export function localStorageStore(storage: Storage = globalThis.localStorage): KeyValueStore {
  return {
    get: (key) => storage.getItem(key),
    set: (key, value) => storage.setItem(key, value),
    remove: (key) => storage.removeItem(key),
  };
}

/** localStorage in browsers, memory elsewhere. */
export function defaultStore(): KeyValueStore {
  try {
    if (typeof globalThis.localStorage !== "undefined" && globalThis.localStorage !== null) {
      return localStorageStore(globalThis.localStorage);
    }
  } catch {
    // a sandboxed frame may throw on access
  }
  return memoryStore();
}
