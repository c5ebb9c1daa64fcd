/**
 * NATS event bus: study events go to subjects `fedjoint.<study>.<kind>` and are stored by a
 * JetStream stream (default `FEDJOINT`, subjects `fedjoint.>`), the study's durable audit log.
 * `publish` resolves when JetStream has acknowledged the message (it is on disk); `subscribe`
 * uses an ordered consumer filtered to `fedjoint.<study>.>`, replaying from the first stored
 * message when asked. Messages read back from NATS are validated (zod) before they reach a
 * handler; a malformed one is logged and skipped.
 *
 * `createEventBus({ natsUrl })` is the one factory the coordinator calls: NATS when a URL is
 * given, the in-process bus otherwise.
 */
import {
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { connect, type NatsConnection, type NodeConnectionOptions } from "@nats-io/transport-node";
import { z } from "zod";
import { EnvironmentError, fjError } from "../errors.js";
import { JOINTS } from "../joints.js";
import { type Logger, silentLogger } from "../log.js";
import { PHASES } from "../study/methods.js";
import { assertStudyId, InProcessBus } from "./bus-memory.js";
import { type EventBus, type StudyEvent, subjectOf } from "./events.js";

/** The JetStream stream that holds every study's events. */
export const DEFAULT_STREAM = "FEDJOINT";
export const STREAM_SUBJECTS = "fedjoint.>";

const joint = z.enum(JOINTS);
const phase = z.enum(PHASES);
const base = {
  study: z.string().regex(/^[A-Za-z0-9_-]+$/),
  seq: z.number().int().nonnegative(),
  time: z.string(),
};
const roundRef = { fold: z.number().int().nonnegative(), phase, round: z.number().int().nonnegative() };
const numbers = z.record(z.string(), z.number());

/** Runtime schema of `StudyEvent` (src/coordinator/events.ts), for events read from outside the process. */
export const studyEventSchema = z.discriminatedUnion("kind", [
  z.object({ ...base, kind: z.literal("study.started"), config: z.record(z.string(), z.unknown()) }),
  z.object({
    ...base,
    kind: z.literal("site.joined"),
    site: z.string(),
    joint,
    samples: z.number(),
    backend: z.string(),
  }),
  z.object({ ...base, kind: z.literal("site.left"), site: z.string(), reason: z.string() }),
  z.object({ ...base, ...roundRef, kind: z.literal("round.opened"), sites: z.array(z.string()) }),
  z.object({
    ...base,
    ...roundRef,
    kind: z.literal("update.accepted"),
    site: z.string(),
    samples: z.number(),
    bytes: z.number(),
    loss: numbers,
    validationDice: z.number().optional(),
  }),
  z.object({
    ...base,
    ...roundRef,
    kind: z.literal("update.rejected"),
    site: z.string(),
    reason: z.string(),
    code: z.string(),
  }),
  z.object({
    ...base,
    ...roundRef,
    kind: z.literal("round.closed"),
    sites: z.array(z.string()),
    missing: z.array(z.string()),
    durationMs: z.number(),
  }),
  z.object({
    ...base,
    ...roundRef,
    kind: z.literal("round.aggregated"),
    sites: z.array(z.string()),
    samples: z.number(),
    bytesIn: z.number(),
    bytesOut: z.number(),
    durationMs: z.number(),
  }),
  z.object({
    ...base,
    ...roundRef,
    kind: z.literal("embeddings.received"),
    site: z.string(),
    scales: z.number(),
    vectors: z.number(),
  }),
  z.object({
    ...base,
    kind: z.literal("evaluation.reported"),
    site: z.string(),
    joint,
    fold: z.number().int().nonnegative(),
    metrics: z.record(z.string(), numbers),
  }),
  z.object({
    ...base,
    kind: z.literal("study.done"),
    folds: z.number(),
    rounds: z.number(),
    durationMs: z.number(),
  }),
]);

/** Parses and validates one event (JSON text or an already-parsed value). */
export function parseStudyEvent(input: string | unknown): StudyEvent {
  let value: unknown = input;
  if (typeof input === "string") {
    try {
      value = JSON.parse(input);
    } catch (err) {
      throw fjError("FJ_EVENTS_MALFORMED", `event is not JSON: ${(err as Error).message}`);
    }
  }
  const parsed = studyEventSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined ? "" : `${issue.path.join(".") || "(root)"}: ${issue.message}`;
    throw fjError("FJ_EVENTS_MALFORMED", `event does not match the StudyEvent schema at ${where}`);
  }
  const event: StudyEvent = parsed.data;
  return event;
}

export interface NatsBusOptions {
  /** JetStream stream name (default FEDJOINT). Created with subjects `fedjoint.>` when absent. */
  stream?: string;
  /** Maximum age of stored events in ms (0 = keep forever, the default: it is the audit log). */
  maxAgeMs?: number;
  /** Stream storage (default file). */
  storage?: "file" | "memory";
  /** Connection name shown by the server (default "fedjoint"). */
  name?: string;
  /** Extra NATS connection options (TLS, credentials, timeouts). */
  connection?: Partial<NodeConnectionOptions>;
  logger?: Logger;
}

type Handler = (event: StudyEvent) => void;

export class NatsBus implements EventBus {
  private readonly subscriptions = new Set<{ stop: () => Promise<void> }>();
  private closed = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    readonly stream: string,
    readonly url: string,
    private readonly logger: Logger,
  ) {}

  /** Connects, checks JetStream and creates (or checks) the stream. */
  static async connect(url: string, options: NatsBusOptions = {}): Promise<NatsBus> {
    const logger = options.logger ?? silentLogger;
    const stream = options.stream ?? DEFAULT_STREAM;
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: url,
        name: options.name ?? "fedjoint",
        timeout: 5_000,
        maxReconnectAttempts: -1,
        ...options.connection,
      });
    } catch (err) {
      throw fjError(
        "FJ_NATS_CONNECT",
        `cannot connect to NATS at ${url}: ${(err as Error).message} (is nats-server running with -js?)`,
        { cause: err },
      );
    }
    try {
      const jsm = await jetstreamManager(nc, { timeout: 5_000 });
      await ensureStream(jsm, stream, options);
      const bus = new NatsBus(nc, jetstream(nc, { timeout: 10_000 }), stream, url, logger);
      logger.info({ nats: url, stream }, "study events go to NATS JetStream");
      return bus;
    } catch (err) {
      await nc.close().catch(() => undefined);
      if (err instanceof EnvironmentError) throw err;
      throw fjError(
        "FJ_NATS_JETSTREAM",
        `NATS at ${url} has no usable JetStream (start nats-server with -js): ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  async publish(event: StudyEvent): Promise<void> {
    if (this.closed) throw fjError("FJ_EVENTS_CLOSED", "event bus is closed: cannot publish");
    assertStudyId(event.study, "event.study");
    try {
      // msgID lets JetStream drop a retried publish of the same event (duplicate window).
      await this.js.publish(subjectOf(event), JSON.stringify(event), {
        msgID: `${event.study}:${event.seq}:${event.kind}:${event.time}`,
        expect: { streamName: this.stream },
      });
    } catch (err) {
      throw fjError(
        "FJ_NATS_PUBLISH",
        `JetStream did not acknowledge ${subjectOf(event)} seq ${event.seq} on stream ${this.stream}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  async subscribe(study: string, handler: Handler, options: { replay?: boolean } = {}): Promise<() => void> {
    if (this.closed) throw fjError("FJ_EVENTS_CLOSED", "event bus is closed: cannot subscribe");
    assertStudyId(study);
    const consumer = await this.js.consumers.get(this.stream, {
      filter_subjects: `fedjoint.${study}.>`,
      deliver_policy: options.replay === true ? DeliverPolicy.All : DeliverPolicy.New,
    });
    const messages = await consumer.consume();
    const loop = (async () => {
      for await (const msg of messages) {
        let event: StudyEvent;
        try {
          event = parseStudyEvent(msg.string());
        } catch (err) {
          this.logger.warn(
            { err, subject: msg.subject, streamSeq: msg.seq },
            "skipping malformed study event",
          );
          continue;
        }
        try {
          handler(event);
        } catch (err) {
          this.logger.warn({ err, study, seq: event.seq, kind: event.kind }, "event handler threw");
        }
      }
    })().catch((err: unknown) => {
      if (!this.closed) this.logger.error({ err, study }, "NATS subscription ended");
    });
    const entry = {
      stop: async () => {
        this.subscriptions.delete(entry);
        await messages.close();
        await loop;
      },
    };
    this.subscriptions.add(entry);
    return () => {
      void entry.stop();
    };
  }

  /**
   * Every stored event of a study, oldest first (the audit log as it stands now). Malformed
   * messages are skipped and counted in `skipped`.
   */
  async history(study: string): Promise<{ events: StudyEvent[]; skipped: number }> {
    if (this.closed) throw fjError("FJ_EVENTS_CLOSED", "event bus is closed: cannot read history");
    assertStudyId(study);
    const consumer = await this.js.consumers.get(this.stream, {
      filter_subjects: `fedjoint.${study}.>`,
      deliver_policy: DeliverPolicy.All,
    });
    const info = await consumer.info(true);
    const events: StudyEvent[] = [];
    let skipped = 0;
    if (info.num_pending === 0) return { events, skipped };
    const messages = await consumer.consume();
    for await (const msg of messages) {
      try {
        events.push(parseStudyEvent(msg.string()));
      } catch (err) {
        skipped += 1;
        this.logger.warn({ err, subject: msg.subject, streamSeq: msg.seq }, "skipping malformed study event");
      }
      if (msg.info.pending === 0) break;
    }
    await messages.close();
    return { events, skipped };
  }

  /**
   * Stops subscriptions and drains the connection; bounded by `CLOSE_TIMEOUT_MS` so that a
   * process whose NATS server is gone (the client keeps reconnecting) can still shut down.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const graceful = (async () => {
      await Promise.all([...this.subscriptions].map((s) => s.stop().catch(() => undefined)));
      await this.nc.drain();
    })();
    const finished = await bounded(graceful, CLOSE_TIMEOUT_MS);
    if (!finished && !this.nc.isClosed()) {
      this.logger.warn({ nats: this.url }, "NATS did not drain in time; closing the connection");
      await this.nc.close().catch(() => undefined);
    }
  }
}

/** How long `close()` waits for subscriptions to stop and the connection to drain. */
const CLOSE_TIMEOUT_MS = 3_000;

/** Resolves true when `p` settles within `ms`, false otherwise (never rejects). */
async function bounded(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function ensureStream(jsm: JetStreamManager, name: string, options: NatsBusOptions): Promise<void> {
  try {
    const info = await jsm.streams.info(name);
    if (!info.config.subjects?.includes(STREAM_SUBJECTS)) {
      throw fjError(
        "FJ_NATS_STREAM",
        `JetStream stream ${name} exists with subjects [${(info.config.subjects ?? []).join(", ")}], expected it to include ${STREAM_SUBJECTS}`,
      );
    }
    return;
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound) throw err;
  }
  const maxAgeMs = options.maxAgeMs ?? 0;
  if (!Number.isFinite(maxAgeMs) || maxAgeMs < 0) {
    throw fjError("FJ_NATS_MAX_AGE", `maxAgeMs must be >= 0, got ${String(options.maxAgeMs)}`);
  }
  await jsm.streams.add({
    name,
    subjects: [STREAM_SUBJECTS],
    storage: options.storage === "memory" ? StorageType.Memory : StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: Math.round(maxAgeMs * 1e6),
    duplicate_window: 120 * 1e9,
  });
}

export interface CreateEventBusOptions {
  /** NATS server URL (e.g. nats://nats:4222). Without it, an in-process bus. */
  natsUrl?: string;
  stream?: string;
  logger?: Logger;
  nats?: Omit<NatsBusOptions, "stream" | "logger">;
}

/** The coordinator's bus: NATS JetStream when `natsUrl` is given, in-process otherwise. */
export async function createEventBus(options: CreateEventBusOptions = {}): Promise<EventBus> {
  if (options.natsUrl === undefined || options.natsUrl === "") {
    return new InProcessBus({ logger: options.logger });
  }
  return NatsBus.connect(options.natsUrl, {
    ...options.nats,
    stream: options.stream,
    logger: options.logger,
  });
}
