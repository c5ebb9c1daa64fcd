/**
 * Attack 5 of issue 13: "up to 2 GiB buffered per stream before validation". The malicious site
 * opens PushEmbeddings streams whose headers declare 1.92 GB each and tries to send 100 MB of
 * chunks into each — before the study starts and during a round. A stream's header is decided
 * before any payload byte is buffered (one tensor [count ≤ embeddings.count, dim] per scale, so
 * at most count · Σ dims values), and a site has one upload per kind in flight. Every flood is
 * refused with its code, the coordinator's peak RSS grows by less than 100 MB, and the honest
 * sites, which exchange their own embeddings, finish.
 */
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { scaleDims } from "../../../src/model/architecture.js";
import type { AckMsg } from "../../../src/protocol/proto.js";
import {
  ATTACKER,
  type Bench,
  bench,
  expectHonestFinish,
  fjCode,
  joinAsKnee,
  openUpload,
  send,
} from "./helpers.js";

function rssKb(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : Number.NaN;
}

const MiB = 1024 * 1024;
const junk = Buffer.alloc(MiB, 7);

/** A header declaring `rows` vectors per scale, and `mb` chunks of 1 MiB behind it. */
function flood(b: Bench, rows: number, mb: number) {
  const dims = scaleDims(b.config.model.base, b.config.model.depth);
  const tensors = dims.map((d, s) => ({ name: `embedding/scale${s}`, shape: [rows, d], dtype: "float32" }));
  const bytes = rows * dims.reduce((a, d) => a + d, 0) * 4;
  const header = {
    site: ATTACKER,
    ref: { fold: 0, phase: "seg", round: 0 },
    tensors: { tensors, bytes, sha256: "0".repeat(64) },
    mix: 1,
    noise: 0,
  };
  const chunks = Array.from({ length: mb }, (_, i) => ({ chunk: { offset: i * MiB, data: junk } }));
  return { bytes, messages: [{ header }, ...chunks] };
}

describe("attack 5: the embedding flood", () => {
  let b: Bench | undefined;
  afterAll(async () => b?.close());

  it("refuses 1.92 GB headers before buffering anything; the coordinator's RSS grows < 100 MB", async () => {
    b = await bench({ method: "dsl+msc", embeddings: { enabled: true, count: 8 } });
    const pid = b.coordinator.child.pid!;
    const before = rssKb(pid, "VmRSS");
    const rows = 12_000_000;
    const { bytes } = flood(b, rows, 0);
    expect(bytes).toBe(1_920_000_000);

    // before the study starts: six streams at once — one is decided on its header, five are busy
    const six = Array.from({ length: 6 }, () => openUpload(b!.attacker, "PushEmbeddings"));
    await Promise.all(six.map((u) => send(u, flood(b!, rows, 100).messages)));
    const early = await Promise.all(six.map((u) => u.result));
    const acks = early.filter((r): r is AckMsg => "status" in r && typeof r.status === "string");
    const busy = early.filter((r) => fjCode(r) === "FJ_COORD_BUSY");
    expect(acks.length + busy.length).toBe(6);
    expect(acks.length).toBeGreaterThanOrEqual(1);
    for (const a of acks) expect(a).toMatchObject({ status: "rejected", code: "FJ_PROTOCOL_STALE" });
    for (const r of busy) expect((r as grpc.ServiceError).code).toBe(grpc.status.RESOURCE_EXHAUSTED);

    // during round 0: six more, one after the other, each refused on its header
    b.startHonest();
    for (const s of ["ankle", "shoulder"])
      await b.coordinator.waitFor((l) => l.msg === "site joined" && l.site === s, `${s} joined`);
    await joinAsKnee(b);
    for (let i = 0; i < 6; i++) {
      const up = openUpload(b.attacker, "PushEmbeddings");
      const sent = await send(up, flood(b, rows, 100).messages);
      const r = await up.result;
      expect(r).toMatchObject({ status: "rejected", code: "FJ_COORD_EMBEDDINGS" });
      expect((r as AckMsg).reason).toMatch(/12000000 vectors, expected 1\.\.8/);
      expect(sent).toBeLessThan(101);
    }
    // a header within the caps, then 100 MB: refused at the first byte beyond what it declared
    const up = openUpload(b.attacker, "PushEmbeddings");
    await send(up, flood(b, 8, 100).messages);
    const over = (await up.result) as grpc.ServiceError;
    expect(over.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(fjCode(over)).toBe("FJ_PROTOCOL_CHUNK");
    expect(over.details).toMatch(/more bytes than the header declares/);

    const peak = rssKb(pid, "VmHWM");
    const growthMb = (peak - before) / 1024;
    process.stderr.write(
      `embedding flood: coordinator RSS ${(before / 1024).toFixed(0)} MB before, peak ${(peak / 1024).toFixed(0)} MB after 13 floods of 1.92 GB headers (+${growthMb.toFixed(1)} MB)\n`,
    );
    expect(growthMb).toBeLessThan(100);

    const st = await expectHonestFinish(b);
    expect(st.ledger.map((e) => e.site).sort()).toEqual(["ankle", "shoulder"]);
    // the honest sites' own embeddings were received
    const received = b.events
      .filter((e) => e.kind === "embeddings.received")
      .map((e) => JSON.parse(e.json).site);
    expect([...new Set(received)].sort()).toEqual(["ankle", "shoulder"]);
  });
});
