/**
 * Shared setup of the federation integration tests: real `coordinator` and `site-client`
 * processes (src/simulation/processes.ts) on loopback with mutual TLS, tiny phantom datasets
 * and tiny models so that each test runs in well under a minute on a 2-core machine.
 */
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import type { StudyState } from "../../../src/coordinator/study.js";
import { synthesizeDataset } from "../../../src/data/phantoms.js";
import type { Joint } from "../../../src/joints.js";
import { type CertFiles, generateCerts } from "../../../src/protocol/certs.js";
import { CHANNEL_OPTIONS, federationService } from "../../../src/protocol/proto.js";
import { Proc } from "../../../src/simulation/processes.js";
import type { StudyConfigInput } from "../../../src/study/config.js";

export const SITES: { name: string; joint: Joint }[] = [
  { name: "ankle", joint: "ankle" },
  { name: "knee", joint: "knee" },
  { name: "shoulder", joint: "shoulder" },
];

export interface Env {
  work: string;
  certs: CertFiles;
  data: Record<string, string>;
}

let phantomCache: Promise<Record<string, string>> | undefined;

/** Phantom datasets (4 exams, 32³) for the three joints, made once per test file. */
async function phantoms(root: string): Promise<Record<string, string>> {
  phantomCache ??= (async () => {
    const out: Record<string, string> = {};
    for (const [i, s] of SITES.entries()) {
      out[s.name] = path.join(root, "data", s.name);
      await synthesizeDataset({ joint: s.joint, subjects: 4, size: 32, seed: i + 1, out: out[s.name] });
    }
    return out;
  })();
  return phantomCache;
}

export async function makeEnv(): Promise<Env> {
  const work = await mkdtemp(path.join(os.tmpdir(), "fj-fed-"));
  await mkdir(path.join(work, "logs"), { recursive: true });
  const certs = await generateCerts({ out: path.join(work, "certs"), sites: SITES.map((s) => s.name) });
  return { work, certs, data: await phantoms(work) };
}

export function studyConfig(over: Partial<StudyConfigInput> = {}): StudyConfigInput {
  return {
    study: "it",
    method: "dsl",
    sites: SITES,
    rounds: 4,
    localSteps: 2,
    minSites: 3,
    roundTimeoutS: 120,
    model: { base: 4, depth: 3, size: 32 },
    // pooled batch 12: 4 slices per site and step
    training: { seg: { batch: 12, lr: 3e-3 }, ae: { batch: 12, lr: 3e-3 } },
    embeddings: { enabled: true, count: 8 },
    // the protocol tests' arithmetic (sample-weighted means of models) is FedAvg's
    strategy: { name: "fedavg" },
    ...over,
  };
}

export async function writeConfig(env: Env, config: StudyConfigInput, name = "study.json"): Promise<string> {
  const file = path.join(env.work, name);
  await writeFile(file, JSON.stringify(config));
  return file;
}

/** A free loopback port (bound and released; the coordinator binds it next). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

let seq = 0;

export function startCoordinator(
  env: Env,
  configFile: string,
  port: number,
  extraEnv: NodeJS.ProcessEnv = {},
  extraArgs: string[] = [],
): Proc {
  const c = env.certs;
  return new Proc(
    "coordinator",
    "coordinator",
    [
      "--config",
      configFile,
      "--state",
      path.join(env.work, "coordinator"),
      "--port",
      String(port),
      "--json",
      "--cert",
      c.coordinator.cert,
      "--key",
      c.coordinator.key,
      "--ca",
      c.ca,
      ...extraArgs,
    ],
    { logFile: path.join(env.work, "logs", `coordinator-${seq++}.log`), env: extraEnv },
  );
}

export function startSite(env: Env, site: string, port: number, extraEnv: NodeJS.ProcessEnv = {}): Proc {
  const spec = SITES.find((s) => s.name === site)!;
  const c = env.certs.sites[site];
  return new Proc(
    site,
    "site-client",
    [
      "--joint",
      spec.joint,
      "--data",
      env.data[site],
      "--coordinator",
      `127.0.0.1:${port}`,
      "--state",
      path.join(env.work, "sites", site),
      "--backend",
      "auto",
      "--json",
      "--retry-for",
      "120",
      "--cert",
      c.cert,
      "--key",
      c.key,
      "--ca",
      env.certs.ca,
    ],
    {
      logFile: path.join(env.work, "logs", `${site}-${seq++}.log`),
      env: { FEDJOINT_THREADS: "1", ...extraEnv },
    },
  );
}

export async function readState(env: Env): Promise<StudyState> {
  return JSON.parse(await readFile(path.join(env.work, "coordinator", "state.json"), "utf8")) as StudyState;
}

/** A raw Federation client with the given PEM files (for crafted, hostile calls). */
export async function rawClient(
  port: number,
  files: { cert: string; key: string; ca: string },
): Promise<grpc.Client> {
  const [cert, key, ca] = await Promise.all([readFile(files.cert), readFile(files.key), readFile(files.ca)]);
  const Ctor = federationService();
  return new Ctor(`127.0.0.1:${port}`, grpc.credentials.createSsl(ca, key, cert), CHANNEL_OPTIONS);
}

export type { Proc };
