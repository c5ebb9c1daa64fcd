/**
 * The wire's refusal contract (src/protocol/status.ts) and the stream guards (src/protocol/stream.ts):
 * every error becomes a status with its FJ_ code in the details and the `fj-code` trailer, the
 * site's retry decision follows the code, a silent peer ends with FJ_PROTOCOL_IDLE, and a stream
 * read on demand fetches nothing it was not asked for.
 */
import { Readable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it, vi } from "vitest";
import { fjError } from "../../../src/errors.js";
import {
  CODE_TRAILER,
  detailOf,
  fjCodeOf,
  grpcStatusOf,
  isTransientCode,
  statusOf,
} from "../../../src/protocol/status.js";
import { guardedMessages, readOnDemand } from "../../../src/protocol/stream.js";

describe("statuses", () => {
  it("carry the FJ_ code in the details and the trailer; an unexpected error is FJ_COORD_INTERNAL", () => {
    const s = statusOf(fjError("FJ_AUTH_IMPERSONATION", "certificate CN=knee cannot act as site 'ankle'"));
    expect(s.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(s.details).toBe("FJ_AUTH_IMPERSONATION: certificate CN=knee cannot act as site 'ankle'");
    expect(s.metadata.get(CODE_TRAILER)).toEqual(["FJ_AUTH_IMPERSONATION"]);
    const internal = statusOf(new TypeError("x is undefined"));
    expect(internal.code).toBe(grpc.status.INTERNAL);
    expect(internal.details).toBe("FJ_COORD_INTERNAL: x is undefined");
    expect(fjCodeOf(internal)).toBe("FJ_COORD_INTERNAL");
    expect(fjCodeOf({ details: "FJ_PROTOCOL_REF: phase 'x'", metadata: new grpc.Metadata() })).toBe(
      "FJ_PROTOCOL_REF",
    );
    expect(fjCodeOf({ details: "No connection established", metadata: new grpc.Metadata() })).toBeUndefined();
    expect(detailOf({ details: "FJ_PROTOCOL_REF: phase 'x'", message: "" })).toBe("phase 'x'");
  });

  it("map codes to gRPC statuses, and only busy/idle/deadline/shutdown/transfer codes are transient", () => {
    expect(grpcStatusOf("FJ_COORD_NO_MODEL")).toBe(grpc.status.NOT_FOUND);
    expect(grpcStatusOf("FJ_PROTOCOL_IDLE")).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(grpcStatusOf("FJ_COORD_BUSY")).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(grpcStatusOf("FJ_AGG_SCALARS")).toBe(grpc.status.INVALID_ARGUMENT);
    for (const c of [
      "FJ_COORD_BUSY",
      "FJ_COORD_SHUTDOWN",
      "FJ_PROTOCOL_IDLE",
      "FJ_PROTOCOL_DEADLINE",
      "FJ_PROTOCOL_CHECKSUM",
    ])
      expect(isTransientCode(c), c).toBe(true);
    for (const c of [
      "FJ_AUTH_UNKNOWN_SITE",
      "FJ_AUTH_IMPERSONATION",
      "FJ_AGG_SHAPE",
      "FJ_PROTOCOL_REF",
      "FJ_COORD_INTERNAL",
    ])
      expect(isTransientCode(c), c).toBe(false);
  });
});

describe("stream guards", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("ends a stream whose peer sends nothing with FJ_PROTOCOL_IDLE, and one that lasts too long with FJ_PROTOCOL_DEADLINE", async () => {
    vi.useFakeTimers();
    const silent = new Readable({ objectMode: true, read() {} });
    silent.push({ header: 1 });
    const it = guardedMessages(silent, { idleMs: 1000, totalMs: 60_000 }, "PushUpdate");
    expect((await it.next()).value).toEqual({ header: 1 });
    const idle = it.next();
    const caught = idle.catch((e: Error) => e);
    await vi.advanceTimersByTimeAsync(1000);
    expect(String(await caught)).toMatch(/FJ_PROTOCOL_IDLE|nothing received for 1 s \(idle limit\)/);
    expect(((await caught) as { code?: string }).code).toBe("FJ_PROTOCOL_IDLE");

    const slow = new Readable({ objectMode: true, read() {} });
    const start = Date.now();
    const it2 = guardedMessages(slow, { idleMs: 5000, totalMs: 3000 }, "PushUpdate", start);
    const late = it2.next().catch((e: { code?: string }) => e);
    await vi.advanceTimersByTimeAsync(3000);
    expect(((await late) as { code?: string }).code).toBe("FJ_PROTOCOL_DEADLINE");
  });

  it("reads on demand: nothing beyond the asked-for message is fetched until free()", async () => {
    let fetched = 0;
    const source = new Readable({
      objectMode: true,
      read() {
        fetched++;
        this.push({ n: fetched });
      },
    });
    const reads = readOnDemand(source);
    const it = guardedMessages(source, { idleMs: 60_000, totalMs: 60_000 }, "t", Date.now(), reads.allow);
    expect((await it.next()).value).toEqual({ n: 1 });
    await new Promise((r) => setImmediate(r));
    // a plain Readable would have prefetched up to its high-water mark (16) by now
    expect(fetched).toBe(1);
    expect((await it.next()).value).toEqual({ n: 2 });
    await new Promise((r) => setImmediate(r));
    expect(fetched).toBe(2);
    reads.free();
    await new Promise((r) => setImmediate(r));
    expect(fetched).toBeGreaterThan(2);
  });
});
