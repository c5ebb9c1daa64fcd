/**
 * Privacy as an exact contract (DESIGN §4): for every kind of method — DSL with the auto-encoder
 * (dsl+msc+mjap), the "shared" baseline, and individual training — the tensors that cross the
 * wire in each direction (every PushUpdate and PullModel header, captured by the wire tap of
 * every process) are EXACTLY the federated variables of the network the site builds, by name and
 * shape, phase by phase: the convolution kernels for DSL, every variable for "shared", nothing
 * for individual. The expected set comes from the site's own model (its variables and their role
 * in the architecture), not from a name pattern. The coordinator stores exactly those tensors and
 * never a domain variable's name, in its state, its model files or its log. With L_MJAP, the
 * auto-encoder every site uses in SEG is the coordinator's aggregated Θ_AE, bit for bit.
 */
import { readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Joint } from "../../../src/joints.js";
import { tensorsDigest } from "../../../src/model/checkpoint.js";
import { initEngine } from "../../../src/model/engine/backend.js";
import { PAPER_LABELS } from "../../../src/model/labels.js";
import { SegmentationTrainer, trainerConfig } from "../../../src/model/trainer.js";
import { unpackTensorSet } from "../../../src/protocol/tensors.js";
import { simulate } from "../../../src/simulation/simulate.js";
import { parseStudyConfig, type StudyConfig } from "../../../src/study/config.js";
import { type Method, methodSpec, type Phase } from "../../../src/study/methods.js";
import { phaseVariables, studyLabels } from "../../../src/study/model.js";
import { toyData, toySampler } from "../../unit/model/helpers.js";

interface TapLine {
  pid: number;
  direction: "sent" | "received";
  rpc: string;
  header: Record<string, unknown>;
}
type Spec = { name: string; shape: number[] };

const root = path.join(os.tmpdir(), `fj-privacy-${process.pid}`);
const SITES: { name: string; joint: Joint }[] = [
  { name: "ankle", joint: "ankle" },
  { name: "knee", joint: "knee" },
];

function study(method: Method): StudyConfig {
  return parseStudyConfig({
    study: "privacy",
    method,
    sites: SITES,
    rounds: 2,
    aeRounds: 1,
    localSteps: 1,
    model: { base: 2, depth: 2, size: 16 },
    training: { seg: { batch: 4, lr: 1e-3 }, ae: { batch: 4, lr: 1e-3 } },
    embeddings: { enabled: true, count: 4 },
  });
}

/**
 * What a site may send and receive in a phase, from the network it builds: its variables whose
 * role in the architecture the method federates (DSL: convolution kernels; shared: everything).
 */
async function expectedFromModel(config: StudyConfig, joint: Joint, phase: Phase): Promise<Spec[]> {
  const spec = methodSpec(config.method);
  if (spec.federation === "nothing") return [];
  const labels = spec.sharedNorm
    ? { ...studyLabels(config), [joint]: PAPER_LABELS[joint] }
    : { [joint]: PAPER_LABELS[joint] };
  const trainer = new SegmentationTrainer(
    trainerConfig(config, [joint], labels),
    toyData([joint], 16, 2, 1),
    {
      makeSampler: toySampler,
    },
  );
  try {
    const roles = new Map(phaseVariables(config, phase, [joint], labels).map((v) => [v.name, v.role]));
    return trainer
      .paramsOf(phase)
      .specs()
      .filter((v) => spec.federation === "all" || roles.get(v.name) === "conv")
      .map((v) => ({ name: v.name, shape: v.shape }));
  } finally {
    trainer.dispose();
  }
}

const sorted = (xs: Spec[]) => [...xs].map((x) => `${x.name}[${x.shape.join(",")}]`).sort();

async function run(method: Method) {
  const work = path.join(root, method.replaceAll("+", "_"));
  const tap = path.join(root, `${method.replaceAll("+", "_")}.jsonl`);
  process.env.FEDJOINT_WIRE_TAP = tap;
  try {
    await simulate({
      study: study(method),
      subjects: 3,
      dataSize: 16,
      workdir: work,
      backend: "wasm",
      threads: 1,
      insecure: false,
    });
  } finally {
    delete process.env.FEDJOINT_WIRE_TAP;
  }
  const lines = (await readFile(tap, "utf8"))
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as TapLine);
  return { work, lines };
}

const tensorsOf = (l: TapLine): Spec[] => {
  const set = (l.rpc === "PushUpdate" ? l.header.tensors : l.header) as { tensors: Spec[] };
  return set.tensors.map((t) => ({ name: t.name, shape: t.shape }));
};

describe("what crosses the wire is exactly the method's federated variables", () => {
  beforeAll(async () => {
    await initEngine("wasm");
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  for (const method of ["dsl+msc+mjap", "shared", "individual"] as const) {
    it(`${method}: every update and model on the wire, both directions, and the coordinator's files`, async () => {
      const config = study(method);
      const { work, lines } = await run(method);
      const phases = methodSpec(method).phases;
      const expected = new Map<string, string[]>();
      for (const s of SITES)
        for (const phase of phases)
          expected.set(`${s.joint}/${phase}`, sorted(await expectedFromModel(config, s.joint, phase)));
      // the Θ of a phase is the same network part at every site
      for (const phase of phases)
        expect(expected.get(`knee/${phase}`)).toEqual(expected.get(`ankle/${phase}`));

      const updates = lines.filter((l) => l.rpc === "PushUpdate");
      const models = lines.filter((l) => l.rpc === "PullModel");
      // every SEG/AE round: one update per site, seen by the site (sent) and the coordinator (received)
      const rounds = phases.reduce((n, p) => n + (p === "ae" ? 1 : 2), 0);
      expect(updates.filter((l) => l.direction === "sent")).toHaveLength(rounds * SITES.length);
      expect(updates.filter((l) => l.direction === "received")).toHaveLength(rounds * SITES.length);
      for (const l of updates) {
        const phase = (l.header.ref as { phase: Phase }).phase;
        expect(sorted(tensorsOf(l)), `${l.direction} PushUpdate ${phase}`).toEqual(
          expected.get(`knee/${phase}`),
        );
      }
      if (methodSpec(method).federation === "nothing") {
        expect(models).toEqual([]);
      } else {
        expect(models.length).toBeGreaterThan(0);
        const allowed = phases.map((p) => JSON.stringify(expected.get(`knee/${p}`)));
        for (const l of models)
          expect(allowed, `${l.direction} PullModel`).toContain(JSON.stringify(sorted(tensorsOf(l))));
      }
      // embeddings carry anonymous per-scale vectors only
      for (const l of lines.filter((x) => x.rpc === "PushEmbeddings" || x.rpc === "PullEmbeddings"))
        for (const t of tensorsOf({ ...l, rpc: l.rpc === "PushEmbeddings" ? "PushUpdate" : l.rpc }))
          expect(t.name).toMatch(/^embedding\/scale\d+$/);

      // the coordinator stores exactly Θ, and no domain variable name anywhere in its state or log
      const state = path.join(work, "coordinator");
      for (const f of (await readdir(state)).filter((x) => x.startsWith("model-"))) {
        const phase = f.split("-")[2] as Phase;
        const stored = unpackTensorSet(await readFile(path.join(state, f)), f).map((t) => ({
          name: t.name,
          shape: t.shape,
        }));
        expect(sorted(stored), f).toEqual(expected.get(`knee/${phase}`));
      }
      // +MJAP: every site's L_MJAP uses the federated auto-encoder, the coordinator's Θ_AE bit for bit
      if (methodSpec(method).phase.seg.mjap) {
        const aeModel = unpackTensorSet(await readFile(path.join(state, "model-0-ae-1.bin")), "ae model");
        for (const s of SITES) {
          const inUse = (await readFile(path.join(work, "logs", `${s.name}.log`), "utf8"))
            .split("\n")
            .filter((l) => l.includes('"federated auto-encoder in use"'))
            .map((l) => JSON.parse(l) as { aeThetaSha256: string; aeRound: number });
          expect(inUse, s.name).toEqual([{ ...inUse[0], aeRound: 1, aeThetaSha256: tensorsDigest(aeModel) }]);
        }
      }
      const domainNames = /domain\/(ankle|knee|shoulder)\//;
      expect(await readFile(path.join(state, "state.json"), "utf8")).not.toMatch(domainNames);
      expect(await readFile(path.join(work, "logs", "coordinator.log"), "utf8")).not.toMatch(domainNames);
    }, 300_000);
  }
});
