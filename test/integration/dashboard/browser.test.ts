import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDashboard } from "../../../src/dashboard/server.js";
import type { DashboardHandle, EmbeddingSnapshot } from "../../../src/dashboard/types.js";
import { InProcessBus } from "../../../src/events/bus-memory.js";
import type { StudyEvent } from "../../../src/events/events.js";
import { EventClock, endEvents, joinEvents, roundEvents, SITES } from "../../unit/events/study-events.js";
import { syntheticBank } from "./fixtures.js";

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

describe("dashboard in a real headless Chromium, fed by an in-process bus", () => {
  const study = "browser-study";
  const bus = new InProcessBus();
  const clock = new EventClock(study);
  let bank: EmbeddingSnapshot | null = null;
  let dashboard: DashboardHandle;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const problems: string[] = [];

  const publish = async (events: StudyEvent[]): Promise<number> => {
    for (const e of events) await bus.publish(e);
    return (events.at(-1) as StudyEvent).seq;
  };
  const rendered = (seq: number) => page.waitForSelector(`body[data-last-seq="${seq}"]`, { timeout: 20_000 });

  beforeAll(async () => {
    statSync(CHROMIUM); // a missing browser is a failure, not a skip
    await publish(joinEvents(clock));
    await publish(roundEvents(clock, 0));
    bank = syntheticBank(
      SITES.map((s) => s.site),
      0,
    );
    dashboard = await startDashboard({
      bus,
      study,
      host: "127.0.0.1",
      port: 0,
      embeddings: async () => bank,
    });
    profile = mkdtempSync(join(tmpdir(), "fedjoint-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1400, height: 1000 },
    });
    page = await context.newPage();
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  });

  afterAll(async () => {
    await context?.close();
    await dashboard?.close();
    await bus.close();
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
  });

  it("shows the sites table and updates the charts when a round closes", async () => {
    await page.goto(dashboard.url);
    const firstSeq = dashboard.state().lastSeq;
    await rendered(firstSeq);
    expect(await page.locator("#study-name").textContent()).toBe(study);
    const rows = page.locator("#sites-table tbody tr");
    expect(await rows.count()).toBe(3);
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-site")))).toEqual(
      SITES.map((s) => s.site),
    );
    expect(await page.locator('#sites-table tr[data-site="knee-hospital"] td.status').textContent()).toBe(
      "waiting",
    );
    const chartSizes = () =>
      page.evaluate(() => {
        const w = window as unknown as {
          fedjoint: {
            charts: Record<string, { data: { labels: unknown[]; datasets: { data: unknown[] }[] } }>;
          };
        };
        const c = w.fedjoint.charts;
        return {
          bytes: c["chart-bytes"]?.data.labels.length ?? -1,
          loss: c["chart-loss"]?.data.labels.length ?? -1,
          lossSets: c["chart-loss"]?.data.datasets.length ?? -1,
          dice: c["chart-dice"]?.data.datasets.length ?? -1,
          timeline: c["chart-timeline"]?.data.labels.length ?? -1,
        };
      });
    expect(await chartSizes()).toEqual({ bytes: 1, loss: 1, lossSets: 9, dice: 3, timeline: 1 });

    // Round 1: the shoulder site's update is rejected; the round closes without it.
    const r1 = roundEvents(clock, 1, { reject: "shoulder-hospital" });
    const closedAt = r1.findIndex((e) => e.kind === "round.closed");
    const openSeq = await publish(r1.slice(0, 1));
    await rendered(openSeq);
    expect(await page.locator('#sites-table tr[data-site="knee-hospital"] td.status').textContent()).toBe(
      "training",
    );
    expect((await chartSizes()).timeline).toBe(2);
    expect((await chartSizes()).bytes).toBe(1);
    bank = syntheticBank(
      SITES.map((s) => s.site),
      1,
    );
    const closedSeq = await publish(r1.slice(1, closedAt + 2)); // … round.closed, round.aggregated
    await rendered(closedSeq);
    expect(
      await page.locator('#sites-table tr[data-site="shoulder-hospital"]').getAttribute("data-status"),
    ).toBe("missed");
    expect(await page.locator('#sites-table tr[data-site="shoulder-hospital"] td').nth(6).textContent()).toBe(
      "1",
    );
    expect(await page.locator('#sites-table tr[data-site="knee-hospital"] td.status').textContent()).toBe(
      "waiting",
    );
    expect(await chartSizes()).toEqual({ bytes: 2, loss: 2, lossSets: 9, dice: 3, timeline: 2 });
    expect(await page.locator("#rounds-table tbody tr").first().getAttribute("data-round")).toBe("f0 seg r1");

    // Embeddings of round 1 arrive: the page refetches /api/embeddings and draws s1/s5/s9 + 9 cosine tables.
    const embSeq = await publish(r1.slice(closedAt + 2));
    await rendered(embSeq);
    await page.waitForFunction(
      () =>
        (window as unknown as { fedjoint: { embeddings: { round?: number } | null } }).fedjoint.embeddings
          ?.round === 1,
      undefined,
      { timeout: 20_000 },
    );
    const scatter = await page.evaluate(() => {
      const w = window as unknown as {
        fedjoint: { charts: Record<string, { data: { datasets: { label: string; data: unknown[] }[] } }> };
      };
      return ["s1", "s5", "s9"].map((s) =>
        w.fedjoint.charts[`chart-scatter-${s}`]?.data.datasets.map((d) => [d.label, d.data.length]),
      );
    });
    expect(scatter).toEqual(
      [1, 5, 9].map(() =>
        SITES.map((s) => s.site)
          .sort()
          .map((site) => [site, 40]),
      ),
    );
    expect(await page.locator("#cosine-grid table").count()).toBe(9);

    const doneSeq = await publish(endEvents(clock, 2));
    await rendered(doneSeq);
    expect(await page.locator("#study-status").textContent()).toBe("done");
    expect(await page.locator("#loo-tables table").count()).toBe(3);

    mkdirSync("test-artifacts", { recursive: true });
    await page.screenshot({ path: "test-artifacts/dashboard.png", fullPage: true });
    expect(statSync("test-artifacts/dashboard.png").size).toBeGreaterThan(50_000);
    expect(problems).toEqual([]);
  });
});
