/**
 * Development PKI for mutual TLS: a CA, a coordinator certificate (SAN localhost, 127.0.0.1, ::1
 * and any given host names), one client certificate per site whose subject CN is the site
 * name — the identity the coordinator enforces — and an operator certificate (CN "operator"),
 * the identity the coordinator lets Watch the study (its --operator). ECDSA P-256 keys (node:crypto WebCrypto) and
 * X.509 v3 certificates (@peculiar/x509). Keys are written 0600, every file atomically.
 */
import { webcrypto } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { isIP } from "node:net";
import path from "node:path";
import { writeFileAtomic } from "../atomic-write.js";
// @peculiar/x509 (via tsyringe) needs the Reflect metadata polyfill loaded first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { fjError } from "../errors.js";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const SIGN = { name: "ECDSA", hash: "SHA-256" } as const;

/** Site (and CN) names: letters, digits, "_" and "-" (they are file names and event tokens). */
export const SITE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export interface CertFiles {
  ca: string;
  caKey: string;
  coordinator: { cert: string; key: string };
  /** Client certificate of the coordinator's operator (CN "operator": Watch, dashboard). */
  operator: { cert: string; key: string };
  sites: Record<string, { cert: string; key: string }>;
}

/** CNs `generateCerts` issues besides the sites (so no site may take them). */
export const RESERVED_NAMES = ["coordinator", "ca", "operator"] as const;

export interface GenerateCertsOptions {
  out: string;
  sites: string[];
  /** Extra coordinator host names / IPs for its SAN. */
  hosts?: string[];
  /** Validity in days (default 365). */
  days?: number;
  /** Sign with an existing CA in `out` (ca.pem + ca.key) instead of making a new one. */
  reuseCa?: boolean;
  /** CA common name (default "fedjoint dev CA"). */
  caName?: string;
}

async function keyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function pemKey(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey("pkcs8", key);
  const b64 = Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n");
  return `-----BEGIN PRIVATE KEY-----\n${b64.trim()}\n-----END PRIVATE KEY-----\n`;
}

async function importKey(pem: string, file: string): Promise<CryptoKey> {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  try {
    return await webcrypto.subtle.importKey("pkcs8", Buffer.from(b64, "base64"), ALG, true, ["sign"]);
  } catch (err) {
    throw fjError("FJ_CERTS_KEY", `${file}: not a PKCS#8 ECDSA P-256 private key`, { cause: err });
  }
}

function serial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] &= 0x7f;
  return Buffer.from(b).toString("hex");
}

async function leaf(options: {
  cn: string;
  ca: x509.X509Certificate;
  caKey: CryptoKey;
  days: number;
  server: boolean;
  sans: string[];
}): Promise<{ cert: string; key: string }> {
  const keys = await keyPair();
  const now = new Date(Date.now() - 60_000);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
    new x509.ExtendedKeyUsageExtension(
      options.server
        ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]
        : [x509.ExtendedKeyUsage.clientAuth],
    ),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(options.ca),
  ];
  if (options.sans.length > 0) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension(
        options.sans.map((v) =>
          isIP(v) ? { type: "ip" as const, value: v } : { type: "dns" as const, value: v },
        ),
      ),
    );
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${options.cn}`,
    issuer: options.ca.subject,
    notBefore: now,
    notAfter: new Date(now.getTime() + options.days * 86_400_000),
    signingAlgorithm: SIGN,
    publicKey: keys.publicKey,
    signingKey: options.caKey,
    extensions,
  });
  return { cert: cert.toString("pem"), key: await pemKey(keys.privateKey) };
}

/** Writes ca.pem/ca.key, coordinator.pem/.key and <site>.pem/.key into `out`; returns the paths. */
export async function generateCerts(options: GenerateCertsOptions): Promise<CertFiles> {
  const days = options.days ?? 365;
  if (!Number.isInteger(days) || days < 1) throw fjError("FJ_CLI_ARG", `--days is ${days}, expected ≥ 1`);
  if (options.sites.length === 0)
    throw fjError("FJ_CLI_ARG", "--sites is empty, expected e.g. ankle,knee,shoulder");
  const seen = new Set<string>();
  for (const s of options.sites) {
    if (!SITE_NAME_PATTERN.test(s)) {
      throw fjError("FJ_CLI_ARG", `--sites: '${s}' is not a valid site name (letters, digits, _ or -)`);
    }
    if ((RESERVED_NAMES as readonly string[]).includes(s))
      throw fjError("FJ_CLI_ARG", `--sites: '${s}' is reserved (${RESERVED_NAMES.join(", ")})`);
    if (seen.has(s)) throw fjError("FJ_CLI_ARG", `--sites: '${s}' is listed twice`);
    seen.add(s);
  }
  const out = path.resolve(options.out);
  await mkdir(out, { recursive: true });
  const caFile = path.join(out, "ca.pem");
  const caKeyFile = path.join(out, "ca.key");
  let ca: x509.X509Certificate;
  let caKey: CryptoKey;
  if (options.reuseCa) {
    const [pem, keyPem] = await Promise.all([
      readFile(caFile, "utf8").catch(() => {
        throw fjError("FJ_CERTS_CA", `${caFile}: missing (needed by --reuse-ca)`);
      }),
      readFile(caKeyFile, "utf8").catch(() => {
        throw fjError("FJ_CERTS_CA", `${caKeyFile}: missing (needed by --reuse-ca)`);
      }),
    ]);
    ca = new x509.X509Certificate(pem);
    caKey = await importKey(keyPem, caKeyFile);
  } else {
    const keys = await keyPair();
    const now = new Date(Date.now() - 60_000);
    ca = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: `CN=${options.caName ?? "fedjoint dev CA"}`,
      notBefore: now,
      notAfter: new Date(now.getTime() + days * 86_400_000),
      signingAlgorithm: SIGN,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    caKey = keys.privateKey;
    await writeFileAtomic(caKeyFile, await pemKey(caKey), { mode: 0o600 });
    await writeFileAtomic(caFile, ca.toString("pem"), { mode: 0o644 });
  }
  const files: CertFiles = {
    ca: caFile,
    caKey: caKeyFile,
    coordinator: { cert: path.join(out, "coordinator.pem"), key: path.join(out, "coordinator.key") },
    operator: { cert: path.join(out, "operator.pem"), key: path.join(out, "operator.key") },
    sites: {},
  };
  const hosts = [...new Set(["localhost", "127.0.0.1", "::1", ...(options.hosts ?? [])])];
  const coord = await leaf({ cn: "coordinator", ca, caKey, days, server: true, sans: hosts });
  await writeFileAtomic(files.coordinator.key, coord.key, { mode: 0o600 });
  await writeFileAtomic(files.coordinator.cert, coord.cert, { mode: 0o644 });
  const operator = await leaf({ cn: "operator", ca, caKey, days, server: false, sans: [] });
  await writeFileAtomic(files.operator.key, operator.key, { mode: 0o600 });
  await writeFileAtomic(files.operator.cert, operator.cert, { mode: 0o644 });
  for (const site of options.sites) {
    const c = await leaf({ cn: site, ca, caKey, days, server: false, sans: [] });
    const entry = { cert: path.join(out, `${site}.pem`), key: path.join(out, `${site}.key`) };
    await writeFileAtomic(entry.key, c.key, { mode: 0o600 });
    await writeFileAtomic(entry.cert, c.cert, { mode: 0o644 });
    files.sites[site] = entry;
  }
  return files;
}
