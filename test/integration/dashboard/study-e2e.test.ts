/**
 * End to end: a real 3-site study (coordinator + three site-client processes over loopback mTLS)
 * publishing to a real `nats-server -js`; the dashboard the coordinator serves (`--dashboard`,
 * fed by that NATS stream and the coordinator's live embedding bank) is open in a real headless
 * Chromium while the study runs. Asserts the page updates when a round closes and shows every
 * site's embeddings, holds exactly the study's rounds when it is done, the JetStream stream
 * replays the whole study in order, /metrics counts rounds and bytes, and SIGTERM ends the
 * dashboard's linger with exit 0.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import type { StudySummary } from "../../../src/coordinator/summary.js";
import type { DashboardState, EmbeddingView } from "../../../src/dashboard/types.js";
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
  fedjoint: {
    state: DashboardState | null;
    embeddings: EmbeddingView | null;
    charts: Record<string, { data: { labels: unknown[] } }>;
  };
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

    // The coordinator serves the dashboard (--dashboard), fed by the NATS stream it writes, with
    // its live embedding bank; the page is open before any site joins. After the study the
    // dashboard lingers until the test has read it, and SIGTERM then ends the linger (exit 0).
    const bus = await NatsBus.connect(nats.url);
    cleanup.push(() => bus.close());
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
        ...["--nats", nats.url, "--dashboard", "127.0.0.1:0", "--dashboard-linger-s", "600"],
        ...["--cert", certs.coordinator.cert, "--key", certs.coordinator.key, "--ca", certs.ca],
      ],
      { logFile: join(work, "logs", "coordinator.log") },
    );
    const procs = [coordinator];
    cleanup.push(() => {
      for (const p of procs) p.kill("SIGKILL");
    });
    const dashboardUrl = String(
      (await coordinator.waitFor((l) => l.msg === "dashboard listening", "dashboard listening")).url,
    );
    // the study is open (study.started) once the coordinator listens
    const listening = await coordinator.waitFor((l) => l.msg === "coordinator listening", "listening");
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
    await page.goto(dashboardUrl);
    await page.waitForSelector("body[data-renders]");
    // the coordinator has started the study (study.started) and no site has joined yet
    await page.waitForSelector('#study-status:text("running")', { timeout: 30_000 });
    expect(await page.locator("#count-sites").textContent()).toBe("0");

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

    // A round closes: the sites table and the charts follow, and the coordinator's live
    // embedding bank (a PCA scatter per scale) is on the page with the vectors of all three sites.
    await page.waitForFunction(
      () => (window as unknown as PageState).fedjoint.state?.rounds.some((r) => r.bytesIn !== undefined),
      undefined,
      { timeout: 180_000 },
    );
    const rows = await page
      .locator("#sites-table tbody tr")
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-site")));
    expect(rows.sort()).toEqual(SITES.map((s) => s.name).sort());
    // the page refetches the bank whenever a site's embeddings arrive, and a new round's bank
    // starts empty: take the snapshot in the same tick as the check that all three sites are in it
    const snapshot = await page.waitForFunction(
      (n) => {
        const v = (window as unknown as PageState).fedjoint.embeddings;
        if (
          v?.available !== true ||
          v.scatter.length === 0 ||
          !v.scatter.every((sc) => new Set(sc.points.map((p) => p.site)).size === n)
        )
          return false;
        return {
          phase: v.phase,
          scales: v.scatter.map((sc) => sc.scale),
          sitesPerScale: v.scatter.map((sc) => [...new Set(sc.points.map((p) => p.site))].sort()),
          pointsPerScale: v.scatter.map((sc) => sc.points.length),
          canvases: Array.from(document.querySelectorAll("#scatter-grid canvas"), (c) => c.id),
        };
      },
      SITES.length,
      { timeout: 180_000 },
    );
    const live = (await snapshot.jsonValue()) as {
      phase: string;
      scales: number[];
      sitesPerScale: string[][];
      pointsPerScale: number[];
      canvases: string[];
    };
    // depth 2: scales s1 (encoder), s2 (bottleneck), s3 (decoder); 8 vectors a site and scale
    expect(live.phase).toBe("seg");
    expect(live.scales).toEqual([1, 2, 3]);
    for (const [i, sites] of live.sitesPerScale.entries()) {
      expect(sites, `scale ${live.scales[i]}`).toEqual(SITES.map((s) => s.name).sort());
      expect(live.pointsPerScale[i], `scale ${live.scales[i]}`).toBe(3 * 8);
    }
    expect(live.canvases).toEqual(live.scales.map((sc) => `chart-scatter-s${sc}`));

    const sites = procs.slice(1);
    const siteExits = await Promise.all(sites.map((p) => p.exited));
    expect(
      siteExits.map((e) => e.code),
      `logs in ${join(work, "logs")}`,
    ).toEqual([0, 0, 0]);
    await coordinator.waitFor(
      (l) => l.msg === "study done; the dashboard stays up",
      "the dashboard's linger",
    );
    await page.waitForSelector('#study-status:text("done")', { timeout: 30_000 });
    // the finished study, exactly: every round on the page, in the tables and the charts
    const final = await page.evaluate(() => {
      const f = (window as unknown as PageState).fedjoint;
      return {
        rounds: f.state?.rounds.filter((r) => r.bytesIn !== undefined).length,
        bytes: f.charts["chart-bytes"]?.data.labels.length,
        loss: f.charts["chart-loss"]?.data.labels.length,
        table: document.querySelectorAll("#rounds-table tbody tr").length,
      };
    });
    expect(final).toEqual({ rounds: ROUNDS, bytes: ROUNDS, loss: ROUNDS, table: ROUNDS });

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
    expect(count("embeddings.received")).toBe(3 * ROUNDS);
    for (let r = 0; r < ROUNDS; r++) {
      const at = (k: StudyEvent["kind"]) =>
        events.findIndex((e) => e.kind === k && "round" in e && e.round === r && e.phase === "seg");
      const accepted = events.flatMap((e, i) => (e.kind === "update.accepted" && e.round === r ? [i] : []));
      expect(accepted).toHaveLength(3);
      expect(at("round.opened")).toBeLessThan(Math.min(...accepted));
      expect(Math.max(...accepted)).toBeLessThan(at("round.closed"));
      expect(at("round.closed")).toBeLessThan(at("round.aggregated"));
    }
    const served = (await (await fetch(`${dashboardUrl}api/state`)).json()) as DashboardState;
    expect(served.events).toBe(events.length);

    // Prometheus counters after the run.
    const metrics = await (await fetch(`${dashboardUrl}metrics`)).text();
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

    // SIGTERM ends the linger of a finished study: exit 0 and the summary on stdout
    coordinator.kill("SIGTERM");
    expect((await coordinator.exited).code).toBe(0);
    expect(coordinator.json<StudySummary>().aggregations).toBe(ROUNDS);
  });
});
