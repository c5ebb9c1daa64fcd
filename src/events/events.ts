/**
 * Study events: the one stream the dashboard, the audit log (NATS JetStream) and tools read.
 * The coordinator publishes; buses (in-process, NATS) deliver. Subjects are
 * `fedjoint.<study>.<kind>` with `kind` as below (dots in kinds become subject tokens).
 */

import type { Joint } from "../joints.js";
import type { Phase } from "../study/methods.js";

interface Base {
  /** Study id (subject token: [A-Za-z0-9_-]+). */
  study: string;
  /** Monotonic per-study sequence number assigned by the coordinator. */
  seq: number;
  /** ISO-8601 time of the event. */
  time: string;
}

export interface RoundRef {
  fold: number;
  phase: Phase;
  round: number;
}

export type StudyEvent = Base &
  (
    | { kind: "study.started"; config: Record<string, unknown> }
    | { kind: "site.joined"; site: string; joint: Joint; samples: number; backend: string }
    | { kind: "site.left"; site: string; reason: string }
    | ({ kind: "round.opened"; sites: string[] } & RoundRef)
    | ({
        kind: "update.accepted";
        site: string;
        samples: number;
        bytes: number;
        loss: Record<string, number>;
        /** The site's mean validation Dice of the model it trained from (SEG rounds). */
        validationDice?: number;
      } & RoundRef)
    | ({ kind: "update.rejected"; site: string; reason: string; code: string } & RoundRef)
    | ({ kind: "round.closed"; sites: string[]; missing: string[]; durationMs: number } & RoundRef)
    | ({
        kind: "round.aggregated";
        sites: string[];
        samples: number;
        bytesIn: number;
        bytesOut: number;
        durationMs: number;
      } & RoundRef)
    | ({ kind: "embeddings.received"; site: string; scales: number; vectors: number } & RoundRef)
    | {
        kind: "evaluation.reported";
        site: string;
        joint: Joint;
        fold: number;
        /** Per label name: metric name → value (Dice, sensitivity, specificity, MSSD, ASSD, RAVD). */
        metrics: Record<string, Record<string, number>>;
      }
    | { kind: "study.done"; folds: number; rounds: number; durationMs: number }
  );

export type StudyEventKind = StudyEvent["kind"];

/** Distributive Omit over the union, for publishers (seq and time are assigned by the bus owner). */
export type StudyEventInput = StudyEvent extends infer E
  ? E extends StudyEvent
    ? Omit<E, "seq" | "time">
    : never
  : never;

export interface EventBus {
  /** Publishes an event (resolves when the bus has accepted it durably, for durable buses). */
  publish(event: StudyEvent): Promise<void>;
  /**
   * Subscribes to a study's events. With `replay: true` first delivers every retained event of
   * the study in order, then live ones. Returns an unsubscribe function.
   */
  subscribe(
    study: string,
    handler: (event: StudyEvent) => void,
    options?: { replay?: boolean },
  ): Promise<() => void>;
  close(): Promise<void>;
}

export function subjectOf(event: Pick<StudyEvent, "study" | "kind">): string {
  return `fedjoint.${event.study}.${event.kind}`;
}
