/**
 * The model-directory format (src/model/model-dir.ts): a written directory reads back with its card
 * and tensors; a wrong or damaged one is refused with one input error (exit 2) that names the file.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FedjointError } from "../../../src/errors.js";
import { attUNetVariables, initialTensors } from "../../../src/model/architecture.js";
import { writeCheckpoint } from "../../../src/model/checkpoint.js";
import { PAPER_LABELS } from "../../../src/model/labels.js";
import {
  cardNetSpec,
  type ModelCard,
  readModelDir,
  studyModelCard,
  summariseGeometry,
  writeModelDir,
} from "../../../src/model/model-dir.js";
import { parseStudyConfig } from "../../../src/study/config.js";
import { FEDJOINT_VERSION } from "../../../src/version.js";

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), "fj-model-dir-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const study = parseStudyConfig({
  study: "unit",
  method: "dsl+msc",
  sites: [
    { name: "north", joint: "knee" },
    { name: "south", joint: "ankle" },
  ],
  rounds: 7,
  localSteps: 3,
  folds: 2,
  model: { base: 4, depth: 2, size: 16 },
  strategy: { name: "fedavg" },
});

function card(): ModelCard {
  return studyModelCard({
    study,
    kind: "federated",
    site: "north",
    fold: 1,
    joints: ["knee"],
    labels: { knee: PAPER_LABELS.knee },
    inferenceBatch: 6,
    sliceAxis: 2,
    geometry: {
      knee: summariseGeometry(
        [
          { dims: [32, 32, 20], spacing: [5, 5, 6] },
          { dims: [32, 30, 24], spacing: [4.5, 4.5, 5] },
        ],
        2,
      ),
    },
  });
}

function tensors(c: ModelCard) {
  return initialTensors(attUNetVariables(cardNetSpec(c), c.joints), 11);
}

async function refusal(dir: string): Promise<FedjointError> {
  const err = await readModelDir(dir).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FedjointError);
  return err as FedjointError;
}

describe("model directory", () => {
  it("round-trips the card and the tensors; the card says where the model came from", async () => {
    const dir = path.join(tmp, "ok");
    const c = card();
    const t = tensors(c);
    await writeModelDir(dir, c, t);
    const m = await readModelDir(dir);
    expect(m.card).toEqual(c);
    expect(m.card.fedjoint).toBe(FEDJOINT_VERSION);
    expect(m.card.source).toMatchObject({
      kind: "federated",
      study: "unit",
      method: "dsl+msc",
      strategy: { name: "fedavg" },
      site: "north",
      fold: 1,
      folds: 2,
      rounds: 7,
      localSteps: 3,
    });
    expect(m.card.geometry.knee).toMatchObject({
      exams: 2,
      fovMm: { min: [144, 135], max: [160, 160] },
      throughPlaneRatio: { min: 5 / 4.5, max: 6 / 5 },
    });
    expect(m.labels.knee).toEqual(PAPER_LABELS.knee);
    expect(m.tensors.map((x) => x.name)).toEqual(t.map((x) => x.name));
    for (const [i, x] of m.tensors.entries())
      expect(Buffer.from(x.data.buffer).equals(Buffer.from(t[i].data.buffer))).toBe(true);
    expect(m.manifest.sha256).toMatch(/^[0-9a-f]{64}$/);
    // replacing a model directory leaves exactly the new one
    const c2 = { ...c, source: { ...c.source, rounds: 8 } };
    await writeModelDir(dir, c2, t);
    expect((await readModelDir(dir)).card.source.rounds).toBe(8);
  });

  it("refuses a missing directory, a manifest that is not JSON, and one that is not a model card", async () => {
    expect((await refusal(path.join(tmp, "nope"))).code).toBe("FJ_MODEL_DIR_MANIFEST");
    const dir = path.join(tmp, "damaged");
    const c = card();
    await writeModelDir(dir, c, tensors(c));
    const file = path.join(dir, "manifest.json");
    const good = await readFile(file, "utf8");
    await writeFile(file, good.slice(0, good.length / 2));
    let e = await refusal(dir);
    expect(e.code).toBe("FJ_MODEL_DIR_MANIFEST");
    expect(e.exitCode).toBe(2);
    expect(e.toLine()).toMatch(/^FJ_MODEL_DIR_MANIFEST: .*manifest\.json: cannot read a JSON manifest/);
    const m = JSON.parse(good);
    m.meta.kind = "something-else";
    await writeFile(file, JSON.stringify(m));
    e = await refusal(dir);
    expect(e.code).toBe("FJ_MODEL_DIR_MANIFEST");
    expect(e.message).toMatch(/meta\.kind/);
    m.meta.kind = "fedjoint-model";
    m.meta.joints = ["shoulder"];
    await writeFile(file, JSON.stringify(m));
    e = await refusal(dir);
    expect(e.message).toMatch(/meta\.labels has no shoulder/);
  });

  it("refuses weights that do not match their SHA-256", async () => {
    const dir = path.join(tmp, "flipped");
    const c = card();
    await writeModelDir(dir, c, tensors(c));
    const bin = await readFile(path.join(dir, "tensors.bin"));
    bin[100] ^= 0xff;
    await writeFile(path.join(dir, "tensors.bin"), bin);
    const e = await refusal(dir);
    expect(e.code).toBe("FJ_MODEL_DIR_CHECKSUM");
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(/tensors\.bin: SHA-256/);
  });

  it("refuses a training checkpoint (Γ only) and tensors that are not the card's network", async () => {
    const c = card();
    const t = tensors(c);
    const gamma = path.join(tmp, "gamma");
    await writeCheckpoint(
      gamma,
      t.filter((x) => x.name.startsWith("domain/")),
      { domain: "knee" },
      {},
    );
    expect((await refusal(gamma)).message).toMatch(/scope is 'domain:knee'.*training checkpoint/);
    const partial = path.join(tmp, "partial");
    await writeCheckpoint(partial, t.slice(1), "all", c);
    const e = await refusal(partial);
    expect(e.code).toBe("FJ_MODEL_DIR_MANIFEST");
    expect(e.message).toMatch(new RegExp(`lacks ${t[0].name.replace(/\//g, "\\/")}`));
    const other = path.join(tmp, "other-net");
    await writeCheckpoint(other, t, "all", { ...c, network: { ...c.network, base: 8 } });
    expect((await refusal(other)).message).toMatch(/has shape \[.*\], the card's network has/);
    await expect(writeModelDir(path.join(tmp, "bad-write"), c, t.slice(2))).rejects.toThrow(/lacks/);
  });
});
