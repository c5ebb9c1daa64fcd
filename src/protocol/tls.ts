/**
 * gRPC credentials: mutual TLS from PEM files (the default) or plaintext for local demos
 * (`--insecure`, announced loudly by the CLIs). Caller identity on the server = the subject CN of
 * the verified client certificate.
 */
import { readFile } from "node:fs/promises";
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
