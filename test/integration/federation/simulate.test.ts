/**
 * Acceptance: a 3-site `simulate` run (coordinator + three site-client processes, loopback
 * mTLS) completes and every site trains (its cross-entropy falls); every tensor name that
 * crosses the wire (both directions, captured by the wire tap in every process) is shared or an
 * anonymous embedding, never domain-specific, and embedding messages carry no index/identifier;
 * round wall time vs the slowest site's compute is measured and reported.
 */
import { readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { StudyState } from "../../../src/coordinator/study.js";
import { type SimulateSummary, simulate } from "../../../src/simulation/simulate.js";
import { parseStudyConfig } from "../../../src/study/config.js";

interface TapLine {
  pid: number;
  direction: "sent" | "received";
  rpc: string;
  header: Record<string, unknown>;
}

const work = path.join(os.tmpdir(), `fj-sim-it-${process.pid}`);
const tap = path.join(work, "wire.jsonl");

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("fedjoint simulate (3 sites, dsl+msc+mjap, loopback mTLS)", () => {
  let summary: SimulateSummary;

  it("completes and every site trains (its cross-entropy falls)", async () => {
    process.env.FEDJOINT_WIRE_TAP = tap;
    try {
      summary = await simulate({
        study: parseStudyConfig({
          study: "simulate",
          method: "dsl+msc+mjap",
          sites: ["ankle", "knee", "shoulder"].map((j) => ({ name: j, joint: j })),
          rounds: 4,
          aeRounds: 1,
          localSteps: 8,
          roundTimeoutS: 300,
          model: { base: 8, depth: 3, size: 32 },
          training: { seg: { batch: 18, lr: 3e-3 }, ae: { batch: 18, lr: 3e-3 } },
          embeddings: { enabled: true, count: 16 },
        }),
        subjects: 4,
        dataSize: 32,
        workdir: work,
        backend: "wasm",
        threads: 1,
        insecure: false,
      });
    } finally {
      delete process.env.FEDJOINT_WIRE_TAP;
    }
    expect(summary.aggregations).toBe(5); // 1 AE + 4 SEG rounds
    // every site trains: its segmentation cross-entropy falls from the first to the last round (the
    // Dice a federated run reaches is the quality benchmark's business: `fedjoint bench quality`)
    const state = JSON.parse(
      await readFile(path.join(work, "coordinator", "state.json"), "utf8"),
    ) as StudyState;
    for (const [site, s] of Object.entries(summary.sites)) {
      expect(s.initialDice, site).not.toBeNull();
      expect(s.finalDice, site).not.toBeNull();
      const ce = state.ledger.filter((e) => e.site === site && e.phase === "seg").map((e) => e.loss.ce);
      expect(ce, site).toHaveLength(4);
      expect(ce.at(-1)!, `${site}: CE by round ${ce.join(", ")}`).toBeLessThan(ce[0]);
      expect(s.computeSeconds).toBeGreaterThan(0);
    }
    // every SEG round after the first moves a model both ways for every site
    for (const r of summary.rounds.filter((x) => x.phase === "seg" && x.round > 0)) {
      for (const site of ["ankle", "knee", "shoulder"]) {
        expect(r.bytes[site].sent).toBeGreaterThan(0);
        expect(r.bytes[site].received).toBeGreaterThan(0);
      }
    }
  });

  it("round wall time stays within 1.10x of the slowest site's compute (median over rounds after the first)", () => {
    const rows = summary.rounds.map(
      (r) =>
        `${r.phase}#${r.round} wall ${r.wallSeconds.toFixed(3)} s, slowest compute ${r.slowestComputeSeconds.toFixed(3)} s, x${r.overhead.toFixed(3)}`,
    );
    process.stderr.write(
      `simulate rounds:\n  ${rows.join("\n  ")}\n  median x${summary.overhead.median.toFixed(3)}, max x${summary.overhead.max.toFixed(3)}\n`,
    );
    expect(summary.overhead.median).toBeLessThanOrEqual(1.1);
  });

  it("never puts a domain-specific tensor or an embedding identifier on the wire", async () => {
    const lines = (await readFile(tap, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as TapLine);
    const seen = new Set(lines.map((l) => `${l.direction}:${l.rpc}`));
    for (const k of [
      "sent:PushUpdate",
      "sent:PushEmbeddings",
      "received:PullModel",
      "received:PullEmbeddings",
      "received:PushUpdate",
      "sent:PullModel",
    ]) {
      expect(seen.has(k), k).toBe(true);
    }
    const specsOf = (l: TapLine) => {
      const h = l.header as { tensors?: unknown };
      const set = (l.rpc === "PullModel" || l.rpc === "PullEmbeddings" ? h : h.tensors) as {
        tensors: { name: string; shape: number[] }[];
      };
      return set.tensors;
    };
    const names = new Set(lines.flatMap((l) => specsOf(l).map((t) => t.name)));
    expect([...names].some((n) => n.startsWith("shared/"))).toBe(true);
    expect(names.has("embedding/scale0")).toBe(true);
    for (const n of names) {
      expect(n, n).toMatch(/^(shared\/|embedding\/scale\d+$)/);
      expect(n, n).not.toMatch(/domain|dsbn|head|ankle|knee|shoulder/i);
    }
    for (const l of lines.filter((x) => x.rpc === "PullEmbeddings")) {
      // what other sites receive: one tensor per scale and the set checksum — no site, slice or exam field
      expect(Object.keys(l.header).sort()).toEqual(["bytes", "sha256", "tensors"]);
      for (const t of specsOf(l)) expect(t.shape).toHaveLength(2);
    }
    for (const l of lines.filter((x) => x.rpc === "PushEmbeddings")) {
      // the uploader's own (certificate-proven) name and the round; no per-vector index or identifier
      const keys = Object.keys(l.header).filter((k) => k !== "part");
      for (const k of keys) expect(["site", "ref", "tensors", "mix", "noise"]).toContain(k);
      for (const t of specsOf(l)) {
        expect(Object.keys(t).sort()).toEqual(["dtype", "name", "shape"]);
        expect(t.shape).toHaveLength(2);
      }
    }
  });
});
