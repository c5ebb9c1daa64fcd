/** Test fixture: the events of a small, plausible 3-site study, in coordinator order. */
import type { StudyEvent, StudyEventInput } from "../../../src/events/events.js";
import type { Joint } from "../../../src/joints.js";

export const SITES: { site: string; joint: Joint; samples: number }[] = [
  { site: "ankle-hospital", joint: "ankle", samples: 120 },
  { site: "knee-hospital", joint: "knee", samples: 180 },
  { site: "shoulder-hospital", joint: "shoulder", samples: 90 },
];

export class EventClock {
  private seq = 0;
  private t: number;
  constructor(
    readonly study: string,
    start = Date.UTC(2026, 0, 5, 9, 0, 0),
  ) {
    this.t = start;
  }
  next(input: StudyEventInput, advanceMs = 1_000): StudyEvent {
    this.seq += 1;
    this.t += advanceMs;
    return { ...input, study: this.study, seq: this.seq, time: new Date(this.t).toISOString() } as StudyEvent;
  }
}

export function joinEvents(clock: EventClock): StudyEvent[] {
  const s = clock.study;
  return [
    clock.next({ kind: "study.started", study: s, config: { method: "dsl+msc", rounds: 2, folds: 1 } }),
    ...SITES.map((x) => clock.next({ kind: "site.joined", study: s, ...x, backend: "wasm" })),
  ];
}

/** One round: open, three updates (or one rejected), close, aggregate, embeddings. */
export function roundEvents(
  clock: EventClock,
  round: number,
  options: { reject?: string } = {},
): StudyEvent[] {
  const s = clock.study;
  const ref = { fold: 0, phase: "seg" as const, round };
  const names = SITES.map((x) => x.site);
  const events: StudyEvent[] = [clock.next({ kind: "round.opened", study: s, ...ref, sites: names })];
  for (const [i, x] of SITES.entries()) {
    if (x.site === options.reject) {
      events.push(
        clock.next({
          kind: "update.rejected",
          study: s,
          ...ref,
          site: x.site,
          reason: "non-finite values",
          code: "FJ_AGG_NONFINITE",
        }),
      );
      continue;
    }
    events.push(
      clock.next(
        {
          kind: "update.accepted",
          study: s,
          ...ref,
          site: x.site,
          samples: x.samples,
          bytes: 4_000_000,
          loss: {
            ce: 1 / (round + 1) + i * 0.1,
            msc: 0.5 / (round + 1),
            total: 1.2 / (round + 1),
          },
          validationDice: 0.5 + 0.1 * round + i * 0.05,
        },
        2_500,
      ),
    );
  }
  const ok = SITES.filter((x) => x.site !== options.reject).map((x) => x.site);
  const missing = SITES.filter((x) => x.site === options.reject).map((x) => x.site);
  events.push(clock.next({ kind: "round.closed", study: s, ...ref, sites: ok, missing, durationMs: 7_500 }));
  events.push(
    clock.next({
      kind: "round.aggregated",
      study: s,
      ...ref,
      sites: ok,
      samples: 300,
      bytesIn: ok.length * 4_000_000,
      bytesOut: 3 * 4_000_000,
      durationMs: 120,
    }),
  );
  for (const x of SITES) {
    events.push(
      clock.next(
        { kind: "embeddings.received", study: s, ...ref, site: x.site, scales: 9, vectors: 32 },
        200,
      ),
    );
  }
  return events;
}

export function endEvents(clock: EventClock, rounds: number): StudyEvent[] {
  const s = clock.study;
  return [
    ...SITES.map((x, i) =>
      clock.next({
        kind: "evaluation.reported",
        study: s,
        site: x.site,
        joint: x.joint,
        fold: 0,
        metrics: { bone_a: { dice: 0.9 - i * 0.01, assd: 0.5 }, bone_b: { dice: 0.8, assd: 0.7 } },
      }),
    ),
    clock.next({ kind: "study.done", study: s, folds: 1, rounds, durationMs: 60_000 }),
  ];
}

/** A whole study: join, `rounds` rounds (the second rejects one site), evaluation, done. */
export function wholeStudy(study: string, rounds = 2): StudyEvent[] {
  const clock = new EventClock(study);
  const events = joinEvents(clock);
  for (let r = 0; r < rounds; r++)
    events.push(...roundEvents(clock, r, r === 1 ? { reject: "shoulder-hospital" } : {}));
  events.push(...endEvents(clock, rounds));
  return events;
}
