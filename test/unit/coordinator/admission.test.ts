/**
 * The Study decides on an upload from its header alone (src/coordinator/study.ts admitUpdate,
 * admitEmbeddings): open round, replay, sample bound, loss/metric names and values, the tensor
 * specs against the phase's schema — so that a stream is refused before its payload is buffered —
 * and resumes only from a state directory whose state.json and files check out (state.ts, store.ts).
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type Ref, Study } from "../../../src/coordinator/study.js";
import { InProcessBus } from "../../../src/events/bus-memory.js";
import { scaleDims } from "../../../src/model/architecture.js";
import { parseStudyConfig, type StudyConfigInput } from "../../../src/study/config.js";
import { federatedSchema } from "../../../src/study/model.js";

const SITES = [
  { name: "a", joint: "ankle" },
  { name: "k", joint: "knee" },
  { name: "s", joint: "shoulder" },
] as const;
const config = (over: Partial<StudyConfigInput> = {}) =>
  parseStudyConfig({
    study: "t",
    method: "dsl+msc",
    sites: [...SITES],
    rounds: 2,
    localSteps: 2,
    model: { base: 2, depth: 2, size: 8 },
    training: { seg: { batch: 9 } },
    embeddings: { enabled: true, count: 4 },
    ...over,
  });
const r0: Ref = { fold: 0, phase: "seg", round: 0 };

const dirs: string[] = [];
const studies: Study[] = [];
afterEach(async () => {
  for (const s of studies.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function running(cfg = config(), dir?: string) {
  const stateDir = dir ?? (await mkdtemp(path.join(os.tmpdir(), "fj-admit-")));
  if (!dir) dirs.push(stateDir);
  const study = new Study({ config: cfg, stateDir, bus: new InProcessBus(), pollMs: 20 });
  studies.push(study);
  await study.open();
  if (!dir)
    for (const s of SITES) await study.join(s.name, { joint: s.joint, labels: [], exams: 4, backend: "t" });
  return { study, stateDir };
}

describe("admission on the header", () => {
  it("refuses before any payload: samples, scalars, specs; admits the expected header", async () => {
    const { study } = await running();
    const specs = federatedSchema(config(), "seg").tensors.map((t) => ({ ...t, dtype: "float32" }));
    const header = {
      site: "a",
      ref: r0,
      samples: 6,
      loss: { total: 1, ce: 1, msc: 0.5 },
      metrics: { compute_ms: 3 },
      sha256: "x",
      specs,
    };
    expect(await study.admitUpdate(header)).toBeUndefined();
    expect(await study.admitUpdate({ ...header, samples: 7 })).toMatchObject({ code: "FJ_AGG_SAMPLES" });
    expect(await study.admitUpdate({ ...header, loss: { total: 1, mjap: 1 } })).toMatchObject({
      code: "FJ_AGG_SCALARS",
      reason: "loss.mjap is not one of total, ce, msc",
    });
    expect(
      await study.admitUpdate({
        ...header,
        specs: [...specs, { name: "shared/evil", shape: [4], dtype: "float32" }],
      }),
    ).toMatchObject({
      code: "FJ_AGG_UNKNOWN_TENSOR",
    });
    expect(
      await study.admitUpdate({ ...header, specs: specs.map((s) => ({ ...s, dtype: "float16" })) }),
    ).toMatchObject({
      code: "FJ_AGG_DTYPE",
    });
    expect(await study.admitUpdate({ ...header, ref: { ...r0, round: 1 } })).toMatchObject({
      code: "FJ_PROTOCOL_EARLY",
    });
    // embeddings: one [n ≤ count, dim] tensor per scale
    const dims = scaleDims(2, 2);
    const emb = (rows: number) =>
      dims.map((d, s) => ({ name: `embedding/scale${s}`, shape: [rows, d], dtype: "float32" }));
    expect(await study.admitEmbeddings("a", r0, emb(4))).toBeUndefined();
    expect(await study.admitEmbeddings("a", r0, emb(12_000_000))).toMatchObject({
      code: "FJ_COORD_EMBEDDINGS",
      reason: "tensor embedding/scale0: 12000000 vectors, expected 1..4",
    });
    expect(await study.admitEmbeddings("a", r0, emb(2).slice(1))).toMatchObject({
      code: "FJ_COORD_EMBEDDINGS",
    });
  });
});

describe("resuming a state directory", () => {
  it("refuses a damaged state.json or a damaged file with one FJ_COORD_STATE naming it", async () => {
    const { study, stateDir } = await running();
    await study.close();
    const stateFile = path.join(stateDir, "state.json");
    const text = await readFile(stateFile, "utf8");
    const saved = JSON.parse(text) as Record<string, unknown> & {
      models: Record<string, { file: string }>;
      cursor: { round: number };
    };
    const reopen = async () => {
      const again = new Study({ config: config(), stateDir, bus: new InProcessBus() });
      studies.push(again);
      return again.open();
    };
    await writeFile(stateFile, JSON.stringify({ ...saved, cursor: { ...saved.cursor, round: 7 } }));
    await expect(reopen()).rejects.toMatchObject({ code: "FJ_COORD_STATE" });
    await expect(reopen()).rejects.toThrowError(`${stateFile}: cursor.round: 7, the phase has 2 rounds`);
    await writeFile(
      stateFile,
      JSON.stringify({
        ...saved,
        joined: {
          ...(saved.joined as object),
          mallory: saved.joined && (saved.joined as Record<string, unknown>).a,
        },
      }),
    );
    await expect(reopen()).rejects.toThrowError(`${stateFile}: joined.mallory: not a site of the study`);
    await writeFile(stateFile, text);
    const model = path.join(stateDir, saved.models["0/seg"].file);
    const bytes = await readFile(model);
    await writeFile(model, Buffer.concat([bytes, Buffer.from([0])]));
    await expect(reopen()).rejects.toThrowError(new RegExp(`^${model}: SHA-256 [0-9a-f]{12}… differs`));
    await writeFile(model, bytes);
    await expect(reopen()).resolves.toEqual({ resumed: true });
  });
});
