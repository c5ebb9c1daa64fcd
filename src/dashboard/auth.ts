/**
 * Access to the dashboard: open on loopback; elsewhere a bearer token (header or `?token=`,
 * since EventSource cannot set headers) or a client certificate signed by the configured CA —
 * restricted to the operators' CNs when the dashboard is given them (`operators`), the same
 * identities the coordinator lets Watch the study.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import { fjError } from "../errors.js";
import { isLoopback } from "../protocol/tls.js";

export { isLoopback };

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

/** Minimum token length accepted when the dashboard is reachable from other machines. */
export const MIN_TOKEN_LENGTH = 16;

/**
 * The access rules a dashboard must meet before it listens: a token of at least 16 characters
 * when one is given, and — off loopback — a token or TLS with a client CA. Throws the one-line
 * error (the coordinator checks this before it starts anything).
 */
export function checkDashboardAccess(options: {
  host: string;
  port: number;
  token?: string;
  clientCa?: boolean;
}): void {
  if (options.token !== undefined && options.token.length < MIN_TOKEN_LENGTH) {
    throw fjError("FJ_DASHBOARD_TOKEN", `dashboard token must be at least ${MIN_TOKEN_LENGTH} characters`);
  }
  if (!isLoopback(options.host) && options.token === undefined && options.clientCa !== true) {
    throw fjError(
      "FJ_DASHBOARD_TOKEN_REQUIRED",
      `dashboard on ${options.host === "" ? "all interfaces" : options.host}:${options.port} is not loopback: give a token (FEDJOINT_DASHBOARD_TOKEN) or TLS with a client CA`,
    );
  }
}

/**
 * True when the TLS client presented a certificate the server's CA verified — and, when
 * `operators` is given, one whose subject CN is among them (site certificates of the same CA do
 * not open the dashboard).
 */
export function hasVerifiedClientCert(req: IncomingMessage, operators?: readonly string[]): boolean {
  const socket = req.socket as Partial<TLSSocket>;
  if (socket.encrypted !== true || socket.authorized !== true) return false;
  if (operators === undefined) return true;
  const cn = (socket.getPeerCertificate?.()?.subject as { CN?: string | string[] } | undefined)?.CN;
  const name = Array.isArray(cn) ? cn[0] : cn;
  return name !== undefined && operators.includes(name);
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
