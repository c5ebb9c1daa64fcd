/**
 * In-process event bus: the coordinator's default when no `--nats` is given. Same contract as
 * the NATS bus: events are retained per study (bounded) so that a late subscriber (the
 * dashboard, the metrics) can replay the study from its first event, then receive live ones.
 * Delivery is synchronous and in publish order; a throwing handler is logged and never stops
 * delivery to the others or the publisher.
 */
import { fjError } from "../errors.js";
import { type Logger, silentLogger } from "../log.js";
import type { EventBus, StudyEvent } from "./events.js";

/** Study ids are NATS subject tokens. */
export const STUDY_ID_PATTERN = /^[A-Za-z0-9_-]+$/;

export function assertStudyId(study: string, field = "study"): void {
  if (!STUDY_ID_PATTERN.test(study)) {
    throw fjError(
      "FJ_EVENTS_STUDY_ID",
      `${field} "${study}" is not a valid study id: expected letters, digits, "_" or "-" only`,
    );
  }
}

export interface InProcessBusOptions {
  /** Events retained per study for replay; the oldest are dropped beyond this (default 100,000). */
  retain?: number;
  logger?: Logger;
}

type Handler = (event: StudyEvent) => void;

export class InProcessBus implements EventBus {
  private readonly retained = new Map<string, StudyEvent[]>();
  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly retain: number;
  private readonly logger: Logger;
  private closed = false;

  constructor(options: InProcessBusOptions = {}) {
    this.retain = options.retain ?? 100_000;
    if (!Number.isInteger(this.retain) || this.retain < 1) {
      throw fjError("FJ_EVENTS_RETAIN", `retain must be a positive integer, got ${String(options.retain)}`);
    }
    this.logger = options.logger ?? silentLogger;
  }

  async publish(event: StudyEvent): Promise<void> {
    if (this.closed) throw fjError("FJ_EVENTS_CLOSED", "event bus is closed: cannot publish");
    assertStudyId(event.study, "event.study");
    let list = this.retained.get(event.study);
    if (list === undefined) {
      list = [];
      this.retained.set(event.study, list);
    }
    list.push(event);
    if (list.length > this.retain) list.splice(0, list.length - this.retain);
    const handlers = this.handlers.get(event.study);
    if (handlers === undefined) return;
    for (const handler of [...handlers]) this.deliver(handler, event);
  }

  async subscribe(study: string, handler: Handler, options: { replay?: boolean } = {}): Promise<() => void> {
    if (this.closed) throw fjError("FJ_EVENTS_CLOSED", "event bus is closed: cannot subscribe");
    assertStudyId(study);
    if (options.replay === true) {
      for (const event of [...(this.retained.get(study) ?? [])]) this.deliver(handler, event);
    }
    let set = this.handlers.get(study);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(study, set);
    }
    set.add(handler);
    return () => {
      this.handlers.get(study)?.delete(handler);
    };
  }

  /** Retained events of a study, oldest first (a copy). */
  history(study: string): StudyEvent[] {
    return [...(this.retained.get(study) ?? [])];
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
  }

  private deliver(handler: Handler, event: StudyEvent): void {
    try {
      handler(event);
    } catch (err) {
      this.logger.warn({ err, study: event.study, seq: event.seq, kind: event.kind }, "event handler threw");
    }
  }
}
