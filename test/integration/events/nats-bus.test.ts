import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatEvent, readAuditLog } from "../../../src/cli/commands/events.js";
import { EnvironmentError } from "../../../src/errors.js";
import { InProcessBus } from "../../../src/events/bus-memory.js";
import { createEventBus, DEFAULT_STREAM, NatsBus } from "../../../src/events/bus-nats.js";
import type { StudyEvent } from "../../../src/events/events.js";
import { EventClock, roundEvents, wholeStudy } from "../../unit/events/study-events.js";
import { freePort, type NatsServer, startNatsServer } from "./nats-server.js";

function collect(n: number): {
  handler: (e: StudyEvent) => void;
  done: Promise<StudyEvent[]>;
  events: StudyEvent[];
} {
  const events: StudyEvent[] = [];
  let resolve: (v: StudyEvent[]) => void = () => undefined;
  const done = new Promise<StudyEvent[]>((r) => {
    resolve = r;
  });
  return {
    events,
    done,
    handler: (e) => {
      events.push(e);
      if (events.length === n) resolve(events);
    },
  };
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe("NatsBus against a real nats-server -js", () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("stores a whole study in the FEDJOINT stream and replays it in order to a later subscriber", async () => {
    const study = wholeStudy("study-a", 3);
    const other = wholeStudy("study-b", 1);
    const publisher = await NatsBus.connect(server.url);
    // Interleave another study's events: the filter must keep them out of study-a's replay.
    for (let i = 0; i < Math.max(study.length, other.length); i++) {
      if (i < study.length) await publisher.publish(study[i] as StudyEvent);
      if (i < other.length) await publisher.publish(other[i] as StudyEvent);
    }
    // A retried publish of the same event is dropped by JetStream's duplicate window.
    await publisher.publish(study[0] as StudyEvent);
    await publisher.close();

    const nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(DEFAULT_STREAM);
    expect(info.config.subjects).toEqual(["fedjoint.>"]);
    expect(info.state.messages).toBe(study.length + other.length);
    await nc.close();

    const reader = await NatsBus.connect(server.url);
    const got = collect(study.length);
    const unsubscribe = await reader.subscribe("study-a", got.handler, { replay: true });
    const replayed = await within(got.done, 15_000, `${study.length} replayed events`);
    expect(replayed.map((e) => e.seq)).toEqual(study.map((e) => e.seq));
    expect(replayed.map((e) => e.kind)).toEqual(study.map((e) => e.kind));
    expect(replayed.every((e) => e.study === "study-a")).toBe(true);
    expect(replayed).toEqual(study);
    const counts = Object.fromEntries(
      [...new Set(study.map((e) => e.kind))].map((k) => [k, replayed.filter((e) => e.kind === k).length]),
    );
    expect(counts).toEqual({
      "study.started": 1,
      "site.joined": 3,
      "round.opened": 3,
      "update.accepted": 8,
      "update.rejected": 1,
      "round.closed": 3,
      "round.aggregated": 3,
      "embeddings.received": 9,
      "evaluation.reported": 3,
      "study.done": 1,
    });
    unsubscribe();

    // The audit log as a list (what `fedjoint events` prints), filtered by kind and site.
    const { events: history, skipped } = await reader.history("study-a");
    expect(skipped).toBe(0);
    expect(history).toEqual(study);
    expect((await reader.history("no-such-study")).events).toEqual([]);
    await reader.close();
    const rejected = await readAuditLog({
      nats: server.url,
      study: "study-a",
      stream: DEFAULT_STREAM,
      kind: ["update.rejected"],
    });
    expect(rejected.events.map((e) => e.kind)).toEqual(["update.rejected"]);
    expect(formatEvent(rejected.events[0] as StudyEvent)).toMatch(
      /^#\d+ {2}2026-01-05T09:\d\d:\d\d\.\d{3}Z {2}update\.rejected {2}shoulder-hospital {2}f0 seg r1 {2}FJ_AGG_NONFINITE "non-finite values"$/,
    );
    const knee = await readAuditLog({
      nats: server.url,
      study: "study-a",
      stream: DEFAULT_STREAM,
      site: "knee-hospital",
    });
    expect(knee.events.every((e) => "site" in e && e.site === "knee-hospital")).toBe(true);
    expect(knee.events.map((e) => e.kind)).toEqual([
      "site.joined",
      ...Array.from({ length: 3 }, () => ["update.accepted", "embeddings.received"]).flat(),
      "evaluation.reported",
    ]);
    await expect(
      readAuditLog({ nats: server.url, study: "study-a", stream: DEFAULT_STREAM, kind: ["round.bogus"] }),
    ).rejects.toThrow(/--kind is 'round.bogus', expected one of/);
  });

  it("delivers live events after subscribe resolves, skips malformed messages, and does not replay without replay", async () => {
    const bus = await NatsBus.connect(server.url);
    const clock = new EventClock("study-live");
    await bus.publish(clock.next({ kind: "study.started", study: "study-live", config: {} }));
    const live = roundEvents(clock, 0);
    const got = collect(live.length);
    await bus.subscribe("study-live", got.handler);

    // A foreign, malformed message on the study's subjects must not reach the handler.
    const nc = await connect({ servers: server.url });
    nc.publish("fedjoint.study-live.round.opened", "{not json");
    nc.publish(
      "fedjoint.study-live.round.opened",
      JSON.stringify({ kind: "round.opened", study: "study-live" }),
    );
    await nc.flush();
    await nc.close();

    for (const e of live) await bus.publish(e);
    const received = await within(got.done, 15_000, "live events");
    expect(received.map((e) => e.seq)).toEqual(live.map((e) => e.seq));
    expect(received[0]?.kind).toBe("round.opened");
    await bus.close();
  });

  it("createEventBus picks the in-process bus without a URL and fails with one line on an unreachable server", async () => {
    const memory = await createEventBus({});
    expect(memory).toBeInstanceOf(InProcessBus);
    await memory.close();
    const port = await freePort();
    const err = await createEventBus({
      natsUrl: `nats://127.0.0.1:${port}`,
      nats: { connection: { reconnect: false } },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvironmentError);
    expect((err as EnvironmentError).code).toBe("FJ_NATS_CONNECT");
    expect((err as EnvironmentError).toLine()).toMatch(
      /^FJ_NATS_CONNECT: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+/,
    );
  });

  it("closes within its bound when the NATS server has gone away (the client is reconnecting)", async () => {
    const own = await startNatsServer();
    const bus = await NatsBus.connect(own.url);
    await bus.subscribe("gone", () => undefined, { replay: true });
    await own.stop();
    const t0 = performance.now();
    await bus.close();
    expect(performance.now() - t0).toBeLessThan(6_000);
  });

  it("refuses a publish with a study id that is not a subject token", async () => {
    const bus = await NatsBus.connect(server.url);
    const bad = { ...(wholeStudy("ok")[0] as StudyEvent), study: "bad.study" };
    await expect(bus.publish(bad)).rejects.toThrow(/FJ_EVENTS_STUDY_ID|not a valid study id/);
    await bus.close();
  });
});
