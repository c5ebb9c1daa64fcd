/**
 * Acceptance: hostile or broken clients against a real coordinator process over mTLS. A
 * wrong-shape update, a NaN update and a replayed (site, round) update are refused with a clear
 * reason and never aggregated; a client whose certificate comes from another CA cannot connect;
 * a site certificate cannot act as another site. Verified in the Acks, the operator's Watch
 * stream of study events and the persisted ledger.
 */
import { rm } from "node:fs/promises";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import type { NamedTensor } from "../../../src/model/api.js";
import { generateCerts } from "../../../src/protocol/certs.js";
import type { AckMsg, StudyEventMsg } from "../../../src/protocol/proto.js";
import { writeTensorStream } from "../../../src/protocol/stream.js";
import { encodeTensorSet } from "../../../src/protocol/tensors.js";
import { parseStudyConfig } from "../../../src/study/config.js";
import { initialModel } from "../../../src/study/model.js";
import {
  type Env,
  freePort,
  makeEnv,
  type Proc,
  rawClient,
  readState,
  startCoordinator,
  studyConfig,
  writeConfig,
} from "./helpers.js";

type Unary = (req: unknown, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void;

function call<T>(client: grpc.Client, method: string, req: unknown): Promise<T> {
  const fn = (client as unknown as Record<string, Unary>)[method].bind(client);
  return new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(err) : resolve(res as T))));
}

async function push(
  client: grpc.Client,
  site: string,
  round: number,
  tensors: NamedTensor[],
): Promise<AckMsg> {
  const enc = encodeTensorSet(tensors);
  let stream!: grpc.ClientWritableStream<unknown>;
  const acked = new Promise<AckMsg>((resolve, reject) => {
    stream = (
      client as unknown as {
        PushUpdate: (
          cb: (e: grpc.ServiceError | null, r?: AckMsg) => void,
        ) => grpc.ClientWritableStream<unknown>;
      }
    ).PushUpdate((err, res) => (err ? reject(err) : resolve(res!)));
  });
  const header = {
    site,
    ref: { fold: 0, phase: "seg", round },
    samples: 4,
    loss: { total: 1 },
    metrics: {},
    tensors: enc.header,
  };
  await writeTensorStream(stream, { header }, enc.payload);
  stream.end();
  return acked;
}

const STUDY = studyConfig({ rounds: 2, embeddings: { enabled: false } });
/** Θ of the study's architecture (the schema the coordinator expects) with every value v. */
const theta = (v: number): NamedTensor[] =>
  initialModel(parseStudyConfig(STUDY), "seg").map((t) => ({
    ...t,
    data: new Float32Array(t.data.length).fill(v),
  }));

describe("rejections over mTLS", () => {
  let env: Env;
  const procs: Proc[] = [];
  const clients: grpc.Client[] = [];
  afterAll(async () => {
    for (const c of clients) c.close();
    for (const p of procs) p.kill("SIGKILL");
    if (env) await rm(env.work, { recursive: true, force: true });
  });

  it("refuses bad updates, foreign CAs and impersonation with reasons, and aggregates nothing", async () => {
    env = await makeEnv();
    const config = await writeConfig(env, STUDY);
    const port = await freePort();
    const coord = startCoordinator(env, config, port);
    procs.push(coord);
    await coord.waitFor((l) => l.msg === "coordinator listening", "listening");
    const as = async (site: string) => {
      const c = await rawClient(port, { ...env.certs.sites[site], ca: env.certs.ca });
      clients.push(c);
      return c;
    };
    const ankle = await as("ankle");
    const knee = await as("knee");
    const shoulder = await as("shoulder");

    // Watch the study as its operator (the only identity that may)
    const events: StudyEventMsg[] = [];
    const operator = await rawClient(port, { ...env.certs.operator, ca: env.certs.ca });
    clients.push(operator);
    const watch = (
      operator as unknown as { Watch: (req: unknown) => grpc.ClientReadableStream<StudyEventMsg> }
    ).Watch({ replay: true });
    watch.on("data", (e: StudyEventMsg) => events.push(e));
    watch.on("error", () => undefined);

    for (const [c, site, joint] of [
      [ankle, "ankle", "ankle"],
      [knee, "knee", "knee"],
      [shoulder, "shoulder", "shoulder"],
    ] as const) {
      const reply = await call<{ study: string }>(c, "Join", {
        site,
        joint,
        labels: [],
        exams: 4,
        backend: "test",
        version: "t",
      });
      expect(reply.study).toBe("it");
    }
    expect(await push(ankle, "ankle", 0, theta(0.5))).toEqual({ status: "accepted", code: "", reason: "" });

    const reshaped = theta(0.5).map((t, i) => (i === 0 ? { ...t, shape: [t.data.length] } : t));
    const wrongShape = await push(knee, "knee", 0, reshaped);
    expect(wrongShape).toMatchObject({ status: "rejected", code: "FJ_AGG_SHAPE" });
    expect(wrongShape.reason).toMatch(/shared\/enc0\/conv1\/kernel has shape \[36\], expected \[3,3,1,4\]/);

    const nan = theta(0.5);
    nan[0].data[4] = Number.NaN;
    const nanAck = await push(knee, "knee", 0, nan);
    expect(nanAck).toMatchObject({ status: "rejected", code: "FJ_AGG_NONFINITE" });
    expect(nanAck.reason).toMatch(/NaN at element 4/);

    const replay = await push(ankle, "ankle", 0, theta(0.9));
    expect(replay).toMatchObject({ status: "rejected", code: "FJ_PROTOCOL_REPLAY" });
    expect(replay.reason).toMatch(/already accepted with different content/);
    const retry = await push(ankle, "ankle", 0, theta(0.5));
    expect(retry).toMatchObject({ status: "duplicate", code: "FJ_PROTOCOL_REPLAY" });

    // a site certificate acting as another site
    const impersonation = await push(knee, "ankle", 0, theta(0.1)).catch((e: grpc.ServiceError) => e);
    expect((impersonation as grpc.ServiceError).code).toBe(grpc.status.PERMISSION_DENIED);
    expect((impersonation as grpc.ServiceError).details).toMatch(
      /FJ_AUTH_IMPERSONATION: certificate CN=knee cannot act as site 'ankle'/,
    );
    const joinAs = await call(shoulder, "NextTask", { site: "knee" }).catch((e: grpc.ServiceError) => e);
    expect((joinAs as grpc.ServiceError).code).toBe(grpc.status.PERMISSION_DENIED);

    // a client whose certificate is signed by another CA (same CN) cannot even connect
    const foreign = await generateCerts({ out: path.join(env.work, "foreign"), sites: ["knee"] });
    const intruder = await rawClient(port, { ...foreign.sites.knee, ca: env.certs.ca });
    clients.push(intruder);
    const refused = await call(intruder, "Join", {
      site: "knee",
      joint: "knee",
      labels: [],
      exams: 4,
      backend: "x",
      version: "x",
    }).catch((e: grpc.ServiceError) => e);
    expect((refused as grpc.ServiceError).code).toBe(grpc.status.UNAVAILABLE);

    // nothing of the refused updates reached the ledger or an aggregate
    const st = await readState(env);
    expect(st.ledger.map((e) => `${e.site}/${e.round}`)).toEqual(["ankle/0"]);
    expect(st.aggregations).toHaveLength(0);
    const rejected = events
      .filter((e) => e.kind === "update.rejected")
      .map((e) => JSON.parse(e.json) as { code: string; site: string });
    expect(rejected.map((r) => r.code).sort()).toEqual([
      "FJ_AGG_NONFINITE",
      "FJ_AGG_SHAPE",
      "FJ_PROTOCOL_REPLAY",
    ]);
    expect(
      coord
        .logLines()
        .some((l) => l.msg === "impersonation refused" && l.certificate === "knee" && l.claimed === "ankle"),
    ).toBe(true);
    watch.cancel();
  });
});
