/** Login passwords travel RSA-OAEP (SHA-256) encrypted with the server's public key, in base64. */

function base64ToBytes(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Encrypt `password` with the PEM (SubjectPublicKeyInfo) key of `GET /auth/keys/public`. */
export async function encryptPassword(publicKeyPem: string, password: string): Promise<string> {
  const der = base64ToBytes(publicKeyPem.replace(/-----[^-]+-----|\s/g, ""));
  const key = await crypto.subtle.importKey("spki", der, { name: "RSA-OAEP", hash: "SHA-256" }, false, ["encrypt"]);
  const sealed = await crypto.subtle.encrypt({ name: "RSA-OAEP" }, key, new TextEncoder().encode(password));
  return bytesToBase64(new Uint8Array(sealed));
}

/** The claims of a JWT, unverified (the server verifies; the kit only reads `exp` and `iat`). */
export function jwtClaims(token: string): { exp?: number; iat?: number; sub?: string } {
  const part = token.split(".")[1];
  if (part === undefined) return {};
  try {
    const padded = part.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((part.length + 3) % 4);
    return JSON.parse(new TextDecoder().decode(base64ToBytes(padded))) as { exp?: number; iat?: number };
  } catch {
    return {};
  }
}
