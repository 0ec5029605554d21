/** An in-memory stand-in for the API (tokens that expire and rotate, gateway denials) and the bucket. */

export function b64url(text: string): string {
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function jwt(claims: Record<string, unknown>): string {
  return `${b64url('{"alg":"RS256","typ":"JWT"}')}.${b64url(JSON.stringify(claims))}.sig`;
}

export function envelope(data: unknown, code = 200): Response {
  return Response.json({ code, message: "Success", ts: Date.now(), data }, { status: code });
}

export function failure(status: number, error: string, message = error, headers: Record<string, string> = {}): Response {
  return Response.json({ code: status, error, message, ts: Date.now(), data: null }, { status, headers });
}

export interface Issued {
  family: string;
  spent: boolean;
}

export class FakeApi {
  /** Seconds since the epoch on the server's clock. */
  clock = () => Date.now() / 1000;
  ttl = 900;
  /** How an expired access token is refused: the backend's 401, or API Gateway's 403. */
  expiry: "token_expired" | "gateway_forbidden" = "token_expired";
  readonly calls: string[] = [];
  readonly refreshTokens = new Map<string, Issued>();
  readonly revoked = new Set<string>();
  readonly loginBodies: Record<string, unknown>[] = [];
  private counter = 0;
  private static keyPair: Promise<CryptoKeyPair> | undefined;
  private keys: CryptoKeyPair | undefined;

  /** Access tokens exp seconds from now. */
  issue(family: string, expIn = this.ttl): { accessToken: string; refreshToken: string; expiresIn: number } {
    const now = Math.floor(this.clock());
    const n = ++this.counter;
    const accessToken = jwt({ sub: "u1", iat: now, exp: now + expIn, fam: family, jti: `a${n}` });
    const refreshToken = `r${n}`;
    this.refreshTokens.set(refreshToken, { family, spent: false });
    return { accessToken, refreshToken, expiresIn: expIn };
  }

  count(call: string): number {
    return this.calls.filter((c) => c === call).length;
  }

  private async publicPem(): Promise<string> {
    FakeApi.keyPair ??= crypto.subtle.generateKey(
      { name: "RSA-OAEP", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      true,
      ["encrypt", "decrypt"],
    ) as Promise<CryptoKeyPair>;
    this.keys = await FakeApi.keyPair;
    const der = new Uint8Array(await crypto.subtle.exportKey("spki", this.keys.publicKey));
    const body = btoa(String.fromCharCode(...der)).replace(/.{64}/g, "$&\n");
    return `-----BEGIN PUBLIC KEY-----\n${body}\n-----END PUBLIC KEY-----\n`;
  }

  async decrypt(password64: string): Promise<string> {
    const sealed = Uint8Array.from(atob(password64), (c) => c.charCodeAt(0));
    const plain = await crypto.subtle.decrypt({ name: "RSA-OAEP" }, this.keys!.privateKey, sealed);
    return new TextDecoder().decode(plain);
  }

  /** The bearer's claims, or the denial the gateway or the function answers. */
  private guard(request: Request): Response | Record<string, unknown> {
    const header = request.headers.get("authorization");
    if (header === null) return Response.json({ message: "Unauthorized" }, { status: 401 });
    const payload = header.replace(/^Bearer /, "").split(".")[1] ?? "";
    const claims = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))) as { exp: number; fam: string };
    if (this.revoked.has(claims.fam)) return Response.json({ message: "Forbidden" }, { status: 403 });
    if (claims.exp <= this.clock()) {
      return this.expiry === "token_expired"
        ? failure(401, "token_expired", "token expired")
        : Response.json({ message: "Forbidden" }, { status: 403 });
    }
    return claims;
  }

  readonly fetch: typeof fetch = async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const route = `${request.method} ${url.pathname}`;
    this.calls.push(route);
    switch (route) {
      case "GET /api/v1/auth/keys/public":
        return envelope({ publicKey: await this.publicPem(), algorithm: "RSA-OAEP-256" });
      case "POST /api/v1/auth/login": {
        const body = (await request.json()) as { username: string; password: string; deviceToken?: string };
        this.loginBodies.push(body);
        if ((await this.decrypt(body.password)) !== "s3cret!pw") return failure(401, "bad_credentials");
        return envelope({ ...this.issue(`f${++this.counter}`), tokenType: "Bearer", deviceToken: `device-of-${body.username}` });
      }
      case "POST /api/v1/auth/token/refresh": {
        await new Promise((resolve) => setTimeout(resolve, 20)); // a round trip: let racers race
        const token = request.headers.get("x-refresh-token") ?? "";
        const stored = this.refreshTokens.get(token);
        if (stored === undefined || this.revoked.has(stored.family)) return failure(401, "invalid_token");
        if (stored.spent) {
          this.revoked.add(stored.family); // reuse of a spent token revokes the whole session
          return failure(401, "refresh_token_reused");
        }
        stored.spent = true;
        return envelope({ ...this.issue(stored.family), tokenType: "Bearer", deviceToken: null });
      }
      case "POST /api/v1/auth/logout": {
        const claims = this.guard(request);
        if (claims instanceof Response) return claims;
        this.revoked.add(claims.fam as string);
        return envelope(null);
      }
      case "GET /api/v1/auth/user/info": {
        const claims = this.guard(request);
        if (claims instanceof Response) return claims;
        return envelope({ id: "u1", username: "ada", isAdmin: false });
      }
      case "GET /api/v1/roles": {
        const claims = this.guard(request);
        if (claims instanceof Response) return claims;
        return failure(403, "permission_denied", "permission denied");
      }
      default:
        return Response.json({ message: "Not Found" }, { status: 404 });
    }
  };
}

/** An exclusive Web Lock manager, shared by the "tabs" of a test. */
export class FakeLocks {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;
  granted = 0;

  request<T>(_name: string, options: { ifAvailable?: boolean }, callback: (lock: unknown) => Promise<T>): Promise<T> {
    if (options.ifAvailable === true && this.pending > 0) return callback(null);
    this.pending++;
    const run = this.tail.then(async () => {
      this.granted++;
      try {
        return await callback({});
      } finally {
        this.pending--;
      }
    });
    this.tail = run.catch(() => undefined);
    return run;
  }
}
