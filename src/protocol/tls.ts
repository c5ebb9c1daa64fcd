/**
 * gRPC credentials: mutual TLS from PEM files (the default) or plaintext for local demos
 * (`--insecure`, on loopback addresses only, announced loudly by the CLIs). Caller identity on the
 * server = the subject CN of the verified client certificate. A site whose connection fails can
 * probe the TLS layer to tell a refused certificate from an unreachable coordinator.
 */
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { connect } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { fjError, InputError } from "../errors.js";

export interface TlsFiles {
  cert?: string;
  key?: string;
  ca?: string;
}

async function readPem(file: string | undefined, flag: string): Promise<Buffer> {
  if (!file) throw fjError("FJ_TLS_MISSING", `${flag} is required (or --insecure for a local demo)`);
  try {
    const buf = await readFile(file);
    if (!buf.toString("utf8").includes("-----BEGIN")) {
      throw fjError("FJ_TLS_PEM", `${flag} ${file}: not a PEM file`);
    }
    return buf;
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw fjError(
      "FJ_TLS_READ",
      `${flag} ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
}

export async function serverCredentials(files: TlsFiles, insecure: boolean): Promise<grpc.ServerCredentials> {
  if (insecure) return grpc.ServerCredentials.createInsecure();
  const [ca, cert, key] = await Promise.all([
    readPem(files.ca, "--ca"),
    readPem(files.cert, "--cert"),
    readPem(files.key, "--key"),
  ]);
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], true);
}

export async function clientCredentials(
  files: TlsFiles,
  insecure: boolean,
): Promise<grpc.ChannelCredentials> {
  if (insecure) return grpc.credentials.createInsecure();
  const [ca, cert, key] = await Promise.all([
    readPem(files.ca, "--ca"),
    readPem(files.cert, "--cert"),
    readPem(files.key, "--key"),
  ]);
  return grpc.credentials.createSsl(ca, key, cert);
}

/** Whether a host name or address is this machine's loopback (plaintext is allowed only there). */
export function isLoopback(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || h === "::ffff:127.0.0.1";
}

/** Subject CN of the caller's verified client certificate, or undefined (insecure transport). */
export interface PeerAuth {
  getAuthContext?: () => { sslPeerCertificate?: { subject?: unknown } } | null;
}

export function peerIdentity(call: PeerAuth): string | undefined {
  const ctx = call.getAuthContext?.();
  const cert = ctx?.sslPeerCertificate;
  if (!cert) return undefined;
  const cn = (cert.subject as { CN?: string | string[] } | undefined)?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}

/** The host of a `HOST:PORT` or `[V6]:PORT` address. */
export function hostOf(address: string): string {
  const v6 = /^\[([^\]]+)\]:\d+$/.exec(address);
  if (v6) return v6[1];
  const i = address.lastIndexOf(":");
  return i < 0 ? address : address.slice(0, i);
}

/**
 * What a TLS connection to the coordinator shows about a failed gRPC connection:
 * - `refused`: the handshake completed but the coordinator closed the connection before saying
 *   anything — with TLS 1.3 that is how a server rejects the client's certificate;
 * - `untrusted`: this side does not trust the coordinator's certificate (wrong --ca, wrong host);
 * - `unreachable`: no TCP connection (down, wrong address, network) — worth retrying;
 * - `ok`: TLS works (the failure was something else, transient).
 */
export type TlsVerdict = { verdict: "ok" | "refused" | "untrusted" | "unreachable"; detail: string };

const NETWORK_ERRORS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
]);

/** Probes `address` with the site's TLS files (ALPN h2, as gRPC connects). */
export async function probeTls(address: string, files: TlsFiles, timeoutMs = 5_000): Promise<TlsVerdict> {
  const [ca, cert, key] = await Promise.all([
    readPem(files.ca, "--ca"),
    readPem(files.cert, "--cert"),
    readPem(files.key, "--key"),
  ]);
  const host = hostOf(address);
  const port = Number(address.slice(address.lastIndexOf(":") + 1));
  return new Promise<TlsVerdict>((resolve) => {
    let settled = false;
    let secure = false;
    const finish = (v: TlsVerdict) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const socket = connect({
      host,
      port,
      ca,
      cert,
      key,
      ALPNProtocols: ["h2"],
      ...(isIP(host) ? {} : { servername: host }),
    });
    const timer = setTimeout(
      () =>
        finish(
          secure
            ? { verdict: "ok", detail: "TLS handshake completed" }
            : { verdict: "unreachable", detail: `no TLS handshake within ${timeoutMs} ms` },
        ),
      timeoutMs,
    );
    socket.once("secureConnect", () => {
      secure = true;
    });
    // an HTTP/2 server speaks first (its SETTINGS frame): data means the coordinator accepted us
    socket.once("data", () => finish({ verdict: "ok", detail: "TLS handshake completed" }));
    socket.once("close", () => {
      if (secure) {
        finish({
          verdict: "refused",
          detail:
            "the coordinator closed the connection right after the TLS handshake: it does not accept this site's certificate (signed by another CA?)",
        });
      } else finish({ verdict: "unreachable", detail: "connection closed during the TLS handshake" });
    });
    socket.once("error", (err: NodeJS.ErrnoException) => {
      const code = err.code ?? "";
      if (secure) {
        finish({
          verdict: "refused",
          detail: `the coordinator ended the connection right after the TLS handshake (${code || err.message}): it does not accept this site's certificate (signed by another CA?)`,
        });
      } else if (NETWORK_ERRORS.has(code)) {
        finish({ verdict: "unreachable", detail: `${code}: ${err.message}` });
      } else {
        finish({
          verdict: "untrusted",
          detail: `the coordinator's certificate is not trusted (${code || "TLS"}: ${err.message}): is --ca the study's CA certificate?`,
        });
      }
    });
  });
}
