/**
 * End to end: a real 3-site study (coordinator + three site-client processes over loopback mTLS)
 * publishing to a real `nats-server -js`; the dashboard, fed by the NATS stream, is open in a
 * real headless Chromium while the study runs. Asserts the page updates when a round closes, the
 * JetStream stream replays the whole study in order, and /metrics counts rounds and bytes.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import type { StudySummary } from "../../../src/coordinator/summary.js";
import { startDashboard } from "../../../src/dashboard/server.js";
import type { DashboardHandle, DashboardState } from "../../../src/dashboard/types.js";
import { synthesizeDataset } from "../../../src/data/phantoms.js";
import { NatsBus } from "../../../src/events/bus-nats.js";
import type { StudyEvent } from "../../../src/events/events.js";
import type { Joint } from "../../../src/joints.js";
import { generateCerts } from "../../../src/protocol/certs.js";
import { Proc } from "../../../src/simulation/processes.js";
import { parseStudyConfig } from "../../../src/study/config.js";
import { type NatsServer, startNatsServer } from "../events/nats-server.js";

const CHROMIUM = "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const STUDY = "e2e-dashboard";
const SITES: { name: string; joint: Joint }[] = [
  { name: "ankle-hospital", joint: "ankle" },
  { name: "knee-hospital", joint: "knee" },
  { name: "shoulder-hospital", joint: "shoulder" },
];
const ROUNDS = 3;

type PageState = {
  fedjoint: { state: DashboardState | null; charts: Record<string, { data: { labels: unknown[] } }> };
};

describe("dashboard and audit log of a running 3-site study", () => {
  const cleanup: (() => Promise<unknown> | unknown)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it("shows the study live in Chromium, and JetStream replays it in order", async () => {
    statSync(CHROMIUM);
    const nats: NatsServer = await startNatsServer();
    cleanup.push(() => nats.stop());
    const work = mkdtempSync(join(tmpdir(), "fedjoint-e2e-"));
    cleanup.push(() => rmSync(work, { recursive: true, force: true }));
    mkdirSync(join(work, "logs"));
    const certs = await generateCerts({ out: join(work, "certs"), sites: SITES.map((s) => s.name) });
    for (const [i, s] of SITES.entries()) {
      await synthesizeDataset({
        joint: s.joint,
        subjects: 3,
        size: 16,
        seed: i + 1,
        out: join(work, "data", s.name),
      });
    }
    const config = parseStudyConfig(
      {
        study: STUDY,
        method: "dsl+msc",
        sites: SITES,
        rounds: ROUNDS,
        localSteps: 2,
        minSites: 3,
        roundTimeoutS: 300,
        strategy: { name: "fedavg" },
        folds: 1,
        seed: 0,
        model: { base: 4, depth: 2, size: 16 },
        training: { seg: { batch: 9 }, ae: { batch: 9 } },
        embeddings: { enabled: true, count: 8, mix: 1, noise: 0 },
      },
      "e2e study",
    );
    writeFileSync(join(work, "study.json"), JSON.stringify(config));

    // The dashboard reads the stream the coordinator writes; it is up before the study starts.
    const bus = await NatsBus.connect(nats.url);
    cleanup.push(() => bus.close());
    const dashboard: DashboardHandle = await startDashboard({
      bus,
      study: STUDY,
      host: "127.0.0.1",
      port: 0,
    });
    cleanup.push(() => dashboard.close());
    const profile = mkdtempSync(join(tmpdir(), "fedjoint-chromium-"));
    cleanup.push(() => rmSync(profile, { recursive: true, force: true }));
    const context: BrowserContext = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1400, height: 1000 },
    });
    cleanup.push(() => context.close());
    const page: Page = await context.newPage();
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(e.message));
    await page.goto(dashboard.url);
    await page.waitForSelector("body[data-renders]");
    expect(await page.locator("#study-status").textContent()).toBe("waiting");

    const coordinator = new Proc(
      "coordinator",
      "coordinator",
      [
        ...[
          "--config",
          join(work, "study.json"),
          "--state",
          join(work, "coordinator"),
          "--port",
          "0",
          "--json",
        ],
        ...[
          "--nats",
          nats.url,
          "--cert",
          certs.coordinator.cert,
          "--key",
          certs.coordinator.key,
          "--ca",
          certs.ca,
        ],
      ],
      { logFile: join(work, "logs", "coordinator.log") },
    );
    const procs = [coordinator];
    cleanup.push(() => {
      for (const p of procs) p.kill("SIGKILL");
    });
    const listening = await coordinator.waitFor((l) => l.msg === "coordinator listening", "listening");
    const port = String(listening.address).split(":").pop();
    for (const s of SITES) {
      const site = certs.sites[s.name] as { cert: string; key: string };
      procs.push(
        new Proc(
          s.name,
          "site-client",
          [
            ...[
              "--joint",
              s.joint,
              "--data",
              join(work, "data", s.name),
              "--coordinator",
              `127.0.0.1:${port}`,
            ],
            ...["--state", join(work, "sites", s.name), "--backend", "auto", "--json"],
            ...["--cert", site.cert, "--key", site.key, "--ca", certs.ca],
          ],
          { logFile: join(work, "logs", `${s.name}.log`), env: { FEDJOINT_THREADS: "1" } },
        ),
      );
    }

    // A round closes: the sites table and the charts follow.
    await page.waitForFunction(
      () => (window as unknown as PageState).fedjoint.state?.rounds.some((r) => r.bytesIn !== undefined),
      undefined,
      {
        timeout: 180_000,
      },
    );
    const rows = await page
      .locator("#sites-table tbody tr")
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-site")));
    expect(rows.sort()).toEqual(SITES.map((s) => s.name).sort());
    const charts = await page.evaluate(() => {
      const c = (window as unknown as PageState).fedjoint.charts;
      return {
        bytes: c["chart-bytes"]?.data.labels.length ?? 0,
        loss: c["chart-loss"]?.data.labels.length ?? 0,
      };
    });
    expect(charts.bytes).toBeGreaterThanOrEqual(1);
    expect(charts.loss).toBeGreaterThanOrEqual(1);
    expect(await page.locator("#rounds-table tbody tr").count()).toBeGreaterThanOrEqual(1);

    const exits = await Promise.all(procs.map((p) => p.exited));
    expect(
      exits.map((e) => e.code),
      `logs in ${join(work, "logs")}`,
    ).toEqual([0, 0, 0, 0]);
    const summary = coordinator.json<StudySummary>();
    expect(summary.aggregations).toBe(ROUNDS);
    await page.waitForSelector('#study-status:text("done")', { timeout: 30_000 });

    // The JetStream stream replays the whole study, in order.
    const { events, skipped } = await bus.history(STUDY);
    expect(skipped).toBe(0);
    const seqs = events.map((e) => e.seq);
    expect(seqs.every((s, i) => i === 0 || s > (seqs[i - 1] as number))).toBe(true);
    expect(events[0]?.kind).toBe("study.started");
    expect(events.at(-1)?.kind).toBe("study.done");
    const count = (k: StudyEvent["kind"]) => events.filter((e) => e.kind === k).length;
    expect({
      joined: count("site.joined"),
      opened: count("round.opened"),
      accepted: count("update.accepted"),
      rejected: count("update.rejected"),
      closed: count("round.closed"),
      aggregated: count("round.aggregated"),
      evaluated: count("evaluation.reported"),
      done: count("study.done"),
    }).toEqual({
      joined: 3,
      opened: ROUNDS,
      accepted: 3 * ROUNDS,
      rejected: 0,
      closed: ROUNDS,
      aggregated: ROUNDS,
      evaluated: 3,
      done: 1,
    });
    expect(count("embeddings.received")).toBeGreaterThanOrEqual(3);
    for (let r = 0; r < ROUNDS; r++) {
      const at = (k: StudyEvent["kind"]) =>
        events.findIndex((e) => e.kind === k && "round" in e && e.round === r && e.phase === "seg");
      const accepted = events.flatMap((e, i) => (e.kind === "update.accepted" && e.round === r ? [i] : []));
      expect(accepted).toHaveLength(3);
      expect(at("round.opened")).toBeLessThan(Math.min(...accepted));
      expect(Math.max(...accepted)).toBeLessThan(at("round.closed"));
      expect(at("round.closed")).toBeLessThan(at("round.aggregated"));
    }
    expect(dashboard.state().events).toBe(events.length);

    // Prometheus counters after the run.
    const metrics = await (await fetch(`${dashboard.url}metrics`)).text();
    expect(metrics).toMatch(
      new RegExp(`^fedjoint_rounds_aggregated_total\\{study="${STUDY}",phase="seg"\\} ${ROUNDS}$`, "m"),
    );
    const bytesIn = Number(
      new RegExp(`^fedjoint_bytes_in_total\\{study="${STUDY}"\\} (\\d+)$`, "m").exec(metrics)?.[1],
    );
    expect(bytesIn).toBeGreaterThan(0);

    mkdirSync("test-artifacts", { recursive: true });
    await page.screenshot({ path: "test-artifacts/dashboard-study.png", fullPage: true });
    expect(problems).toEqual([]);
  });
});
