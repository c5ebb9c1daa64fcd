import { describe, expect, it } from "vitest";
import { createMetrics } from "../../../src/dashboard/metrics.js";
import { InProcessBus } from "../../../src/events/bus-memory.js";
import type { StudyEvent } from "../../../src/events/events.js";
import { wholeStudy } from "../events/study-events.js";

/** Parses Prometheus text into "name{labels}" → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

describe("Prometheus metrics from study events", () => {
  it("counts rounds, updates, bytes and durations, once per event even when fed twice", async () => {
    const events = wholeStudy("m1", 2);
    const m = createMetrics();
    for (const e of events) m.observe(e);
    for (const e of events) m.observe(e); // a replay overlapping a live feed
    const s = samples(await m.render());
    expect(s.get('fedjoint_rounds_opened_total{study="m1",phase="seg"}')).toBe(2);
    expect(s.get('fedjoint_rounds_closed_total{study="m1",phase="seg"}')).toBe(2);
    expect(s.get('fedjoint_rounds_aggregated_total{study="m1",phase="seg"}')).toBe(2);
    expect(s.get('fedjoint_updates_accepted_total{study="m1",site="shoulder-hospital"}')).toBe(1);
    expect(
      s.get('fedjoint_updates_rejected_total{study="m1",site="shoulder-hospital",code="FJ_AGG_NONFINITE"}'),
    ).toBe(1);
    expect(s.get('fedjoint_bytes_in_total{study="m1"}')).toBe(20_000_000);
    expect(s.get('fedjoint_bytes_out_total{study="m1"}')).toBe(24_000_000);
    expect(s.get('fedjoint_round_duration_seconds_count{study="m1",phase="seg"}')).toBe(2);
    expect(s.get('fedjoint_round_duration_seconds_sum{study="m1",phase="seg"}')).toBeCloseTo(15, 9);
    expect(s.get('fedjoint_round_duration_seconds_bucket{le="10",study="m1",phase="seg"}')).toBe(2);
    expect(s.get('fedjoint_sites_connected{study="m1"}')).toBe(3);
    expect(s.get('fedjoint_study_done{study="m1"}')).toBe(1);
    expect(s.get('fedjoint_events_total{study="m1",kind="update.accepted"}')).toBe(5);
    expect(s.get('fedjoint_last_round_missing_sites{study="m1"}')).toBe(1);
    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it("attaches to a bus with replay and keeps counting live events", async () => {
    const bus = new InProcessBus();
    const events = wholeStudy("m2", 3);
    const half = events.findIndex((e) => e.kind === "round.opened" && "round" in e && e.round === 2);
    for (const e of events.slice(0, half)) await bus.publish(e);
    const m = createMetrics();
    const stop = await m.attach(bus, "m2");
    let s = samples(await m.render());
    expect(s.get('fedjoint_rounds_closed_total{study="m2",phase="seg"}')).toBe(2);
    for (const e of events.slice(half)) await bus.publish(e as StudyEvent);
    s = samples(await m.render());
    expect(s.get('fedjoint_rounds_closed_total{study="m2",phase="seg"}')).toBe(3);
    stop();
    await bus.close();
  });
});
