/**
 * The attack bench of test/integration/security: a real coordinator process and two honest
 * site-client processes (ankle, shoulder) over loopback mTLS, and the attacker — a second gRPC
 * client holding knee's valid, CA-signed certificate (knee is the malicious site of the study) —
 * plus an "intruder" certificate of the same CA whose CN is no site, and the operator's Watch
 * stream of study events. Each test runs one attack and then checks, from the coordinator's own
 * state, that the honest sites finished the study without any of the attacker's updates.
 */
import { copyFile, mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { expect } from "vitest";
import type { StudyState } from "../../../src/coordinator/study.js";
import type { NamedTensor } from "../../../src/model/api.js";
import { generateCerts } from "../../../src/protocol/certs.js";
import type { AckMsg, StudyEventMsg } from "../../../src/protocol/proto.js";
import { CODE_TRAILER } from "../../../src/protocol/status.js";
import { writeMessage } from "../../../src/protocol/stream.js";
import { chunksOf, encodeTensorSet } from "../../../src/protocol/tensors.js";
import { parseStudyConfig, type StudyConfigInput } from "../../../src/study/config.js";
import { initialModel } from "../../../src/study/model.js";
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
} from "../federation/helpers.js";

export const HONEST = ["ankle", "shoulder"] as const;
export const ATTACKER = "knee";

export interface Bench {
  env: Env;
  port: number;
  config: ReturnType<typeof parseStudyConfig>;
  coordinator: Proc;
  /** The honest site-clients (started by `startHonest`). */
  honest: Proc[];
  /** gRPC clients with knee's certificate, the intruder's (CN not a site) and the operator's. */
  attacker: grpc.Client;
  intruder: grpc.Client;
  operator: grpc.Client;
  /** Every study event, from the operator's Watch stream. */
  events: StudyEventMsg[];
  startHonest(): void;
  /** Resolves when the coordinator and both honest sites exited; returns their exit codes. */
  finished(): Promise<number[]>;
  state(): Promise<StudyState>;
  close(): Promise<void>;
}

/**
 * The bench for a study of three sites (knee malicious) that may close rounds with the two
 * honest ones: minSites 2, `roundTimeoutS` short so that knee's silence costs little.
 */
export async function bench(
  over: Partial<StudyConfigInput> = {},
  coordinatorArgs: string[] = [],
): Promise<Bench> {
  const env = await makeEnv();
  const input = studyConfig({
    rounds: 1,
    minSites: 2,
    roundTimeoutS: 15,
    embeddings: { enabled: false },
    ...over,
  });
  const file = await writeConfig(env, input);
  const port = await freePort();
  // an identity the CA signed that is not a site of the study
  const intruderDir = path.join(env.work, "intruder");
  await mkdir(intruderDir, { recursive: true });
  await copyFile(env.certs.ca, path.join(intruderDir, "ca.pem"));
  await copyFile(env.certs.caKey, path.join(intruderDir, "ca.key"));
  const intruderCerts = await generateCerts({ out: intruderDir, sites: ["intruder"], reuseCa: true });
  const coordinator = startCoordinator(env, file, port, {}, coordinatorArgs);
  await coordinator.waitFor((l) => l.msg === "coordinator listening", "listening");
  const attacker = await rawClient(port, { ...env.certs.sites[ATTACKER], ca: env.certs.ca });
  const intruder = await rawClient(port, { ...intruderCerts.sites.intruder, ca: env.certs.ca });
  const operator = await rawClient(port, { ...env.certs.operator, ca: env.certs.ca });
  const events: StudyEventMsg[] = [];
  const watch = (
    operator as unknown as { Watch: (req: unknown) => grpc.ClientReadableStream<StudyEventMsg> }
  ).Watch({ replay: true });
  watch.on("data", (e: StudyEventMsg) => events.push(e));
  watch.on("error", () => undefined);
  const honest: Proc[] = [];
  return {
    env,
    port,
    config: parseStudyConfig(input),
    coordinator,
    honest,
    attacker,
    intruder,
    operator,
    events,
    startHonest() {
      for (const s of HONEST) honest.push(startSite(env, s, port));
    },
    async finished() {
      const exits = await Promise.all([coordinator.exited, ...honest.map((p) => p.exited)]);
      return exits.map((e) => e.code ?? -1);
    },
    state: () => readState(env),
    async close() {
      watch.cancel();
      for (const c of [attacker, intruder, operator]) c.close();
      for (const p of [coordinator, ...honest]) p.kill("SIGKILL");
      await rm(env.work, { recursive: true, force: true });
    },
  };
}

type Unary = (req: unknown, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void;

/** A unary call; resolves with the reply or the ServiceError. */
export function unary<T>(client: grpc.Client, method: string, req: unknown): Promise<T | grpc.ServiceError> {
  const fn = (client as unknown as Record<string, Unary>)[method].bind(client);
  return new Promise((resolve) => fn(req, (err, res) => resolve(err ?? (res as T))));
}

/** The attacker joins as knee (the study starts once every site has joined). */
export async function joinAsKnee(b: Bench): Promise<void> {
  const reply = await unary<{ study: string }>(b.attacker, "Join", {
    site: ATTACKER,
    joint: "knee",
    labels: [],
    exams: 4,
    backend: "attacker",
    version: "x",
  });
  expect((reply as { study?: string }).study).toBe("it");
}

/** A server stream's outcome: its messages and the final status (code, details, FJ_ trailer). */
export async function drain(
  stream: grpc.ClientReadableStream<unknown>,
): Promise<{ messages: number; code: grpc.status; details: string; fjCode?: string }> {
  let messages = 0;
  stream.on("data", () => {
    messages++;
  });
  return new Promise((resolve) => {
    stream.on("error", () => undefined);
    stream.on("status", (s: grpc.StatusObject) => {
      const fj = s.metadata?.get(CODE_TRAILER)?.[0];
      resolve({
        messages,
        code: s.code,
        details: s.details,
        ...(typeof fj === "string" ? { fjCode: fj } : {}),
      });
    });
  });
}

/** The FJ_ code of a failed call (trailing metadata `fj-code`). */
export function fjCode(err: unknown): string | undefined {
  const v = (err as grpc.ServiceError).metadata?.get(CODE_TRAILER)?.[0];
  return typeof v === "string" ? v : undefined;
}

export interface UploadHeader {
  site: string;
  ref: { fold: number; phase: string; round: number };
  samples?: number;
  loss?: Record<string, number>;
  metrics?: Record<string, number>;
}

/** A client-streaming call: its Ack, or the ServiceError the server ended it with. */
export interface OpenUpload {
  stream: grpc.ClientWritableStream<unknown>;
  result: Promise<AckMsg | grpc.ServiceError>;
  /** True once the server answered (an Ack or a status). */
  done(): boolean;
}

export function openUpload(client: grpc.Client, rpc: "PushUpdate" | "PushEmbeddings"): OpenUpload {
  let answered = false;
  let stream!: grpc.ClientWritableStream<unknown>;
  const result = new Promise<AckMsg | grpc.ServiceError>((resolve) => {
    stream = (
      client as unknown as Record<
        string,
        (cb: (e: grpc.ServiceError | null, r?: AckMsg) => void) => grpc.ClientWritableStream<unknown>
      >
    )[rpc]((err, res) => {
      answered = true;
      resolve(err ?? res!);
    });
  });
  stream.on("error", () => undefined);
  return { stream, result, done: () => answered };
}

/**
 * Writes `messages` in order while the server has not answered (a server that refused the header
 * stops reading: waiting for 'drain' then would wait forever), then ends the stream.
 */
export async function send(up: OpenUpload, messages: Iterable<unknown>): Promise<number> {
  let sent = 0;
  for (const m of messages) {
    if (up.done()) break;
    const wrote = await Promise.race([
      writeMessage(up.stream, m).then(
        () => true,
        () => false,
      ),
      up.result.then(() => false),
    ]);
    if (!wrote) break;
    sent++;
  }
  up.stream.end();
  return sent;
}

/** Pushes an update (header + payload) and ends the stream; resolves with the server's answer. */
export async function pushUpdate(
  client: grpc.Client,
  header: UploadHeader,
  tensors: NamedTensor[],
): Promise<AckMsg | grpc.ServiceError> {
  const up = openUpload(client, "PushUpdate");
  const enc = encodeTensorSet(tensors);
  const first = {
    header: { samples: 1, loss: { total: 1, ce: 1 }, metrics: {}, ...header, tensors: enc.header },
  };
  await send(up, [first, ...[...chunksOf(enc.payload)].map((chunk) => ({ chunk }))]);
  return up.result;
}

/** Θ_0 of the bench's study with every value replaced by `v` (the schema the coordinator expects). */
export function filledTheta(b: Bench, v: number): NamedTensor[] {
  return initialTheta(b).map((t) => ({ ...t, data: new Float32Array(t.data.length).fill(v) }));
}

/** The study's Θ_0 (what the coordinator serves in round 0). */
export function initialTheta(b: Bench): NamedTensor[] {
  return initialModel(b.config, "seg");
}

/** The coordinator's log lines, in its own order. */
export function coordinatorLog(b: Bench): { msg?: string; [k: string]: unknown }[] {
  return b.coordinator.logLines();
}

/** Checks the study finished for the honest sites and that the attacker's updates entered no aggregate. */
export async function expectHonestFinish(b: Bench): Promise<StudyState> {
  const codes = await b.finished();
  expect(codes).toEqual([0, 0, 0]);
  const st = await b.state();
  expect(st.status).toBe("done");
  expect(st.aggregations.length).toBeGreaterThan(0);
  for (const a of st.aggregations) {
    expect(a.sites).not.toContain(ATTACKER);
    expect([...a.sites].sort()).toEqual([...HONEST]);
  }
  for (const s of HONEST) expect(st.evaluations.some((e) => e.site === s)).toBe(true);
  return st;
}

export async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, "utf8")) as T;
}
