/**
 * Attack 3 of issue 13: "four idle streams block every update". Streams that write nothing no
 * longer hold the coordinator's upload slots: a caller is identified from its certificate when a
 * stream opens (a CN that is no site is refused at once, FJ_AUTH_UNKNOWN_SITE), a site may have
 * one upload in flight per RPC kind (a second is refused at once, FJ_COORD_BUSY), and a stream
 * that sends nothing is ended by the server after the idle limit (FJ_PROTOCOL_IDLE). Measured by
 * the coordinator's own event order, not by clocks: both honest updates are accepted while
 * knee's idle streams are still open, and those streams are ended afterwards with their code.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import {
  ATTACKER,
  type Bench,
  bench,
  coordinatorLog,
  expectHonestFinish,
  fjCode,
  joinAsKnee,
  type OpenUpload,
  openUpload,
} from "./helpers.js";

/** Of two streams opened together, the one the server refused at once and the one it kept. */
async function busyAndOpen(pair: [OpenUpload, OpenUpload]): Promise<OpenUpload> {
  const first = await Promise.race(pair.map((u, i) => u.result.then(() => i)));
  const refused = await pair[first].result;
  expect((refused as grpc.ServiceError).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  expect(fjCode(refused)).toBe("FJ_COORD_BUSY");
  const kept = pair[1 - first];
  expect(kept.done()).toBe(false);
  return kept;
}

describe("attack 3: idle streams", () => {
  let b: Bench | undefined;
  afterAll(async () => b?.close());

  it("four idle streams of an intruder and four of a site hold nothing; the honest updates go through", async () => {
    b = await bench({}, ["--stream-idle-s", "20"]);
    b.startHonest();
    for (const s of ["ankle", "shoulder"])
      await b.coordinator.waitFor((l) => l.msg === "site joined" && l.site === s, `${s} joined`);
    // the attack: four PushUpdate streams from a CA-signed certificate that is no site
    const intruder = Array.from({ length: 4 }, () => openUpload(b!.intruder, "PushUpdate"));
    for (const u of intruder) {
      const err = (await u.result) as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(fjCode(err)).toBe("FJ_AUTH_UNKNOWN_SITE");
    }
    // four idle streams of a site: one per RPC kind stays open, the second of each is refused
    const update = await busyAndOpen([
      openUpload(b.attacker, "PushUpdate"),
      openUpload(b.attacker, "PushUpdate"),
    ]);
    const embeddings = await busyAndOpen([
      openUpload(b.attacker, "PushEmbeddings"),
      openUpload(b.attacker, "PushEmbeddings"),
    ]);
    // the round opens; the honest sites train and push while knee's two streams sit idle
    await joinAsKnee(b);
    for (const s of ["ankle", "shoulder"])
      await b.coordinator.waitFor((l) => l.msg === "update accepted" && l.site === s, `${s} accepted`);
    expect(update.done()).toBe(false);
    expect(embeddings.done()).toBe(false);
    for (const u of [update, embeddings]) {
      const err = (await u.result) as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(fjCode(err)).toBe("FJ_PROTOCOL_IDLE");
      expect(err.details).toMatch(/^FJ_PROTOCOL_IDLE: Push(Update|Embeddings): nothing received for 20 s/);
    }
    // the coordinator's own order: both acceptances before it ended the idle streams
    const log = coordinatorLog(b);
    const idleEnds = log
      .map((l, i) => [l, i] as const)
      .filter(([l]) => l.msg === "call refused" && l.code === "FJ_PROTOCOL_IDLE" && l.site === ATTACKER)
      .map(([, i]) => i);
    expect(idleEnds).toHaveLength(2);
    for (const s of ["ankle", "shoulder"]) {
      const at = log.findIndex((l) => l.msg === "update accepted" && l.site === s);
      expect(at).toBeLessThan(Math.min(...idleEnds));
    }
    const st = await expectHonestFinish(b);
    expect(st.ledger.map((e) => e.site).sort()).toEqual(["ankle", "shoulder"]);
  });
});
