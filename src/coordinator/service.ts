/**
 * gRPC service of the coordinator: identifies the caller (client-certificate CN under mTLS) before
 * it holds anything, enforces that a site only acts as itself, moves tensor streams through
 * src/protocol under byte caps and deadlines, and hands decisions to the Study.
 *
 * Resources, in the order a call takes them:
 * 1. identity — an upload stream's caller is identified from its certificate when the stream
 *    opens: a CN that is not a site is refused at once (FJ_AUTH_UNKNOWN_SITE);
 * 2. one in-flight upload per site and RPC kind (a second one: FJ_COORD_BUSY at once);
 * 3. the header, within the idle limit; the Study decides on it alone (open round, sample count,
 *    losses and metrics, tensor names/shapes/dtypes against the phase's schema), which fixes the
 *    stream's byte count — |Θ| for updates, embeddings.count · Σ dims for embeddings;
 * 4. an upload slot (at most `maxConcurrentUploads` payloads buffered at once), then the payload,
 *    chunk by chunk, each within the idle limit and the whole stream within the total deadline.
 * An idle stream holds no slot and no buffer, and is ended by the server with FJ_PROTOCOL_IDLE.
 *
 * Every refused call ends with a gRPC status whose details start with its FJ_ code (also in the
 * `fj-code` trailer, src/protocol/status.ts); a refused update or evaluation is an Ack carrying
 * code and reason. `Watch` is for the coordinator's operator identities only.
 */
import type * as grpc from "@grpc/grpc-js";
import { FedjointError, fjError } from "../errors.js";
import type { EventBus } from "../events/events.js";
import type { Logger } from "../log.js";
import type {
  AckMsg,
  ChunkMsg,
  EmbeddingHeaderMsg,
  EmbeddingRequestMsg,
  EvaluationMsg,
  JoinReplyMsg,
  JoinRequestMsg,
  ModelRequestMsg,
  RoundRefMsg,
  StudyEventMsg,
  TaskMsg,
  TaskRequestMsg,
  TensorSetHeaderMsg,
  TensorStreamMsg,
  UpdateHeaderMsg,
  WatchRequestMsg,
} from "../protocol/proto.js";
import { serviceError } from "../protocol/status.js";
import { guardedMessages, readOnDemand, type StreamLimits, writeTensorStream } from "../protocol/stream.js";
import { encodeTensorSet, TensorSetReceiver, tapHeader } from "../protocol/tensors.js";
import { type PeerAuth, peerIdentity } from "../protocol/tls.js";
import type { Phase } from "../study/methods.js";
import { type AckResult, evaluationReportSchema, type Ref, type Study, type Task } from "./study.js";

/** Server-side stream limits when none are given: 30 s idle, 10 min per stream. */
export const DEFAULT_STREAM_LIMITS: StreamLimits = { idleMs: 30_000, totalMs: 600_000 };
/** Events a Watch client may leave unread before the server ends its stream. */
const WATCH_BACKLOG = 10_000;

function ack(r: AckResult): AckMsg {
  return r.status === "accepted"
    ? { status: "accepted", code: "", reason: "" }
    : { status: r.status, code: r.code, reason: r.reason };
}

function parseRef(ref: RoundRefMsg | null | undefined, phases: readonly Phase[]): Ref {
  if (!ref) throw fjError("FJ_PROTOCOL_REF", "missing round reference (fold, phase, round)");
  if (!phases.includes(ref.phase as Phase)) {
    throw fjError(
      "FJ_PROTOCOL_REF",
      `phase '${String(ref.phase).slice(0, 32)}', this study has ${phases.join(", ")}`,
    );
  }
  return { fold: ref.fold, phase: ref.phase as Phase, round: ref.round };
}

function taskMsg(t: Task): TaskMsg {
  const base: TaskMsg = {
    kind: t.kind,
    ref: null,
    hasModel: false,
    hasBank: false,
    aeRounds: 0,
    train: null,
  };
  if (t.kind === "evaluate")
    return { ...base, ref: { ...t.ref, round: t.instructions.round }, hasModel: t.hasModel };
  if (t.kind === "train") {
    return {
      ...base,
      ref: t.ref,
      hasModel: t.hasModel,
      hasBank: t.hasBank,
      aeRounds: t.aeRounds,
      train: { ...t.instructions },
    };
  }
  return base;
}

export interface ServiceOptions {
  study: Study;
  bus: EventBus;
  insecure: boolean;
  log: Logger;
  /**
   * Upload payloads received (buffered, decoded, validated) at the same time; the others wait
   * unread, held back by HTTP/2 flow control. Bounds the coordinator's memory to
   * O(|Θ| · maxConcurrentUploads) however many sites push at once (default 4).
   */
  maxConcurrentUploads?: number;
  /** Certificate CNs of the coordinator's operators: the only identities allowed to Watch. */
  operators: readonly string[];
  /** Idle and total deadlines of every stream (default DEFAULT_STREAM_LIMITS). */
  limits?: StreamLimits;
}

/** A FIFO counting semaphore whose waits end at a deadline. */
class Slots {
  private free: number;
  private readonly queue: { grant: () => void; timer: NodeJS.Timeout }[] = [];
  constructor(n: number) {
    this.free = n;
  }
  /** Resolves with a release function, or rejects with `onTimeout()` after `waitMs`. */
  acquire(waitMs: number, onTimeout: () => Error): Promise<() => void> {
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      if (next) {
        clearTimeout(next.timer);
        next.grant();
      } else this.free++;
    };
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => resolve(release),
        timer: setTimeout(() => {
          const i = this.queue.indexOf(entry);
          if (i >= 0) this.queue.splice(i, 1);
          reject(onTimeout());
        }, waitMs),
      };
      this.queue.push(entry);
    });
  }
}

type UploadKind = "PushUpdate" | "PushEmbeddings";

export function federationHandlers(options: ServiceOptions): grpc.UntypedServiceImplementation {
  const { study, bus, insecure, log } = options;
  const phases = study.phases;
  const limits = options.limits ?? DEFAULT_STREAM_LIMITS;
  const slots = new Slots(options.maxConcurrentUploads ?? 4);
  const inFlight = new Set<string>();
  const downloads = new Map<string, number>();

  /**
   * Runs a download (PullModel, PullEmbeddings) of `site` when fewer than `max` of that kind are in
   * flight for it (FJ_COORD_BUSY otherwise): a site that opens streams and never reads them cannot
   * make the coordinator queue model copies without bound. The site-client pulls at most two
   * models (the AE's and the round's) and one bank at once.
   */
  async function download<T>(site: string, rpc: string, max: number, fn: () => Promise<T>): Promise<T> {
    const key = `${site}/${rpc}`;
    const n = downloads.get(key) ?? 0;
    if (n >= max) throw fjError("FJ_COORD_BUSY", `${rpc}: site ${site} already has ${n} in flight`);
    downloads.set(key, n + 1);
    try {
      return await fn();
    } finally {
      const left = (downloads.get(key) ?? 1) - 1;
      if (left > 0) downloads.set(key, left);
      else downloads.delete(key);
    }
  }
  const operators = new Set(options.operators);

  /** The verified certificate CN (mTLS), or FJ_AUTH_NO_CERTIFICATE. */
  function certificateCn(call: PeerAuth, rpc: string): string {
    const cn = peerIdentity(call);
    if (!cn) throw fjError("FJ_AUTH_NO_CERTIFICATE", `${rpc}: no verified client certificate`);
    return cn;
  }

  /** The caller as a site; with mTLS its certificate CN, which must equal any site it claims. */
  function identify(call: PeerAuth, claimed: string, rpc: string): string {
    if (insecure) {
      if (!study.isSite(claimed)) {
        throw fjError(
          "FJ_AUTH_UNKNOWN_SITE",
          `${rpc}: '${String(claimed).slice(0, 64)}' is not a site of study ${study.config.study}`,
        );
      }
      return claimed;
    }
    const cn = certificateCn(call, rpc);
    if (!study.isSite(cn)) {
      log.warn({ rpc, certificate: cn }, "caller is not a site of the study");
      throw fjError("FJ_AUTH_UNKNOWN_SITE", `CN=${cn} is not a site of study ${study.config.study} (${rpc})`);
    }
    if (claimed !== cn) {
      log.warn({ rpc, certificate: cn, claimed }, "impersonation refused");
      throw fjError(
        "FJ_AUTH_IMPERSONATION",
        `certificate CN=${cn} cannot act as site '${String(claimed).slice(0, 64)}' (${rpc})`,
      );
    }
    return cn;
  }

  /** Logs a call the service ends with a refusal (never a stack for a FedjointError). */
  function refused(rpc: string, err: unknown, fields: Record<string, unknown> = {}): void {
    if (err instanceof FedjointError) {
      log.warn({ rpc, ...fields, code: err.code, reason: err.detail }, "call refused");
    } else {
      log.error({ rpc, ...fields, err }, "internal error in a gRPC handler");
    }
  }

  function unary<Req, Res>(name: string, fn: (call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>) {
    return (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => {
      fn(call).then(
        (res) => cb(null, res),
        (err: unknown) => {
          refused(name, err);
          cb(serviceError(err));
        },
      );
    };
  }

  /**
   * A server-streaming handler: `fn` writes with back-pressure and stops when `signal` aborts (the
   * caller cancelled, or the stream's total deadline passed). Success ends the stream with OK, a
   * failure with its FJ_ status; a reader that never drains is cut off shortly after. `totalMs`
   * null: no total deadline (Watch, which lasts the study).
   */
  function serverStream<Req, Res>(
    name: string,
    fn: (call: grpc.ServerWritableStream<Req, Res>, signal: AbortSignal) => Promise<void>,
    totalMs: number | null = limits.totalMs,
  ) {
    return (call: grpc.ServerWritableStream<Req, Res>) => {
      const abort = new AbortController();
      const onCancel = () =>
        abort.abort(fjError("FJ_PROTOCOL_INCOMPLETE", `${name}: cancelled by the caller`));
      call.on("cancelled", onCancel);
      const deadline =
        totalMs === null
          ? undefined
          : setTimeout(
              () =>
                abort.abort(
                  fjError("FJ_PROTOCOL_DEADLINE", `${name}: not read within ${Math.round(totalMs / 1000)} s`),
                ),
              totalMs,
            );
      const done = () => {
        if (deadline) clearTimeout(deadline);
        call.off("cancelled", onCancel);
      };
      fn(call, abort.signal).then(
        () => {
          done();
          call.end();
        },
        (err: unknown) => {
          done();
          if (call.cancelled) return;
          refused(name, err);
          call.emit("error", serviceError(err));
          // the status waits for the queued messages; a reader that reads nothing never gets them
          setTimeout(() => {
            if (!call.writableFinished) call.destroy();
          }, 5_000).unref();
        },
      );
    };
  }

  /**
   * A client-streaming upload (PushUpdate, PushEmbeddings): identity, one in flight per site and
   * kind, the header decided by `admit` (undefined = read the payload, whose size the admitted
   * specs fix), an upload slot, then the payload under the stream limits, handed to `commit`.
   */
  function upload<H extends { site: string; tensors?: TensorSetHeaderMsg | null }>(
    kind: UploadKind,
    admit: (site: string, header: H) => Promise<AckResult | undefined>,
    commit: (
      site: string,
      header: H,
      tensors: ReturnType<TensorSetReceiver["finish"]>,
      bytes: number,
    ) => Promise<AckResult>,
  ) {
    return (
      call: grpc.ServerReadableStream<{ header?: H | null; chunk?: ChunkMsg | null }, AckMsg>,
      cb: grpc.sendUnaryData<AckMsg>,
    ) => {
      const startedAt = Date.now();
      let answered = false;
      let slot: string | undefined;
      let release: (() => void) | undefined;
      let site: string | undefined;
      const answer = (err: unknown, result?: AckMsg) => {
        if (answered) return;
        answered = true;
        if (release) release();
        if (slot !== undefined) inFlight.delete(slot);
        if (err === null && result) cb(null, result);
        else {
          if (!call.cancelled) refused(kind, err, site === undefined ? {} : { site });
          cb(serviceError(err));
        }
      };
      const take = (who: string) => {
        const key = `${who}/${kind}`;
        if (inFlight.has(key)) {
          throw fjError("FJ_COORD_BUSY", `${kind}: site ${who} already has one in flight`);
        }
        inFlight.add(key);
        slot = key;
      };
      const run = async (): Promise<AckMsg> => {
        if (!insecure) {
          // identity before resources: a CN that is no site holds nothing, not even a header read
          const cn = certificateCn(call, kind);
          if (!study.isSite(cn)) {
            log.warn({ rpc: kind, certificate: cn }, "caller is not a site of the study");
            throw fjError(
              "FJ_AUTH_UNKNOWN_SITE",
              `CN=${cn} is not a site of study ${study.config.study} (${kind})`,
            );
          }
          site = cn;
          take(cn);
        }
        // one message at a time, when asked for: nothing is prefetched until the stream holds a slot
        const reads = readOnDemand(call);
        const messages = guardedMessages(call, limits, kind, startedAt, reads.allow);
        const first = await messages.next();
        if (first.done || !first.value.header) {
          throw fjError("FJ_PROTOCOL_HEADER", `${kind}: the first message must be the header`);
        }
        const header = first.value.header;
        const who = identify(call, header.site, kind);
        if (insecure) {
          site = who;
          take(who);
        }
        tapHeader("received", kind, header);
        const decided = await admit(who, header);
        if (decided) return ack(decided);
        release = await slots.acquire(Math.max(0, startedAt + limits.totalMs - Date.now()), () =>
          fjError("FJ_PROTOCOL_DEADLINE", `${kind}: no upload slot within the stream deadline`),
        );
        // with a slot, the buffer: the admitted specs fix its size, the receiver takes no more
        const rx = new TensorSetReceiver(header.tensors, kind);
        reads.free();
        for (;;) {
          const next = await messages.next();
          if (next.done) break;
          if (next.value.header)
            throw fjError("FJ_PROTOCOL_HEADER", `${kind}: a second header in one stream`);
          rx.add(next.value.chunk);
        }
        const tensors = rx.finish();
        return ack(await commit(who, header, tensors, rx.bytes));
      };
      run().then(
        (result) => answer(null, result),
        (err: unknown) => answer(err),
      );
    };
  }

  return {
    Join: unary<JoinRequestMsg, JoinReplyMsg>("Join", async (call) => {
      const req = call.request;
      const site = identify(call, req.site, "Join");
      const config = await study.join(site, {
        joint: req.joint,
        labels: req.labels,
        exams: req.exams,
        backend: req.backend,
      });
      return { study: config.study, configJson: JSON.stringify(config) };
    }),

    NextTask: unary<TaskRequestMsg, TaskMsg>("NextTask", async (call) => {
      const site = identify(call, call.request.site, "NextTask");
      const abort = new AbortController();
      call.on("cancelled", () => abort.abort());
      return taskMsg(await study.nextTask(site, abort.signal));
    }),

    PullModel: serverStream<ModelRequestMsg, TensorStreamMsg>("PullModel", async (call, signal) => {
      const site = identify(call, call.request.site, "PullModel");
      const ref = parseRef(call.request.ref, phases);
      await download(site, "PullModel", 2, async () => {
        const enc = await study.model(site, ref);
        tapHeader("sent", "PullModel", enc.header);
        await writeTensorStream(call, { header: enc.header }, enc.payload, undefined, signal);
      });
    }),

    PushUpdate: upload<UpdateHeaderMsg>(
      "PushUpdate",
      (site, h) =>
        study.admitUpdate({
          site,
          ref: parseRef(h.ref, phases),
          samples: Number(h.samples),
          loss: h.loss ?? {},
          metrics: h.metrics ?? {},
          sha256: h.tensors?.sha256 ?? "",
          specs: h.tensors?.tensors ?? [],
        }),
      (site, h, tensors, bytes) =>
        study.pushUpdate({
          site,
          ref: parseRef(h.ref, phases),
          samples: Number(h.samples),
          loss: h.loss ?? {},
          metrics: h.metrics ?? {},
          sha256: h.tensors?.sha256 ?? "",
          dtypes: (h.tensors?.tensors ?? []).map((t) => t.dtype),
          bytes,
          tensors,
        }),
    ),

    PushEmbeddings: upload<EmbeddingHeaderMsg>(
      "PushEmbeddings",
      (site, h) => study.admitEmbeddings(site, parseRef(h.ref, phases), h.tensors?.tensors ?? []),
      (site, h, tensors, bytes) => study.pushEmbeddings(site, parseRef(h.ref, phases), tensors, bytes),
    ),

    PullEmbeddings: serverStream<EmbeddingRequestMsg, TensorStreamMsg>(
      "PullEmbeddings",
      async (call, signal) => {
        const site = identify(call, call.request.site, "PullEmbeddings");
        const ref = parseRef(call.request.ref, phases);
        await download(site, "PullEmbeddings", 1, async () => {
          const enc = encodeTensorSet(study.bankFor(site, ref), study.wireDtype);
          tapHeader("sent", "PullEmbeddings", enc.header);
          await writeTensorStream(call, { header: enc.header }, enc.payload, undefined, signal);
          study.noteBankSent(site, ref, enc.payload.length);
        });
      },
    ),

    ReportEvaluation: unary<EvaluationMsg, AckMsg>("ReportEvaluation", async (call) => {
      const req = call.request;
      const site = identify(call, req.site, "ReportEvaluation");
      if (!(Number.isFinite(req.meanDice) && req.meanDice >= 0 && req.meanDice <= 1)) {
        throw fjError("FJ_PROTOCOL_EVALUATION", `mean_dice is ${req.meanDice}, expected a number in [0, 1]`);
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(req.metricsJson);
      } catch {
        throw fjError("FJ_PROTOCOL_EVALUATION", "metrics_json is not JSON");
      }
      const report = evaluationReportSchema.safeParse(parsed);
      if (!report.success) {
        const iss = report.error.issues[0];
        throw fjError("FJ_PROTOCOL_EVALUATION", `metrics_json.${iss.path.join(".")}: ${iss.message}`);
      }
      return ack(await study.reportEvaluation(site, req.fold, req.meanDice, report.data));
    }),

    Watch: serverStream<WatchRequestMsg, StudyEventMsg>(
      "Watch",
      async (call) => {
        if (!insecure) {
          const cn = certificateCn(call, "Watch");
          if (!operators.has(cn)) {
            log.warn({ rpc: "Watch", certificate: cn }, "watch refused: not an operator");
            throw fjError(
              "FJ_AUTH_OPERATOR",
              `CN=${cn} may not watch study ${study.config.study}: operators are ${[...operators].join(", ")}`,
            );
          }
        }
        await new Promise<void>((resolve, reject) => {
          let unsubscribe: (() => void) | undefined;
          let finished = false;
          const finish = (err?: Error) => {
            if (finished) return;
            finished = true;
            unsubscribe?.();
            if (err) reject(err);
            else resolve();
          };
          call.on("cancelled", () => finish());
          void bus
            .subscribe(
              study.config.study,
              (ev) => {
                if (finished) return;
                if (call.writableLength >= WATCH_BACKLOG) {
                  finish(fjError("FJ_PROTOCOL_BACKLOG", `Watch: ${WATCH_BACKLOG} events unread`));
                  return;
                }
                call.write({ seq: ev.seq, kind: ev.kind, json: JSON.stringify(ev) });
                if (ev.kind === "study.done") finish();
              },
              { replay: call.request.replay },
            )
            .then((u) => {
              unsubscribe = u;
              if (finished) u();
            });
        });
      },
      null,
    ),
  };
}
