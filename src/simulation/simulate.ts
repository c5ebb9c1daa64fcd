/**
 * `fedjoint simulate`: a coordinator and one site-client process per site on loopback, mutual
 * TLS with freshly generated certificates, synthetic phantoms by default; returns one summary.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { StudySummary } from "../coordinator/summary.js";
import { synthesizeDataset } from "../data/phantoms.js";
import { fjError } from "../errors.js";
import { JOINTS, type Joint } from "../joints.js";
import { type Logger, silentLogger } from "../log.js";
import { generateCerts } from "../protocol/certs.js";
import type { SiteSummary } from "../site-client/client.js";
import { parseStudyConfig, type StudyConfig, type StudyConfigInput } from "../study/config.js";
import type { Method } from "../study/methods.js";
import { Proc } from "./processes.js";

export interface SimulateOptions {
  /** The study every process runs (the coordinator's --config; sites receive it at Join). */
  study: StudyConfig;
  /** Dataset directories, one per site in the study's order (default: synthesised phantoms). */
  data?: string[];
  /** Phantom exams per site and matrix size (voxels) when no --data is given. */
  subjects: number;
  dataSize: number;
  workdir?: string;
  backend: string;
  /** wasm threads per site process (default 1: the sites share the machine). */
  threads: number;
  insecure: boolean;
  /** Publish the coordinator's study events to this NATS server (JetStream), else in-process. */
  nats?: string;
  log?: Logger;
}

export interface SimulateSummary {
  method: Method;
  sites: Record<
    string,
    {
      joint: Joint;
      /** Mean validation Dice of the seeded Θ_0 (SEG round 0, before training). */
      initialDice: number | null;
      /** Mean validation Dice of the final aggregate (last fold's evaluation). */
      finalDice: number | null;
      finalDicePerLabel: Record<string, number>;
      /** 3D Dice per bone on the last fold's test exam (post-processed), final aggregate + Γ_k. */
      testDicePerLabel: Record<string, number>;
      computeSeconds: number;
      bytes: { sent: number; received: number };
    }
  >;
  rounds: {
    fold: number;
    phase: string;
    round: number;
    sites: string[];
    wallSeconds: number;
    slowestComputeSeconds: number;
    /** wallSeconds / slowestComputeSeconds. */
    overhead: number;
    bytes: Record<string, { sent: number; received: number }>;
  }[];
  aggregations: number;
  /** Median and max overhead over rounds after the first of each phase (round 0 includes data loading). */
  overhead: { median: number; max: number; firstRounds: number[] };
  wallSeconds: number;
  /** The coordinator's results.json (eval format) when the workdir is kept. */
  results: string | null;
  /** Where certs, data, state and logs are (null: a temporary directory, removed after success). */
  workdir: string | null;
}

/**
 * The embedded study of `fedjoint simulate` (and `npm run demo`): three phantom sites, the full
 * method (AE then SEG) under the study default, FedAdam with FedSGD rounds (one local step: the
 * federation is pooled Adam, exactness.test), the pooled batch 18 = 6 slices per site and step.
 * Chosen by measurement on a 2-core machine (closing note of issue 11): the knee's fibula (≈ 80
 * voxels an exam) is the last bone found, after 230–300 SEG rounds depending on the engine's
 * rounding (240 sufficed on wasm, not on the native engine); two local steps a round with model
 * updates, a smaller network (base 12) or 200 rounds left a bone at Dice 0 (all measured with
 * augmentation off, as here).
 */
export const DEMO_STUDY: StudyConfigInput = {
  study: "simulate",
  method: "dsl+msc+mjap",
  sites: [
    { name: "ankle", joint: "ankle" },
    { name: "knee", joint: "knee" },
    { name: "shoulder", joint: "shoulder" },
  ],
  rounds: 300,
  aeRounds: 10,
  localSteps: 1,
  model: { base: 16, depth: 3, size: 32 },
  training: {
    seg: { batch: 18, lr: 3e-3 },
    ae: { batch: 18, lr: 3e-3 },
    augment: { enabled: false },
  },
  embeddings: { enabled: true, count: 8 },
  strategy: { name: "fedadam", validateEvery: 60 },
};

/** Phantoms of the embedded demo: exams per site (leave-one-out: 6 train, 1 validation, 1 test) and matrix size. */
export const DEMO_PHANTOMS = { subjects: 8, dataSize: 32 } as const;

/** `name` or `name:joint` (the name must then be a joint). */
export function parseSite(spec: string): { name: string; joint: Joint } {
  const [name, joint = name] = spec.split(":");
  if (!(JOINTS as readonly string[]).includes(joint)) {
    throw fjError(
      "FJ_CLI_ARG",
      `--sites: '${spec}' has no joint; use a joint name or name:joint (${JOINTS.join(", ")})`,
    );
  }
  return { name, joint: joint as Joint };
}

/** The embedded demo as simulate options (overrides for tests and the demo command). */
export function demoOptions(overrides: Partial<SimulateOptions> = {}): SimulateOptions {
  return {
    study: parseStudyConfig(DEMO_STUDY, "the embedded demo study"),
    subjects: DEMO_PHANTOMS.subjects,
    dataSize: DEMO_PHANTOMS.dataSize,
    backend: process.env.FEDJOINT_BACKEND ?? "auto",
    threads: 1,
    insecure: false,
    ...overrides,
  };
}

export async function simulate(o: SimulateOptions): Promise<SimulateSummary> {
  const log = o.log ?? silentLogger;
  const t0 = performance.now();
  const config = o.study;
  const sites = config.sites;
  if (o.data && o.data.length !== sites.length) {
    throw fjError("FJ_CLI_ARG", `--data has ${o.data.length} directories for ${sites.length} sites`);
  }
  const work = o.workdir ? path.resolve(o.workdir) : await mkdtemp(path.join(os.tmpdir(), "fedjoint-sim-"));
  await mkdir(path.join(work, "logs"), { recursive: true });
  const certs = await generateCerts({ out: path.join(work, "certs"), sites: sites.map((s) => s.name) });
  const dataDirs: string[] = [];
  for (const [i, s] of sites.entries()) {
    if (o.data) {
      dataDirs.push(path.resolve(o.data[i]));
      continue;
    }
    const out = path.join(work, "data", s.name);
    log.info(
      { site: s.name, joint: s.joint, subjects: o.subjects, size: o.dataSize },
      "synthesising phantoms",
    );
    await synthesizeDataset({
      joint: s.joint,
      subjects: o.subjects,
      size: o.dataSize,
      seed: config.seed + i + 1,
      out,
    });
    dataDirs.push(out);
  }
  const configFile = path.join(work, "study.json");
  await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`);
  const tls = (cert: string, key: string) =>
    o.insecure ? ["--insecure"] : ["--cert", cert, "--key", key, "--ca", certs.ca];
  const coordinator = new Proc(
    "coordinator",
    "coordinator",
    [
      "--config",
      configFile,
      "--state",
      path.join(work, "coordinator"),
      "--port",
      "0",
      "--json",
      // one user on one machine: every random choice from the study seed, so a simulation repeats
      "--reproducible-seed",
      String(config.seed),
      ...(o.nats ? ["--nats", o.nats] : []),
      ...tls(certs.coordinator.cert, certs.coordinator.key),
    ],
    { logFile: path.join(work, "logs", "coordinator.log") },
  );
  const procs: Proc[] = [coordinator];
  try {
    const listening = await coordinator.waitFor((l) => l.msg === "coordinator listening", "listening");
    const port = String(listening.address).split(":").pop();
    log.info({ port, work }, "coordinator up; starting sites");
    const siteProcs = sites.map(
      (s, i) =>
        new Proc(
          s.name,
          "site-client",
          [
            "--joint",
            s.joint,
            "--data",
            dataDirs[i],
            "--coordinator",
            `127.0.0.1:${port}`,
            "--state",
            path.join(work, "sites", s.name),
            "--backend",
            o.backend,
            "--json",
            "--reproducible-seed",
            String(config.seed),
            ...(o.insecure
              ? ["--insecure", "--site", s.name]
              : tls(certs.sites[s.name].cert, certs.sites[s.name].key)),
          ],
          { logFile: path.join(work, "logs", `${s.name}.log`), env: { FEDJOINT_THREADS: String(o.threads) } },
        ),
    );
    procs.push(...siteProcs);
    const exits = await Promise.all(procs.map((p) => p.exited));
    const failed = procs.filter((_, i) => exits[i].code !== 0);
    if (failed.length > 0) {
      throw fjError(
        "FJ_SIM_FAILED",
        `${failed.map((p) => p.name).join(", ")} failed; logs in ${path.join(work, "logs")}`,
      );
    }
    const study = coordinator.json<StudySummary>();
    const siteSummaries = new Map(siteProcs.map((p) => [p.name, p.json<SiteSummary>()]));
    if (!o.workdir) await rm(work, { recursive: true, force: true });
    return summarise(
      config.method,
      sites,
      study,
      siteSummaries,
      (performance.now() - t0) / 1000,
      o.workdir ? work : null,
    );
  } finally {
    for (const p of procs) p.kill("SIGTERM");
  }
}

function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function summarise(
  method: Method,
  sites: { name: string; joint: Joint }[],
  study: StudySummary,
  siteSummaries: Map<string, SiteSummary>,
  wallSeconds: number,
  workdir: string | null,
): SimulateSummary {
  const rounds = study.rounds.map((r) => {
    const slowest = Math.max(0, ...Object.values(r.computeSeconds));
    return {
      fold: r.fold,
      phase: r.phase,
      round: r.round,
      sites: r.sites,
      wallSeconds: r.wallSeconds,
      slowestComputeSeconds: slowest,
      overhead: slowest > 0 ? r.wallSeconds / slowest : Number.NaN,
      bytes: r.bytes,
    };
  });
  const later = rounds.filter((r) => r.round > 0).map((r) => r.overhead);
  const lastFold = Math.max(0, ...study.evaluations.map((e) => e.fold));
  const out: SimulateSummary["sites"] = {};
  for (const s of sites) {
    const ss = siteSummaries.get(s.name);
    const first = study.rounds.find(
      (r) => r.phase === "seg" && r.round === 0 && r.valDiceBefore[s.name] !== undefined,
    );
    const final = study.evaluations.find((e) => e.site === s.name && e.fold === lastFold);
    out[s.name] = {
      joint: s.joint,
      initialDice: first ? first.valDiceBefore[s.name] : null,
      finalDice: final ? final.meanDice : null,
      finalDicePerLabel: final ? final.dice : {},
      testDicePerLabel: final ? final.testDice : {},
      computeSeconds: ss?.computeSeconds ?? 0,
      bytes: ss?.bytes ?? { sent: 0, received: 0 },
    };
  }
  return {
    method,
    sites: out,
    rounds,
    aggregations: study.aggregations,
    overhead: {
      median: median(later),
      max: later.length > 0 ? Math.max(...later) : Number.NaN,
      firstRounds: rounds.filter((r) => r.round === 0).map((r) => r.overhead),
    },
    wallSeconds,
    results: workdir ? study.results : null,
    workdir,
  };
}
