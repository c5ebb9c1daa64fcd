import { describe, expect, it } from "vitest";
import { InputError } from "../../../src/errors.js";
import { InProcessBus } from "../../../src/events/bus-memory.js";
import type { StudyEvent } from "../../../src/events/events.js";
import { wholeStudy } from "./study-events.js";

describe("InProcessBus", () => {
  it("replays retained events in order, then delivers live ones, per study", async () => {
    const bus = new InProcessBus();
    const a = wholeStudy("a", 2);
    const b = wholeStudy("b", 1);
    for (const e of a.slice(0, 10)) await bus.publish(e);
    for (const e of b) await bus.publish(e);
    const got: StudyEvent[] = [];
    const live: StudyEvent[] = [];
    const stop = await bus.subscribe("a", (e) => got.push(e), { replay: true });
    await bus.subscribe("a", (e) => live.push(e));
    expect(got).toEqual(a.slice(0, 10));
    expect(live).toEqual([]);
    for (const e of a.slice(10)) await bus.publish(e);
    expect(got).toEqual(a);
    expect(live).toEqual(a.slice(10));
    stop();
    await bus.publish({ ...(a[0] as StudyEvent), seq: 1000 });
    expect(got).toHaveLength(a.length);
    expect(live).toHaveLength(a.length - 10 + 1);
    expect(bus.history("b")).toEqual(b);
  });

  it("isolates throwing handlers, bounds retention, refuses bad study ids and a closed bus", async () => {
    const bus = new InProcessBus({ retain: 3 });
    const events = wholeStudy("r", 1);
    const seen: number[] = [];
    await bus.subscribe("r", () => {
      throw new Error("boom");
    });
    await bus.subscribe("r", (e) => seen.push(e.seq));
    for (const e of events) await bus.publish(e);
    expect(seen).toEqual(events.map((e) => e.seq));
    expect(bus.history("r").map((e) => e.seq)).toEqual(events.slice(-3).map((e) => e.seq));
    await expect(bus.publish({ ...(events[0] as StudyEvent), study: "a.b" })).rejects.toThrow(InputError);
    await expect(bus.subscribe("a b", () => undefined)).rejects.toThrow(/not a valid study id/);
    expect(() => new InProcessBus({ retain: 0 })).toThrow(/retain must be a positive integer/);
    await bus.close();
    await expect(bus.publish(events[0] as StudyEvent)).rejects.toThrow(/closed/);
  });
});
