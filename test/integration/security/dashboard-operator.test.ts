/**
 * The dashboard's client-certificate access follows the coordinator's operator identity: with
 * `operators`, a certificate of the study CA opens the protected routes only when its CN is an
 * operator's — a site's certificate from the same CA gets 401, like no certificate at all.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { request } from "node:https";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startDashboard } from "../../../src/dashboard/server.js";
import { InProcessBus } from "../../../src/events/bus-memory.js";
import { generateCerts } from "../../../src/protocol/certs.js";

function get(url: string, tls: { ca: Buffer; cert?: Buffer; key?: Buffer }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tls, method: "GET" }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("dashboard access by operator certificate", () => {
  let dir: string;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("opens /api/state to the operator's certificate and to no site's", async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "fj-dash-op-"));
    const certs = await generateCerts({ out: dir, sites: ["knee"] });
    const [ca, cert, key] = await Promise.all(
      [certs.ca, certs.coordinator.cert, certs.coordinator.key].map((f) => readFile(f)),
    );
    const bus = new InProcessBus();
    const dashboard = await startDashboard({
      bus,
      study: "s",
      host: "0.0.0.0",
      port: 0,
      tls: { cert, key, ca },
      operators: ["operator"],
    });
    try {
      const url = `https://localhost:${new URL(dashboard.url).port}/api/state`;
      const as = async (files?: { cert: string; key: string }) =>
        get(url, files ? { ca, cert: await readFile(files.cert), key: await readFile(files.key) } : { ca });
      expect(await as(certs.operator)).toBe(200);
      expect(await as(certs.sites.knee)).toBe(401);
      expect(await as()).toBe(401);
    } finally {
      await dashboard.close();
      await bus.close();
    }
  });
});
