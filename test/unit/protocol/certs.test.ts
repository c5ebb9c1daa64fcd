import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generateCerts } from "../../../src/protocol/certs.js";

describe("dev certificates", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("makes a CA, a coordinator cert with loopback SANs and one client cert per site (CN = site)", async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), "fj-certs-"));
    dirs.push(out);
    const files = await generateCerts({ out, sites: ["ankle", "knee"], hosts: ["coord.example"] });
    const ca = new X509Certificate(await readFile(files.ca));
    expect(ca.ca).toBe(true);
    const coord = new X509Certificate(await readFile(files.coordinator.cert));
    expect(coord.verify(ca.publicKey)).toBe(true);
    expect(coord.checkHost("localhost")).toBe("localhost");
    expect(coord.checkHost("coord.example")).toBe("coord.example");
    expect(coord.checkIP("127.0.0.1")).toBe("127.0.0.1");
    for (const site of ["ankle", "knee"]) {
      const c = new X509Certificate(await readFile(files.sites[site].cert));
      expect(c.subject).toBe(`CN=${site}`);
      expect(c.verify(ca.publicKey)).toBe(true);
      expect(c.ca).toBe(false);
      expect((await stat(files.sites[site].key)).mode & 0o777).toBe(0o600);
    }
    // a second CA does not verify the first one's certificates
    const other = await mkdtemp(path.join(os.tmpdir(), "fj-certs-"));
    dirs.push(other);
    const foreign = await generateCerts({ out: other, sites: ["knee"] });
    const foreignCa = new X509Certificate(await readFile(foreign.ca));
    expect(new X509Certificate(await readFile(files.sites.knee.cert)).verify(foreignCa.publicKey)).toBe(
      false,
    );
    // --reuse-ca signs new site certs with the same CA
    const again = await generateCerts({ out, sites: ["shoulder"], reuseCa: true });
    expect(new X509Certificate(await readFile(again.sites.shoulder.cert)).verify(ca.publicKey)).toBe(true);
  });

  it("rejects bad site names with a one-line reason", async () => {
    await expect(generateCerts({ out: os.tmpdir(), sites: ["kn ee"] })).rejects.toThrowError(
      /'kn ee' is not a valid site name/,
    );
    await expect(generateCerts({ out: os.tmpdir(), sites: ["knee", "knee"] })).rejects.toThrowError(
      /listed twice/,
    );
  });
});
