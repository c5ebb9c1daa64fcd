/**
 * Issue 6 acceptance, end to end: two tiny 3-site leave-one-out `simulate` studies (real
 * coordinator and site processes over loopback mTLS; sites evaluate their test exams locally and
 * report only metrics) each leave report.md, metrics.csv and metrics.json; `fedjoint report`
 * merges them into one comparison with a Kolmogorov–Smirnov p-value table.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { simulate } from "../../../src/simulation/simulate.js";
import { parseStudyConfig } from "../../../src/study/config.js";
import type { Method } from "../../../src/study/methods.js";

const ROOT = path.resolve(import.meta.dirname, "../../..");
let work: string;

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function study(method: Method, dir: string): Promise<string> {
  await simulate({
    study: parseStudyConfig({
      study: "simulate",
      method,
      sites: ["ankle", "knee", "shoulder"].map((j) => ({ name: j, joint: j })),
      rounds: 1,
      aeRounds: 1,
      localSteps: 2,
      roundTimeoutS: 300,
      folds: 3,
      seed: 5,
      model: { base: 4, depth: 2, size: 16 },
      training: { seg: { batch: 9, lr: 3e-3 }, ae: { batch: 9, lr: 3e-3 } },
      embeddings: { enabled: true, count: 4 },
    }),
    subjects: 3,
    dataSize: 16,
    workdir: dir,
    backend: "wasm",
    threads: 1,
    insecure: false,
  });
  return path.join(dir, "coordinator", "report");
}

describe("leave-one-out across sites, simulate → report", () => {
  it("writes the three report files per study and a merged comparison with KS p-values", async () => {
    work = await mkdtemp(path.join(os.tmpdir(), "fj-loo-"));
    const reports = [
      await study("dsl", path.join(work, "dsl")),
      await study("dsl+msc", path.join(work, "msc")),
    ];
    for (const [i, dir] of reports.entries()) {
      const csv = (await readFile(path.join(dir, "metrics.csv"), "utf8")).trim().split("\n");
      const header = csv[0].split(",");
      const rows = csv.slice(1).map((l) => Object.fromEntries(l.split(",").map((v, k) => [header[k], v])));
      // One row per site per metric (per-exam mean over bones), over all 3 folds.
      for (const site of ["ankle", "knee", "shoulder"]) {
        for (const metric of ["dice", "sensitivity", "specificity", "mssd", "assd", "ravd"]) {
          const hit = rows.filter((r) => r.site === site && r.label === "mean" && r.metric === metric);
          expect(hit, `${site} ${metric}`).toHaveLength(1);
          expect(hit[0].method).toBe(i === 0 ? "dsl" : "dsl+msc");
          expect(Number(hit[0].n)).toBe(3);
        }
      }
      const json = JSON.parse(await readFile(path.join(dir, "metrics.json"), "utf8")) as {
        methods?: unknown;
      };
      expect(json).toBeTypeOf("object");
      expect(await readFile(path.join(dir, "report.md"), "utf8")).toMatch(
        /Leave-one-out plan: seed `5`, 3 folds/,
      );
    }
    const out = path.join(work, "comparison");
    const merged = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        path.join(ROOT, "test/integration/eval/cli-entry.ts"),
        "report",
        "--runs",
        ...reports,
        "--out",
        out,
        "--json",
      ],
      { cwd: ROOT, encoding: "utf8" },
    );
    expect(merged.status, merged.stderr).toBe(0);
    const md = await readFile(path.join(out, "report.md"), "utf8");
    // Table 4 layout: the non-reference method's row carries three KS p-values in [0, 1].
    const table4 = md.slice(md.indexOf("Kolmogorov–Smirnov tests"));
    const row = table4.split("\n").find((l) => l.startsWith("| dsl |"));
    expect(row, md).toBeDefined();
    const cells = row!.split("|").map((c) => c.trim());
    const pValues = [cells[3], cells[5], cells[7]].map((c) => (c.startsWith("<") ? 0 : Number(c)));
    for (const p of pValues) {
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThanOrEqual(1);
    }
    expect(table4).toMatch(/against the reference \*\*dsl\+msc\*\*/);
  }, 300_000);
});
