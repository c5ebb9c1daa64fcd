import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { type Ref, Study, type UpdateInput } from "../../../src/coordinator/study.js";
import { studyResultsSchema } from "../../../src/eval/types.js";
import { InProcessBus } from "../../../src/events/bus-memory.js";
import type { StudyEvent } from "../../../src/events/events.js";
import type { NamedTensor } from "../../../src/model/api.js";
import { encodeTensorSet } from "../../../src/protocol/tensors.js";
import {
  loadStudyConfig,
  parseStudyConfig,
  perDomainBatch,
  type StudyConfigInput,
} from "../../../src/study/config.js";
import { initialModel } from "../../../src/study/model.js";

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
    model: { base: 2, depth: 2, size: 8 },
    embeddings: { enabled: false },
    // the state machine's arithmetic below is FedAvg's sample-weighted mean
    strategy: { name: "fedavg" },
    ...over,
  });
}

/** Θ of the study's architecture with every value v (the schema the coordinator expects). */
const tensors = (v: number): NamedTensor[] =>
  initialModel(config(), "seg").map((t) => ({ ...t, data: new Float32Array(t.data.length).fill(v) }));

function update(site: string, ref: Ref, v: number, samples = 1, t = tensors(v)): UpdateInput {
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

/** One embedding set of the test network (scales 2, 4, 2 wide): `rows` unit vectors e_0 a scale. */
const unit = (rows: number) =>
  [2, 4, 2].map((dim, sc) => ({
    name: `embedding/scale${sc}`,
    shape: [rows, dim],
    data: Float32Array.from({ length: rows * dim }, (_, i) => (i % dim === 0 ? 1 : 0)),
  }));

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
    expect(await study.nextTask("a")).toMatchObject({
      kind: "train",
      ref: r0,
      hasModel: true,
      instructions: { steps: 1, lr: 5e-4, embed: false },
    });
    // round 0 serves the seeded Θ_0 of the study's architecture
    const theta0 = initialModel(config(), "seg");
    expect((await study.model("a", r0)).payload.readFloatLE(0)).toBe(theta0[0].data[0]);
    expect(await study.pushUpdate(update("a", r0, 1, 1))).toEqual({ status: "accepted" });
    // a retry of the same update is acknowledged but not counted; different content is a refused replay
    expect((await study.pushUpdate(update("a", r0, 1, 1))).status).toBe("duplicate");
    const replay = await study.pushUpdate(update("a", r0, 5, 1));
    expect(replay).toMatchObject({ status: "rejected", code: "FJ_PROTOCOL_REPLAY" });
    // wrong shape, NaN, domain tensor, unknown tensor, too many samples, future round
    const reshaped = tensors(1).map((t, i) => (i === 0 ? { ...t, shape: [t.data.length] } : t));
    expect(await study.pushUpdate(update("k", r0, 1, 1, reshaped))).toMatchObject({
      code: "FJ_AGG_SHAPE",
    });
    expect(
      await study.pushUpdate(
        update("k", r0, 1, 1, [{ name: "shared/evil", shape: [4], data: new Float32Array(4) }]),
      ),
    ).toMatchObject({
      code: "FJ_AGG_UNKNOWN_TENSOR",
    });
    expect(await study.pushUpdate(update("k", r0, 1, 7))).toMatchObject({ code: "FJ_AGG_SAMPLES" });
    expect(await study.pushUpdate(update("k", r0, Number.NaN))).toMatchObject({ code: "FJ_AGG_NONFINITE" });
    const domain = [{ name: "domain/knee/head/kernel", shape: [2], data: new Float32Array(2) }];
    expect(await study.pushUpdate(update("k", r0, 1, 1, domain))).toMatchObject({
      code: "FJ_AGG_DOMAIN_TENSOR",
    });
    expect(await study.pushUpdate(update("k", r1, 1))).toMatchObject({ code: "FJ_PROTOCOL_EARLY" });
    expect(study.snapshot().ledger).toHaveLength(1);
    expect(events.filter((e) => e.kind === "update.rejected")).toHaveLength(7);
    expect(await study.nextTask("a")).toEqual({ kind: "wait" });
    await study.pushUpdate(update("k", r0, 3, 2));
    await study.pushUpdate(update("s", r0, 5, 6));
    const st = study.snapshot();
    expect(st.aggregations).toHaveLength(1);
    expect(st.aggregations[0]).toMatchObject({ round: 0, sites: ["a", "k", "s"], missing: [], samples: 9 });
    const model = await study.model("a", { ...r0, round: 1 });
    const mean = (1 * 1 + 3 * 2 + 5 * 6) / 9;
    expect(model.payload.readFloatLE(0)).toBeCloseTo(mean, 6);
    expect(await study.nextTask("k")).toMatchObject({ kind: "train", ref: r1, hasModel: true });
    // a late update for the closed round is stale
    expect(await study.pushUpdate(update("a", r0, 1, 1))).toMatchObject({ status: "duplicate" });
    await expect(study.model("a", r0)).rejects.toThrowError(/the coordinator holds round 1/);
  });

  it("resumes mid-round from the state directory with the partial aggregate and the ledger", async () => {
    const first = await open();
    await joinAll(first.study);
    await first.study.pushUpdate(update("a", r0, 2, 1));
    await first.study.close();
    const again = await open(config(), first.stateDir);
    expect(again.study.status).toBe("running");
    expect((await again.study.pushUpdate(update("a", r0, 2, 1))).status).toBe("duplicate");
    await again.study.pushUpdate(update("k", r0, 4, 1));
    await again.study.pushUpdate(update("s", r0, 6, 2));
    const st = again.study.snapshot();
    expect(st.aggregations).toHaveLength(1);
    expect(st.ledger.filter((e) => e.round === 0)).toHaveLength(3);
    expect((await again.study.model("k", { ...r0, round: 1 })).payload.readFloatLE(0)).toBeCloseTo(
      (2 + 4 + 12) / 4,
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

describe("the ledger, exactly", () => {
  it("says why it refuses an update, records an accepted one field by field and counts its bytes", async () => {
    const { study, events } = await open();
    // before every site joined, no round is open
    await study.join("a", { joint: "ankle", labels: [], exams: 4, backend: "wasm" });
    expect(await study.pushUpdate(update("a", r0, 1))).toEqual({
      status: "rejected",
      code: "FJ_PROTOCOL_STALE",
      reason: "the study is joining, no round is open",
    });
    await joinAll(study);
    expect(await study.pushUpdate(update("a", r1, 1))).toEqual({
      status: "rejected",
      code: "FJ_PROTOCOL_EARLY",
      reason: "update for fold 0 seg round 1, the open round is fold 0 seg round 0",
    });
    expect(await study.pushUpdate(update("a", r0, 1, 7))).toEqual({
      status: "rejected",
      code: "FJ_AGG_SAMPLES",
      reason: "sample count 7, expected an integer 1..6 (1 steps × 6 slices)",
    });
    expect(await study.pushUpdate(update("a", r0, 1, 0.5))).toMatchObject({ code: "FJ_AGG_SAMPLES" });
    expect(await study.pushUpdate({ ...update("a", r0, 1), loss: { total: 1, ce: 1, msc: 1 } })).toEqual({
      status: "rejected",
      code: "FJ_AGG_SCALARS",
      reason: "loss has 3 keys, expected at most 2 (total, ce)",
    });
    expect(
      await study.pushUpdate({ ...update("a", r0, 1), dtypes: tensors(1).map(() => "float16") }),
    ).toEqual({
      status: "rejected",
      code: "FJ_AGG_DTYPE",
      reason: "dtype float16, expected float32",
    });
    expect(study.snapshot().ledger).toEqual([]);
    expect(study.snapshot().traffic).toEqual({});
    const accepted = { ...update("a", r0, 1), metrics: { compute_ms: 5, val_dice_before: 0.25 } };
    expect(await study.pushUpdate(accepted)).toEqual({ status: "accepted" });
    const [entry] = study.snapshot().ledger;
    expect(entry).toEqual({
      site: "a",
      fold: 0,
      phase: "seg",
      round: 0,
      sha256: accepted.sha256,
      samples: 1,
      bytes: accepted.bytes,
      loss: { total: 1, ce: 1 },
      metrics: { compute_ms: 5, val_dice_before: 0.25 },
      acceptedAt: expect.any(String),
    });
    expect(study.snapshot().traffic).toEqual({ "0/seg/0": { a: { sent: accepted.bytes, received: 0 } } });
    expect(events.filter((e) => e.kind === "update.accepted")).toEqual([
      expect.objectContaining({
        site: "a",
        round: 0,
        samples: 1,
        bytes: accepted.bytes,
        validationDice: 0.25,
      }),
    ]);
    // the same update again is a duplicate, other content a refused replay, each said exactly
    expect(await study.pushUpdate(accepted)).toEqual({
      status: "duplicate",
      code: "FJ_PROTOCOL_REPLAY",
      reason: "an update of a for fold 0 seg round 0 was already accepted (same SHA-256): not counted again",
    });
    expect(await study.pushUpdate(update("a", r0, 2))).toEqual({
      status: "rejected",
      code: "FJ_PROTOCOL_REPLAY",
      reason:
        "an update of a for fold 0 seg round 0 was already accepted with different content: replay refused",
    });
    // the refusals, and only they, were published; the duplicate was not
    expect(
      events.filter((e) => e.kind === "update.rejected").map((e) => (e as { code: string }).code),
    ).toEqual([
      "FJ_PROTOCOL_STALE",
      "FJ_PROTOCOL_EARLY",
      "FJ_AGG_SAMPLES",
      "FJ_AGG_SAMPLES",
      "FJ_AGG_SCALARS",
      "FJ_AGG_DTYPE",
      "FJ_PROTOCOL_REPLAY",
    ]);
    expect(study.snapshot().ledger).toHaveLength(1);
    // once the round closed, an update for it is stale, with both rounds named
    await study.pushUpdate(update("k", r0, 1));
    await study.pushUpdate(update("s", r0, 1));
    expect(await study.pushUpdate(update("a", { ...r0, round: 0 }, 1, 1, tensors(3)))).toMatchObject({
      status: "rejected",
      code: "FJ_PROTOCOL_REPLAY",
    });
    expect(await study.pushUpdate(update("a", { ...r0, phase: "ae" }, 1))).toEqual({
      status: "rejected",
      code: "FJ_PROTOCOL_STALE",
      reason: "update for fold 0 ae round 0, the open round is fold 0 seg round 1",
    });
  });

  it("a method that federates nothing refuses any tensor", async () => {
    const { study } = await open(config({ method: "individual" }));
    await joinAll(study);
    expect(await study.pushUpdate(update("a", r0, 1))).toEqual({
      status: "rejected",
      code: "FJ_AGG_SCHEMA",
      reason: "method individual federates no tensors",
    });
    expect(await study.pushUpdate(update("a", r0, 1, 1, []))).toEqual({ status: "accepted" });
  });
});

describe("embeddings at the coordinator", () => {
  const unitRows = (rows: number, dim: number, first: number) =>
    Float32Array.from({ length: rows * dim }, (_, i) =>
      i % dim === 0 ? first : i % dim === 1 ? Math.sqrt(1 - first * first) : 0,
    );
  const set = (rows: number, first: number) =>
    [2, 4, 2].map((dim, s) => ({
      name: `embedding/scale${s}`,
      shape: [rows, dim],
      data: unitRows(rows, dim, first),
    }));

  it("stores only checked sets and serves a site the others' vectors, never its own", async () => {
    const { study, events } = await open(
      config({ method: "dsl+msc", embeddings: { enabled: true, count: 4 } }),
    );
    await joinAll(study);
    const bad = set(3, 0.5).map((t, i) => (i === 1 ? { ...t, data: t.data.map((v) => v * 3) } : t));
    expect(await study.pushEmbeddings("a", r0, bad, 100)).toMatchObject({
      status: "rejected",
      code: "FJ_COORD_EMBEDDINGS",
    });
    expect(await study.pushEmbeddings("a", r0, set(5, 0.5), 100)).toMatchObject({
      status: "rejected",
      code: "FJ_COORD_EMBEDDINGS",
    });
    expect(study.bankFor("k", r0)).toEqual([]);
    expect(study.snapshot().embeddings).toEqual([]);
    expect(
      events.filter((e) => e.kind === "update.rejected").map((e) => (e as { code: string }).code),
    ).toEqual(["FJ_COORD_EMBEDDINGS", "FJ_COORD_EMBEDDINGS"]);
    expect(await study.pushEmbeddings("a", r0, set(3, 0.25), 100)).toEqual({ status: "accepted" });
    expect(await study.pushEmbeddings("k", r0, set(2, 0.75), 100)).toEqual({ status: "accepted" });
    const firsts = (ts: NamedTensor[]) => Array.from({ length: ts[0].shape[0] }, (_, r) => ts[0].data[r * 2]);
    expect(firsts(study.bankFor("a", r0))).toEqual([0.75, 0.75]);
    expect(firsts(study.bankFor("k", r0))).toEqual([0.25, 0.25, 0.25]);
    expect(firsts(study.bankFor("s", r0)).sort()).toEqual([0.25, 0.25, 0.25, 0.75, 0.75]);
  });
});

describe("the ledger across phases and folds, its log, and compression", () => {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: "info" }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  async function openLogged(cfg: ReturnType<typeof config>) {
    const stateDir = await mkdtemp(path.join(os.tmpdir(), "fj-ledger-"));
    dirs.push(stateDir);
    const bus = new InProcessBus();
    const study = new Study({ config: cfg, stateDir, bus, pollMs: 50, log });
    await study.open();
    closers.push(() => study.close());
    const events: StudyEvent[] = [];
    await bus.subscribe("t", (e) => events.push(e), { replay: true });
    return { study, events };
  }

  it("orders rounds by fold, then phase, then round: stale behind the open round, early ahead", async () => {
    const cfg = config({
      method: "dsl+msc+mjap",
      rounds: 2,
      aeRounds: 2,
      folds: 2,
      embeddings: { enabled: true, count: 4 },
    });
    const { study, events } = await openLogged(cfg);
    // embeddings before the study runs: no round is open
    expect(await study.pushEmbeddings("a", { ...r0, phase: "ae" }, unit(1), 10)).toMatchObject({
      status: "rejected",
      code: "FJ_PROTOCOL_STALE",
    });
    await joinAll(study);
    const ae = (round: number): Ref => ({ fold: 0, phase: "ae", round });
    const verdict = async (ref: Ref) => {
      const r = await study.pushUpdate(update("a", ref, 1));
      return r.status === "accepted" ? "accepted" : r.code;
    };
    // AE round 0 of fold 0 is open: SEG and fold 1 lie ahead
    expect(await verdict(r0)).toBe("FJ_PROTOCOL_EARLY");
    expect(await verdict({ fold: 1, phase: "ae", round: 0 })).toBe("FJ_PROTOCOL_EARLY");
    const aeTheta = initialModel(cfg, "ae");
    const aeUpdate = (site: string, round: number) => ({
      ...update(site, ae(round), 1, 1, aeTheta),
      loss: { total: 1, ce: 1, msc: 1 },
    });
    // AE embeddings in the last AE round, then both AE rounds closed
    for (const round of [0, 1])
      for (const site of ["a", "k", "s"]) await study.pushUpdate(aeUpdate(site, round));
    expect(study.snapshot().aggregations.map((a) => [a.phase, a.round])).toEqual([
      ["ae", 0],
      ["ae", 1],
    ]);
    // SEG round 0 of fold 0 is open: any AE round of fold 0 lies behind, fold 1 ahead
    expect(await verdict(ae(5))).toBe("FJ_PROTOCOL_STALE");
    expect(await verdict({ fold: 1, phase: "ae", round: 0 })).toBe("FJ_PROTOCOL_EARLY");
    expect(await verdict({ ...r0, round: 3 })).toBe("FJ_PROTOCOL_EARLY");
    // the log says what was refused, what was a duplicate and what was accepted
    const seg = { ...update("a", r0, 1), loss: { total: 1, ce: 1, msc: 1, mjap: 1 } };
    expect(await study.pushUpdate(seg)).toEqual({ status: "accepted" });
    expect(await study.pushUpdate(seg)).toMatchObject({ status: "duplicate" });
    const msgs = (m: string) => lines.filter((l) => l.msg === m);
    expect(msgs("update rejected").map((l) => [l.level, l.site, l.phase, l.round, l.code])).toEqual([
      [40, "a", "seg", 0, "FJ_PROTOCOL_EARLY"],
      [40, "a", "ae", 0, "FJ_PROTOCOL_EARLY"],
      [40, "a", "ae", 5, "FJ_PROTOCOL_STALE"],
      [40, "a", "ae", 0, "FJ_PROTOCOL_EARLY"],
      [40, "a", "seg", 3, "FJ_PROTOCOL_EARLY"],
    ]);
    expect(msgs("update rejected").every((l) => typeof l.reason === "string" && l.reason !== "")).toBe(true);
    expect(msgs("duplicate update ignored").map((l) => [l.level, l.site, l.round, l.code])).toEqual([
      [30, "a", 0, "FJ_PROTOCOL_REPLAY"],
    ]);
    expect(msgs("update accepted").at(-1)).toMatchObject({ site: "a", phase: "seg", round: 0, samples: 1 });
    expect(msgs("embeddings rejected").map((l) => [l.level, l.code])).toEqual([[40, "FJ_PROTOCOL_STALE"]]);
    // an accepted update without a validation Dice publishes none
    const accepted = events.filter((e) => e.kind === "update.accepted");
    expect(accepted.every((e) => !("validationDice" in e))).toBe(true);
  });

  it("keeps the bank of the previous round of the same phase only; refuses samples below 1", async () => {
    const cfg = config({
      method: "dsl+msc+mjap",
      rounds: 2,
      aeRounds: 1,
      embeddings: { enabled: true, count: 4 },
    });
    const { study } = await openLogged(cfg);
    await joinAll(study);
    const ae0: Ref = { fold: 0, phase: "ae", round: 0 };
    expect(await study.pushEmbeddings("a", ae0, unit(2), 10)).toEqual({ status: "accepted" });
    for (const samples of [0, -1])
      expect(await study.pushUpdate(update("a", ae0, 1, samples, initialModel(cfg, "ae")))).toMatchObject({
        code: "FJ_AGG_SAMPLES",
        reason: `sample count ${samples}, expected an integer 1..8 (1 steps × 8 slices)`,
      });
    for (const site of ["a", "k", "s"])
      await study.pushUpdate({
        ...update(site, ae0, 1, 1, initialModel(cfg, "ae")),
        loss: { total: 1, ce: 1, msc: 1 },
      });
    expect(await study.pushEmbeddings("k", r0, unit(1), 10)).toEqual({ status: "accepted" });
    // SEG round 0 is "round 0", the AE bank "round 0" too, but of another phase: dropped
    expect(study.snapshot().embeddings.map((e) => [e.phase, e.round, e.site])).toEqual([["seg", 0, "k"]]);
    expect(study.bankFor("s", ae0)).toEqual([]);
  });

  it("float16 compression admits float16 tensors and still refuses other dtypes", async () => {
    const { study } = await openLogged(config({ compression: "float16" }));
    await joinAll(study);
    const half = { ...update("a", r0, 1), dtypes: tensors(1).map(() => "float16") };
    expect(await study.pushUpdate(half)).toEqual({ status: "accepted" });
    expect(
      await study.pushUpdate({ ...update("k", r0, 1), dtypes: tensors(1).map(() => "float64") }),
    ).toEqual({
      status: "rejected",
      code: "FJ_AGG_DTYPE",
      reason: "dtype float64, expected float32 or float16",
    });
  });
});

describe("embeddings at the coordinator, exactly", () => {
  it("refuses another round's, a second and a study's without embeddings; keeps the previous round's bank only", async () => {
    const { study, events } = await open(
      config({ method: "dsl+msc", rounds: 4, embeddings: { enabled: true, count: 4 } }),
    );
    await joinAll(study);
    expect(await study.pushEmbeddings("a", r1, unit(2), 10)).toEqual({
      status: "rejected",
      code: "FJ_PROTOCOL_STALE",
      reason: "embeddings for fold 0 seg round 1: not the open round",
    });
    expect(await study.pushEmbeddings("a", r0, unit(2), 10)).toEqual({ status: "accepted" });
    expect(await study.pushEmbeddings("a", r0, unit(3), 10)).toEqual({
      status: "duplicate",
      code: "FJ_PROTOCOL_REPLAY",
      reason: "embeddings of a for this round already received",
    });
    expect(study.snapshot().embeddings).toEqual([
      {
        fold: 0,
        phase: "seg",
        round: 0,
        site: "a",
        file: "emb-0-seg-0-a.bin",
        sha256: expect.any(String),
        vectors: 2,
      },
    ]);
    expect(study.snapshot().traffic["0/seg/0"]).toEqual({ a: { sent: 10, received: 0 } });
    expect(events.filter((e) => e.kind === "embeddings.received")).toEqual([
      expect.objectContaining({ site: "a", fold: 0, phase: "seg", round: 0, scales: 3, vectors: 2 }),
    ]);
    // rounds 1 and 2: the bank of round r − 1 is kept, older ones dropped
    const close = async (round: number) => {
      for (const site of ["a", "k", "s"])
        await study.pushUpdate({ ...update(site, { ...r0, round }, 1), loss: { total: 1, ce: 1, msc: 1 } });
    };
    await close(0);
    expect(await study.pushEmbeddings("k", r1, unit(1), 10)).toEqual({ status: "accepted" });
    expect(study.snapshot().embeddings.map((e) => [e.round, e.site])).toEqual([
      [0, "a"],
      [1, "k"],
    ]);
    expect(study.bankFor("s", r0)[0]?.shape).toEqual([2, 2]);
    await close(1);
    expect(await study.pushEmbeddings("s", { ...r0, round: 2 }, unit(1), 10)).toEqual({ status: "accepted" });
    expect(study.snapshot().embeddings.map((e) => [e.round, e.site])).toEqual([
      [1, "k"],
      [2, "s"],
    ]);
    expect(study.bankFor("s", r0)).toEqual([]);
    expect(study.bankFor("a", r1)[0]?.shape).toEqual([1, 2]);

    const off = await open(config({ method: "dsl+msc", embeddings: { enabled: false } }));
    await joinAll(off.study);
    expect(await off.study.pushEmbeddings("a", r0, unit(2), 10)).toEqual({
      status: "rejected",
      code: "FJ_COORD_EMBEDDINGS_OFF",
      reason: "this study exchanges no embeddings in seg rounds (method dsl+msc, embeddings.enabled false)",
    });
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
      // the default: FedAdam over the per-domain objective; FedSGD when a round is one step
      strategy: { name: "fedadam", weighting: "uniform", update: "auto" },
      roundTimeoutS: 600,
      model: { base: 32, depth: 5, size: 256 },
      training: {
        seg: { batch: 18, lr: 5e-4 },
        ae: { batch: 24, lr: 1e-4 },
        lambdaMsc: 0.5,
        lambdaMjap: 0.1,
        tau: 0.1,
      },
    });
    expect(perDomainBatch(c, "seg")).toBe(18);
    expect(perDomainBatch(config(), "seg")).toBe(6);
    expect(() => config({ model: { size: 1e9 } })).toThrowError(/model.size/);
    expect(() => config({ embeddings: { count: 1e8 } })).toThrowError(/embeddings.count/);
    await writeFile(file, "study: [unclosed\n");
    await expect(loadStudyConfig(file)).rejects.toThrowError(/study.yaml: not valid YAML/);
    await expect(loadStudyConfig(path.join(dir, "missing.json"))).rejects.toThrowError(
      /missing.json: cannot read \(ENOENT\)/,
    );
  });
});
