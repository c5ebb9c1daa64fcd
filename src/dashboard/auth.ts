/**
 * Access to the dashboard: open on loopback; elsewhere a bearer token (header or `?token=`,
 * since EventSource cannot set headers) or a client certificate signed by the configured CA.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import { fjError } from "../errors.js";

export function isLoopback(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || h === "::ffff:127.0.0.1";
}

/** Constant-time comparison of a presented token with the expected one. */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The token a request presents: `Authorization: Bearer <t>` first, else `?token=<t>`. */
export function presentedToken(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers.authorization;
  if (typeof header === "string") {
    const m = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (m !== null) return m[1];
  }
  return url.searchParams.get("token") ?? undefined;
}

/** True when the TLS client presented a certificate the server's CA verified. */
export function hasVerifiedClientCert(req: IncomingMessage): boolean {
  const socket = req.socket as Partial<TLSSocket>;
  return socket.encrypted === true && socket.authorized === true;
}

/**
 * Parses `--dashboard` values: ":8080" (all interfaces), "8080", "127.0.0.1:8080", "[::1]:8080",
 * "localhost:0". Errors name the flag and the expected form.
 */
export function parseDashboardAddress(value: string, flag = "--dashboard"): { host: string; port: number } {
  const v = value.trim();
  let host: string;
  let portText: string;
  const bracket = /^\[([^\]]+)\]:(\d+)$/.exec(v);
  if (bracket !== null) {
    host = bracket[1] as string;
    portText = bracket[2] as string;
  } else if (/^\d+$/.test(v)) {
    host = "";
    portText = v;
  } else {
    const i = v.lastIndexOf(":");
    if (i < 0 || v.indexOf(":") !== i) {
      throw fjError(
        "FJ_DASHBOARD_ADDRESS",
        `${flag} "${value}": expected [HOST]:PORT, e.g. :8080 or 127.0.0.1:8080`,
      );
    }
    host = v.slice(0, i);
    portText = v.slice(i + 1);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw fjError("FJ_DASHBOARD_ADDRESS", `${flag} "${value}": port must be an integer 0–65535`);
  }
  return { host, port };
}
