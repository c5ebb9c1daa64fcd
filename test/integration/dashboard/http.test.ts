import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createMetrics, serveMetrics } from "../../../src/dashboard/metrics.js";
import { startDashboard } from "../../../src/dashboard/server.js";
import { FedjointError } from "../../../src/errors.js";
import { InProcessBus } from "../../../src/events/bus-memory.js";
import { wholeStudy } from "../../unit/events/study-events.js";

const TOKEN = "t0ken-for-the-dashboard-test";

async function busWith(study: string) {
  const bus = new InProcessBus();
  for (const e of wholeStudy(study, 2)) await bus.publish(e);
  return bus;
}

/** The first SSE message of /events. */
async function firstSse(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ event: string; data: unknown; id: string }> {
  const ac = new AbortController();
  const res = await fetch(url, { headers, signal: ac.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`SSE stream ended early: ${text}`);
    text += new TextDecoder().decode(value);
    const block = text.split("\n\n").find((b) => b.includes("event: state") && b.includes("data: "));
    if (block !== undefined) {
      ac.abort();
      const field = (k: string) =>
        block
          .split("\n")
          .find((l) => l.startsWith(`${k}: `))
          ?.slice(k.length + 2) ?? "";
      return { event: field("event"), id: field("id"), data: JSON.parse(field("data")) };
    }
  }
}

describe("dashboard HTTP surface", () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it("needs a token (header or ?token=) off loopback and serves state, events, SSE and metrics with it", async () => {
    const bus = await busWith("h1");
    await expect(startDashboard({ bus, study: "h1", host: "0.0.0.0", port: 0 })).rejects.toThrow(
      /FJ_DASHBOARD_TOKEN_REQUIRED|is not loopback: give a token/,
    );
    await expect(
      startDashboard({ bus, study: "h1", host: "0.0.0.0", port: 0, token: "short" }),
    ).rejects.toThrow(FedjointError);
    const d = await startDashboard({ bus, study: "h1", host: "0.0.0.0", port: 0, token: TOKEN });
    cleanup.push(() => d.close());
    const base = d.url;
    expect((await fetch(`${base}`)).status).toBe(200); // the shell holds no data
    expect((await fetch(`${base}vendor/chart.umd.min.js`)).status).toBe(200);
    for (const path of ["api/state", "api/events", "api/embeddings", "metrics", "events"]) {
      expect((await fetch(`${base}${path}`)).status, path).toBe(401);
      expect((await fetch(`${base}${path}?token=wrong-token-wrong-token`)).status, path).toBe(401);
    }
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const state = (await (await fetch(`${base}api/state`, { headers: auth })).json()) as {
      status: string;
      rounds: unknown[];
    };
    expect([state.status, state.rounds.length]).toEqual(["done", 2]);
    const events = (await (await fetch(`${base}api/events?token=${TOKEN}`)).json()) as { seq: number }[];
    expect(events.map((e) => e.seq)).toEqual(wholeStudy("h1", 2).map((e) => e.seq));
    const emb = (await (await fetch(`${base}api/embeddings`, { headers: auth })).json()) as {
      available: boolean;
      reason: string;
    };
    expect(emb).toMatchObject({ available: false, reason: "the coordinator does not expose embeddings" });
    const metrics = await (await fetch(`${base}metrics`, { headers: auth })).text();
    expect(metrics).toMatch(/^fedjoint_rounds_closed_total\{study="h1",phase="seg"\} 2$/m);
    expect(metrics).toMatch(/^fedjoint_bytes_in_total\{study="h1"\} 20000000$/m);
    const sse = await firstSse(`${base}events?token=${TOKEN}`);
    expect(sse.event).toBe("state");
    expect(sse.id).toBe(String(wholeStudy("h1", 2).length));
    expect((sse.data as { study: string }).study).toBe("h1");
    const post = await fetch(`${base}api/state`, { method: "POST", headers: auth });
    expect(post.status).toBe(405);
    const page = await fetch(base);
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
  });

  it("serves metrics on their own port with a token", async () => {
    const bus = await busWith("h2");
    const m = createMetrics();
    const stop = await m.attach(bus, "h2");
    const srv = await serveMetrics(m, { host: "127.0.0.1", port: 0, token: TOKEN });
    cleanup.push(() => srv.close());
    cleanup.push(stop);
    expect((await fetch(srv.url)).status).toBe(401);
    const text = await (await fetch(srv.url, { headers: { Authorization: `Bearer ${TOKEN}` } })).text();
    expect(text).toMatch(/^fedjoint_updates_accepted_total\{study="h2",site="knee-hospital"\} 2$/m);
  });

  it("accepts a client certificate signed by the CA instead of a token (mTLS)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fedjoint-dash-tls-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
    ssl(
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      "/CN=fedjoint test CA",
    );
    for (const [name, ext] of [
      ["server", "subjectAltName=IP:127.0.0.1"],
      ["auditor", "extendedKeyUsage=clientAuth"],
    ] as const) {
      ssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        `${name}.key`,
        "-out",
        `${name}.csr`,
        "-subj",
        `/CN=${name}`,
      );
      writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
      ssl(
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        `${name}.pem`,
        "-days",
        "2",
        "-extfile",
        `${name}.ext`,
      );
    }
    const read = (f: string) => readFileSync(join(dir, f));
    const bus = await busWith("h3");
    const d = await startDashboard({
      bus,
      study: "h3",
      host: "0.0.0.0",
      port: 0,
      tls: { cert: read("server.pem"), key: read("server.key"), ca: read("ca.pem") },
    });
    cleanup.push(() => d.close());
    expect(d.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
    const get = (path: string, client: boolean) =>
      new Promise<number>((resolve, reject) => {
        const req = httpsRequest(
          `${d.url}${path}`,
          { ca: read("ca.pem"), ...(client ? { cert: read("auditor.pem"), key: read("auditor.key") } : {}) },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on("error", reject);
        req.end();
      });
    expect(await get("api/state", false)).toBe(401);
    expect(await get("api/state", true)).toBe(200);
    expect(await get("metrics", true)).toBe(200);
  });
});
