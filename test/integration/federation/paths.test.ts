/**
 * Federated paths the other tests do not take, each run for real (coordinator and site-client
 * processes):
 * - float16 compression end to end: every tensor set on the wire, both directions (updates,
 *   models, embeddings and banks), is float16 at 2 bytes an element, and the study completes;
 * - sites with different exam counts (3 and 5): each trains on its own leave-one-out split and is
 *   evaluated on its own test exam;
 * - plaintext `--insecure` on loopback: both sides say so, on stderr and in their log;
 * - the join refusal FJ_COORD_EXAMS: a site with fewer exams than the study's folds (or than 3) is
 *   refused at Join with one line and exit 5 (a protocol refusal), and the coordinator records no such site.
 */
import { readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import type { StudyState } from "../../../src/coordinator/study.js";
import { synthesizeDataset } from "../../../src/data/phantoms.js";
import { studyResultsSchema } from "../../../src/eval/types.js";
import { simulate } from "../../../src/simulation/simulate.js";
import { parseStudyConfig } from "../../../src/study/config.js";
import { unary } from "../security/helpers.js";
import {
  type Env,
  freePort,
  makeEnv,
  type Proc,
  rawClient,
  readState,
  startCoordinator,
  startSite,
  studyConfig,
  writeConfig,
} from "./helpers.js";

interface TapLine {
  direction: "sent" | "received";
  rpc: string;
  header: Record<string, unknown>;
}
type WireSet = { tensors: { name: string; shape: number[]; dtype: string }[]; bytes: number };

const root = path.join(os.tmpdir(), `fj-paths-${process.pid}`);
const logLines = async (file: string) =>
  (await readFile(file, "utf8"))
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
/** The one-line `FJ_…: …` a process ended with. */
const lastError = (p: Proc) =>
  p
    .logLines()
    .map((l) => String(l.msg))
    .filter((m) => /^FJ_[A-Z_]+: /.test(m))
    .at(-1);

describe("federated paths: float16, unequal exam counts, --insecure, the join refusal", () => {
  let env: Env | undefined;
  const procs: Proc[] = [];
  afterAll(async () => {
    for (const p of procs) p.kill("SIGKILL");
    await rm(root, { recursive: true, force: true });
    if (env) await rm(env.work, { recursive: true, force: true });
  });

  it("float16 on the wire end to end, sites with 3 and 5 exams, plaintext --insecure with its warnings", async () => {
    const sites = [
      { name: "ankle", joint: "ankle", exams: 3 },
      { name: "knee", joint: "knee", exams: 5 },
    ] as const;
    const data: string[] = [];
    for (const [i, s] of sites.entries()) {
      const out = path.join(root, "data", s.name);
      await synthesizeDataset({ joint: s.joint, subjects: s.exams, size: 16, seed: i + 1, out });
      data.push(out);
    }
    const work = path.join(root, "study");
    const tap = path.join(root, "wire.jsonl");
    process.env.FEDJOINT_WIRE_TAP = tap;
    try {
      await simulate({
        study: parseStudyConfig({
          study: "paths",
          method: "dsl+msc",
          sites: sites.map((s) => ({ name: s.name, joint: s.joint })),
          rounds: 2,
          localSteps: 1,
          compression: "float16",
          model: { base: 2, depth: 2, size: 16 },
          training: { seg: { batch: 4, lr: 1e-3 } },
          embeddings: { enabled: true, count: 4 },
          strategy: { name: "fedavg" },
        }),
        data,
        subjects: 3,
        dataSize: 16,
        workdir: work,
        backend: "wasm",
        threads: 1,
        insecure: true,
      });
    } finally {
      delete process.env.FEDJOINT_WIRE_TAP;
    }

    // float16, both directions, every kind of tensor set; 2 bytes an element
    const lines = (await readFile(tap, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as TapLine);
    const setOf = (l: TapLine) => (l.rpc.startsWith("Push") ? l.header.tensors : l.header) as WireSet;
    const kinds = new Map<string, number>();
    for (const l of lines) {
      const set = setOf(l);
      const key = `${l.direction} ${l.rpc}`;
      kinds.set(key, (kinds.get(key) ?? 0) + 1);
      expect(new Set(set.tensors.map((t) => t.dtype)), key).toEqual(new Set(["float16"]));
      const elements = set.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
      expect(set.bytes, key).toBe(2 * elements);
    }
    // 2 sites × 2 rounds of updates and embeddings; models and banks from round 1 on
    expect(Object.fromEntries(kinds)).toMatchObject({
      "sent PushUpdate": 4,
      "received PushUpdate": 4,
      "sent PushEmbeddings": 4,
      "received PushEmbeddings": 4,
    });
    for (const k of [
      "sent PullModel",
      "received PullModel",
      "sent PullEmbeddings",
      "received PullEmbeddings",
    ])
      expect(kinds.get(k), k).toBeGreaterThanOrEqual(2);

    // each site joined with its own exam count, trained on its own split, evaluated its test exam
    const state = JSON.parse(
      await readFile(path.join(work, "coordinator", "state.json"), "utf8"),
    ) as StudyState;
    expect(Object.fromEntries(Object.entries(state.joined).map(([s, j]) => [s, j.exams]))).toEqual({
      ankle: 3,
      knee: 5,
    });
    for (const s of sites) {
      const log = await logLines(path.join(work, "logs", `${s.name}.log`));
      const ready = log.filter((l) => l.msg === "fold data ready");
      expect(
        ready.map((l) => l.trainExams),
        s.name,
      ).toEqual([s.exams - 2]);
    }
    const results = studyResultsSchema.parse(
      JSON.parse(await readFile(path.join(work, "coordinator", "results.json"), "utf8")),
    );
    const permutations = results.foldPlan?.permutations ?? {};
    expect(Object.fromEntries(Object.entries(permutations).map(([s, p]) => [s, [...p].sort()]))).toEqual({
      ankle: [0, 1, 2],
      knee: [0, 1, 2, 3, 4],
    });
    const folds = results.methods.flatMap((m) => m.folds);
    expect(folds.map((f) => f.fold)).toEqual([0]);
    const reported = folds[0]?.sites ?? [];
    expect(reported.map((s) => [s.site, s.exams.length]).sort()).toEqual([
      ["ankle", 1],
      ["knee", 1],
    ]);
    for (const s of reported)
      for (const m of s.exams.flatMap((e) => Object.values(e.labels)))
        expect(Number.isFinite(m.dice), s.site).toBe(true);

    // --insecure: a warning line on stderr and a warn-level log record, on both sides
    const coordinatorLog = await readFile(path.join(work, "logs", "coordinator.log"), "utf8");
    expect(coordinatorLog).toContain(
      "WARNING: coordinator running with --insecure (no TLS, anyone on this machine can act as any site)",
    );
    expect(
      (await logLines(path.join(work, "logs", "coordinator.log"))).filter(
        (l) => l.level === 40 && String(l.msg).startsWith("INSECURE MODE"),
      ),
    ).toHaveLength(1);
    for (const s of sites) {
      const file = path.join(work, "logs", `${s.name}.log`);
      expect(await readFile(file, "utf8")).toContain(
        "WARNING: site-client running with --insecure (no TLS, traffic readable by anyone)",
      );
      expect(
        (await logLines(file)).filter((l) => l.level === 40 && String(l.msg).startsWith("INSECURE MODE")),
      ).toHaveLength(1);
    }
  }, 300_000);

  it("refuses at Join a site with fewer exams than the study's folds, and one with fewer than 3", async () => {
    env = await makeEnv();
    // the federation helpers' phantoms: 4 exams per site; a study of 5 folds needs 5
    const config = await writeConfig(env, studyConfig({ folds: 5 }));
    const port = await freePort();
    const coordinator = startCoordinator(env, config, port);
    procs.push(coordinator);
    await coordinator.waitFor((l) => l.msg === "coordinator listening", "listening");
    const ankle = startSite(env, "ankle", port);
    procs.push(ankle);
    const exit = await ankle.exited;
    expect(exit.code).toBe(5);
    expect(lastError(ankle)).toBe(
      "FJ_COORD_EXAMS: Join: site ankle has 4 exams, the study runs 5 leave-one-out folds",
    );
    // fewer than 3 exams, whatever the folds: a site-client refuses such data itself
    // (FJ_DATA_TOO_FEW_CASES), so the claim comes from a client with the knee's valid certificate
    const knee = await rawClient(port, {
      ...(env.certs.sites.knee as { cert: string; key: string }),
      ca: env.certs.ca,
    });
    const refused = await unary(knee, "Join", {
      site: "knee",
      joint: "knee",
      labels: ["femur", "tibia", "fibula", "patella"],
      exams: 2,
      backend: "wasm",
      version: "x",
    });
    knee.close();
    expect(refused).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: "FJ_COORD_EXAMS: site knee has 2 exams, expected at least 3",
    });
    // the coordinator is still waiting, and recorded neither site
    const state = await readState(env);
    expect(state.status).toBe("joining");
    expect(state.joined).toEqual({});
    coordinator.kill("SIGTERM");
    expect((await coordinator.exited).code).toBe(143);
  }, 180_000);
});
