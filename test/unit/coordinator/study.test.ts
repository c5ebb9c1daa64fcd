import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { InProcessBus } from "../../../src/coordinator/bus-memory.js";
import { loadStudyConfig, parseStudyConfig, type StudyConfigInput } from "../../../src/coordinator/config.js";
import type { StudyEvent } from "../../../src/coordinator/events.js";
import { type Ref, Study, type UpdateInput } from "../../../src/coordinator/study.js";
import { studyResultsSchema } from "../../../src/eval/types.js";
import type { NamedTensor } from "../../../src/model/api.js";
import { encodeTensorSet } from "../../../src/protocol/tensors.js";

const SITES = [
  { name: "a", joint: "ankle" },
  { name: "k", joint: "knee" },
  { name: "s", joint: "shoulder" },
] as const;

function config(over: Partial<StudyConfigInput> = {}) {
  return parseStudyConfig({
    study: "t",
    method: "dsl",
    sites: [...SITES],
    rounds: 2,
    localSteps: 1,
    minSites: 2,
    roundTimeoutS: 60,
    embeddings: { enabled: false },
    ...over,
  });
}

const tensors = (v: number, shape = [2]): NamedTensor[] => [
  { name: "shared/w", shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v) },
];

function update(site: string, ref: Ref, v: number, samples = 10, t = tensors(v)): UpdateInput {
  const enc = encodeTensorSet(t);
  return {
    site,
    ref,
    samples,
    loss: { total: 1, ce: 1 },
    metrics: {},
    sha256: enc.header.sha256,
    dtypes: ["float32"],
    bytes: enc.payload.length,
    tensors: t,
  };
}

const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function open(cfg = config(), dir?: string) {
  const stateDir = dir ?? (await mkdtemp(path.join(os.tmpdir(), "fj-study-")));
  if (!dir) dirs.push(stateDir);
  const bus = new InProcessBus();
  const study = new Study({ config: cfg, stateDir, bus, pollMs: 50 });
  await study.open();
  closers.push(() => study.close());
  const events: StudyEvent[] = [];
  await bus.subscribe("t", (e) => events.push(e), { replay: true });
  const next = (kind: StudyEvent["kind"]) =>
    new Promise<StudyEvent>((resolve) => {
      void bus.subscribe("t", (e) => {
        if (e.kind === kind) resolve(e);
      });
    });
  return { study, stateDir, bus, events, next };
}

async function joinAll(study: Study) {
  for (const s of SITES) await study.join(s.name, { joint: s.joint, labels: [], exams: 4, backend: "wasm" });
}

const r0: Ref = { fold: 0, phase: "seg", round: 0 };
const r1: Ref = { fold: 0, phase: "seg", round: 1 };

describe("study state machine", () => {
  it("opens a round when every site joined, aggregates the weighted mean, and refuses bad updates", async () => {
    const { study, events } = await open();
    await study.join("a", { joint: "ankle", labels: [], exams: 4, backend: "wasm" });
    expect(study.status).toBe("joining");
    await expect(
      study.join("k", { joint: "ankle", labels: [], exams: 4, backend: "wasm" }),
    ).rejects.toThrowError(/declares joint ankle, the study expects knee/);
    await joinAll(study);
    expect(study.status).toBe("running");
    expect(await study.nextTask("a")).toMatchObject({ kind: "train", ref: r0, steps: 1, hasModel: false });
    expect(await study.pushUpdate(update("a", r0, 1, 10))).toEqual({ status: "accepted" });
    // a retry of the same update is acknowledged but not counted; different content is a refused replay
    expect((await study.pushUpdate(update("a", r0, 1, 10))).status).toBe("duplicate");
    const replay = await study.pushUpdate(update("a", r0, 5, 10));
    expect(replay).toMatchObject({ status: "rejected", code: "FJ_PROTOCOL_REPLAY" });
    // wrong shape, NaN, domain tensor, future round
    expect(await study.pushUpdate(update("k", r0, 1, 10, tensors(1, [3])))).toMatchObject({
      code: "FJ_AGG_SHAPE",
    });
    expect(await study.pushUpdate(update("k", r0, Number.NaN))).toMatchObject({ code: "FJ_AGG_NONFINITE" });
    const domain = [{ name: "domain/knee/head/kernel", shape: [2], data: new Float32Array(2) }];
    expect(await study.pushUpdate(update("k", r0, 1, 10, domain))).toMatchObject({
      code: "FJ_AGG_DOMAIN_TENSOR",
    });
    expect(await study.pushUpdate(update("k", r1, 1))).toMatchObject({ code: "FJ_PROTOCOL_EARLY" });
    expect(study.snapshot().ledger).toHaveLength(1);
    expect(events.filter((e) => e.kind === "update.rejected")).toHaveLength(5);
    expect(await study.nextTask("a")).toEqual({ kind: "wait" });
    await study.pushUpdate(update("k", r0, 3, 30));
    await study.pushUpdate(update("s", r0, 5, 60));
    const st = study.snapshot();
    expect(st.aggregations).toHaveLength(1);
    expect(st.aggregations[0]).toMatchObject({ round: 0, sites: ["a", "k", "s"], missing: [], samples: 100 });
    const model = study.model("a", { ...r0, round: 1 });
    const mean = (1 * 10 + 3 * 30 + 5 * 60) / 100;
    expect(model.payload.readFloatLE(0)).toBeCloseTo(mean, 6);
    expect(await study.nextTask("k")).toMatchObject({ kind: "train", ref: r1, hasModel: true });
    // a late update for the closed round is stale
    expect(await study.pushUpdate(update("a", r0, 1, 10))).toMatchObject({ status: "duplicate" });
    expect(() => study.model("a", r0)).toThrowError(/round 0 starts from the seeded/);
  });

  it("resumes mid-round from the state directory with the partial aggregate and the ledger", async () => {
    const first = await open();
    await joinAll(first.study);
    await first.study.pushUpdate(update("a", r0, 2, 10));
    await first.study.close();
    const again = await open(config(), first.stateDir);
    expect(again.study.status).toBe("running");
    expect((await again.study.pushUpdate(update("a", r0, 2, 10))).status).toBe("duplicate");
    await again.study.pushUpdate(update("k", r0, 4, 10));
    await again.study.pushUpdate(update("s", r0, 6, 20));
    const st = again.study.snapshot();
    expect(st.aggregations).toHaveLength(1);
    expect(st.ledger.filter((e) => e.round === 0)).toHaveLength(3);
    expect(again.study.model("k", { ...r0, round: 1 }).payload.readFloatLE(0)).toBeCloseTo(
      (20 + 40 + 120) / 40,
      6,
    );
    // a different config may not take over the directory
    const other = new Study({
      config: config({ rounds: 3 }),
      stateDir: first.stateDir,
      bus: new InProcessBus(),
    });
    await expect(other.open()).rejects.toThrowError(/different study config/);
  });

  it("closes a round after roundTimeout with minSites and refuses the late site's update", async () => {
    const { study, next } = await open(config({ roundTimeoutS: 0.3 }));
    await joinAll(study);
    const aggregated = next("round.aggregated");
    await study.pushUpdate(update("a", r0, 1));
    await study.pushUpdate(update("k", r0, 3));
    const ev = await aggregated;
    expect(ev).toMatchObject({ round: 0, sites: ["a", "k"] });
    expect(study.snapshot().aggregations[0].missing).toEqual(["s"]);
    expect(await study.pushUpdate(update("s", r0, 1))).toMatchObject({
      status: "rejected",
      code: "FJ_PROTOCOL_STALE",
    });
    // the late site rejoins at the next round
    expect(await study.nextTask("s")).toMatchObject({ kind: "train", ref: r1 });
  });

  it("asks every site to evaluate each finished fold, then is done", async () => {
    const { study, next, stateDir } = await open(config({ rounds: 1 }));
    const bone = {
      dice: 0.5,
      sensitivity: 0.5,
      specificity: 1,
      mssd: 2,
      assd: 1,
      ravd: 10,
      predVoxels: 5,
      gtVoxels: 5,
      status: "ok" as const,
    };
    const report = {
      validation: { bone: { dice: 0.4 } },
      test: {
        exam: 0,
        labels: { bone },
        slices: { axis: 2 as const, dice: [0.5], sensitivity: [0.5], specificity: [1] },
      },
    };
    await joinAll(study);
    for (const s of SITES) await study.pushUpdate(update(s.name, r0, 1));
    expect(study.status).toBe("finishing");
    const task = await study.nextTask("a");
    expect(task).toMatchObject({
      kind: "evaluate",
      ref: { fold: 0, phase: "seg", round: 1 },
      hasModel: true,
    });
    const done = next("study.done");
    for (const s of SITES) {
      expect(await study.reportEvaluation(s.name, 0, 0.5, report)).toEqual({ status: "accepted" });
    }
    expect(await done).toMatchObject({ kind: "study.done", rounds: 1 });
    await study.done;
    const results = studyResultsSchema.parse(
      JSON.parse(await readFile(path.join(stateDir, "results.json"), "utf8")),
    );
    expect(results.methods[0].folds[0].sites.map((x) => x.site).sort()).toEqual(["a", "k", "s"]);
    expect(results.methods[0].folds[0].sites[0].exams[0].labels.bone.dice).toBe(0.5);
    expect(Object.keys(results.foldPlan!.permutations).sort()).toEqual(["a", "k", "s"]);
    expect(await study.nextTask("k")).toEqual({ kind: "done" });
  });
});

describe("study config", () => {
  it("names the field and what was expected", async () => {
    expect(() => config({ minSites: 4 })).toThrowError(/minSites: 4 exceeds the 3 configured sites/);
    expect(() => parseStudyConfig({ ...config(), method: "fedprox" }, "study.yaml")).toThrowError(
      /^study.yaml: method:/,
    );
    expect(() => config({ model: { depth: 3, size: 30 } })).toThrowError(
      /model.size: 30 must be divisible by 2\^\(depth−1\) = 4/,
    );
    const dir = await mkdtemp(path.join(os.tmpdir(), "fj-cfg-"));
    dirs.push(dir);
    const file = path.join(dir, "study.yaml");
    await writeFile(
      file,
      "study: demo\nmethod: dsl+msc+mjap\nsites:\n  - { name: knee, joint: knee }\nrounds: 2\nlocalSteps: 3\nminSites: 1\n",
    );
    const c = await loadStudyConfig(file);
    expect(c).toMatchObject({
      study: "demo",
      rounds: 2,
      weighting: "samples",
      roundTimeoutS: 600,
      model: { base: 32, depth: 5 },
    });
    await writeFile(file, "study: [unclosed\n");
    await expect(loadStudyConfig(file)).rejects.toThrowError(/study.yaml: not valid YAML/);
    await expect(loadStudyConfig(path.join(dir, "missing.json"))).rejects.toThrowError(
      /missing.json: cannot read \(ENOENT\)/,
    );
  });
});
