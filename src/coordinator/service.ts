/**
 * gRPC service of the coordinator: authenticates the caller (client-certificate CN under mTLS),
 * enforces that a site only acts as itself, moves tensor streams through src/protocol, and hands
 * decisions to the Study. Rejected updates are answered with an Ack carrying code and reason;
 * authentication and authorisation failures are gRPC errors (UNAUTHENTICATED / PERMISSION_DENIED).
 */
import * as grpc from "@grpc/grpc-js";
import { FedjointError, fjError } from "../errors.js";
import type { EventBus } from "../events/events.js";
import type { Logger } from "../log.js";
import type {
  AckMsg,
  EmbeddingHeaderMsg,
  EmbeddingRequestMsg,
  EmbeddingStreamMsg,
  EvaluationMsg,
  JoinReplyMsg,
  JoinRequestMsg,
  ModelRequestMsg,
  RoundRefMsg,
  StudyEventMsg,
  TaskMsg,
  TaskRequestMsg,
  TensorStreamMsg,
  UpdateHeaderMsg,
  UpdateStreamMsg,
  WatchRequestMsg,
} from "../protocol/proto.js";
import { readTensorStream, writeTensorStream } from "../protocol/stream.js";
import { encodeTensorSet, tapHeader } from "../protocol/tensors.js";
import { type PeerAuth, peerIdentity } from "../protocol/tls.js";
import type { Phase } from "../study/methods.js";
import { type AckResult, evaluationReportSchema, type Ref, type Study, type Task } from "./study.js";

export class RpcError extends Error {
  readonly grpcCode: grpc.status;
  constructor(grpcCode: grpc.status, message: string) {
    super(message);
    this.grpcCode = grpcCode;
  }
}

function toServiceError(err: unknown, log: Logger): Partial<grpc.ServiceError> {
  if (err instanceof RpcError) return { code: err.grpcCode, details: err.message, message: err.message };
  if (err instanceof FedjointError) {
    const code =
      err.code === "FJ_COORD_NOT_JOINED"
        ? grpc.status.FAILED_PRECONDITION
        : err.code === "FJ_COORD_NO_MODEL"
          ? grpc.status.NOT_FOUND
          : err.code === "FJ_COORD_UNKNOWN_SITE"
            ? grpc.status.PERMISSION_DENIED
            : grpc.status.INVALID_ARGUMENT;
    return { code, details: err.toLine(), message: err.toLine() };
  }
  log.error({ err }, "internal error in a gRPC handler");
  const msg = err instanceof Error ? err.message : String(err);
  return { code: grpc.status.INTERNAL, details: msg, message: msg };
}

function ack(r: AckResult): AckMsg {
  return r.status === "accepted"
    ? { status: "accepted", code: "", reason: "" }
    : { status: r.status, code: r.code, reason: r.reason };
}

function parseRef(ref: RoundRefMsg | null | undefined, phases: readonly Phase[]): Ref {
  if (!ref) throw fjError("FJ_PROTOCOL_REF", "missing round reference (fold, phase, round)");
  if (!phases.includes(ref.phase as Phase)) {
    throw fjError("FJ_PROTOCOL_REF", `phase '${ref.phase}', this study has ${phases.join(", ")}`);
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
    evaluate: null,
  };
  if (t.kind === "evaluate") {
    const evaluate = { personalise: { ...t.instructions.personalise } };
    return { ...base, ref: { ...t.ref, round: t.instructions.round }, hasModel: t.hasModel, evaluate };
  }
  if (t.kind === "train") {
    return {
      ...base,
      ref: t.ref,
      hasModel: t.hasModel,
      hasBank: t.hasBank,
      aeRounds: t.aeRounds,
      train: { ...t.instructions, personalise: { ...t.instructions.personalise } },
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
   * Updates received (buffered, decoded, validated) at the same time; the others wait unread,
   * held back by HTTP/2 flow control. Bounds the coordinator's memory to
   * O(|Θ| · maxConcurrentUploads) however many sites push at once (default 4).
   */
  maxConcurrentUploads?: number;
}

/** A counting semaphore. */
class Semaphore {
  private free: number;
  private readonly queue: (() => void)[] = [];
  constructor(n: number) {
    this.free = n;
  }
  async use<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.queue.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.free++;
    }
  }
}

export function federationHandlers(options: ServiceOptions): grpc.UntypedServiceImplementation {
  const { study, bus, insecure, log } = options;
  const phases = study.phases;
  const uploads = new Semaphore(options.maxConcurrentUploads ?? 4);

  /** The caller's identity; with mTLS the certificate CN, which must equal any claimed site. */
  function identify(call: PeerAuth, claimed: string, rpc: string): string {
    if (insecure) {
      if (!claimed) throw new RpcError(grpc.status.INVALID_ARGUMENT, `${rpc}: site is required`);
      return claimed;
    }
    const cn = peerIdentity(call);
    if (!cn) throw new RpcError(grpc.status.UNAUTHENTICATED, `${rpc}: no verified client certificate`);
    if (claimed !== cn) {
      log.warn({ rpc, certificate: cn, claimed }, "impersonation refused");
      throw new RpcError(
        grpc.status.PERMISSION_DENIED,
        `FJ_AUTH_IMPERSONATION: certificate CN=${cn} cannot act as site '${claimed}' (${rpc})`,
      );
    }
    if (!study.isSite(cn)) {
      throw new RpcError(
        grpc.status.PERMISSION_DENIED,
        `FJ_AUTH_UNKNOWN_SITE: CN=${cn} is not a site of study ${study.config.study}`,
      );
    }
    return cn;
  }

  function unary<Req, Res>(name: string, fn: (call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>) {
    return (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => {
      fn(call).then(
        (res) => cb(null, res),
        (err: unknown) => {
          if (!(err instanceof RpcError)) log.debug({ err, rpc: name }, "rpc failed");
          cb(toServiceError(err, log));
        },
      );
    };
  }

  function clientStream<Req, Res>(
    name: string,
    fn: (call: grpc.ServerReadableStream<Req, Res>) => Promise<Res>,
  ) {
    return (call: grpc.ServerReadableStream<Req, Res>, cb: grpc.sendUnaryData<Res>) => {
      fn(call).then(
        (res) => cb(null, res),
        (err: unknown) => {
          log.debug({ err, rpc: name }, "rpc failed");
          cb(toServiceError(err, log));
        },
      );
    };
  }

  function serverStream<Req, Res>(
    name: string,
    fn: (call: grpc.ServerWritableStream<Req, Res>) => Promise<void>,
  ) {
    return (call: grpc.ServerWritableStream<Req, Res>) => {
      fn(call).then(
        () => call.end(),
        (err: unknown) => {
          log.debug({ err, rpc: name }, "rpc failed");
          call.destroy(
            Object.assign(new Error(String(toServiceError(err, log).details)), toServiceError(err, log)),
          );
        },
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

    PullModel: serverStream<ModelRequestMsg, TensorStreamMsg>("PullModel", async (call) => {
      const site = identify(call, call.request.site, "PullModel");
      const ref = parseRef(call.request.ref, phases);
      const enc = await study.model(site, ref);
      tapHeader("sent", "PullModel", enc.header);
      await writeTensorStream(call, { header: enc.header }, enc.payload);
    }),

    PushUpdate: clientStream<UpdateStreamMsg, AckMsg>("PushUpdate", (call) =>
      // receive, decode, validate and fold in under the upload limit: memory O(|Θ| · limit)
      uploads.use(async () => {
        let site = "";
        const got = await readTensorStream<UpdateHeaderMsg>(
          call,
          "PushUpdate",
          (h) => h.tensors,
          (h) => {
            site = identify(call, h.site, "PushUpdate");
            tapHeader("received", "PushUpdate", h);
          },
        );
        const h = got.header;
        const ref = parseRef(h.ref, phases);
        const result = await study.pushUpdate({
          site,
          ref,
          samples: Number(h.samples),
          loss: h.loss ?? {},
          metrics: h.metrics ?? {},
          sha256: h.tensors?.sha256 ?? "",
          dtypes: (h.tensors?.tensors ?? []).map((t) => t.dtype),
          bytes: got.bytes,
          tensors: got.tensors,
        });
        return ack(result);
      }),
    ),

    PushEmbeddings: clientStream<EmbeddingStreamMsg, AckMsg>("PushEmbeddings", async (call) => {
      let site = "";
      const got = await readTensorStream<EmbeddingHeaderMsg>(
        call,
        "PushEmbeddings",
        (h) => h.tensors,
        (h) => {
          site = identify(call, h.site, "PushEmbeddings");
          tapHeader("received", "PushEmbeddings", h);
        },
      );
      const ref = parseRef(got.header.ref, phases);
      return ack(await study.pushEmbeddings(site, ref, got.tensors, got.bytes));
    }),

    PullEmbeddings: serverStream<EmbeddingRequestMsg, TensorStreamMsg>("PullEmbeddings", async (call) => {
      const site = identify(call, call.request.site, "PullEmbeddings");
      const ref = parseRef(call.request.ref, phases);
      const enc = encodeTensorSet(study.bankFor(site, ref), study.wireDtype);
      tapHeader("sent", "PullEmbeddings", enc.header);
      await writeTensorStream(call, { header: enc.header }, enc.payload);
      study.noteBankSent(site, ref, enc.payload.length);
    }),

    ReportEvaluation: unary<EvaluationMsg, AckMsg>("ReportEvaluation", async (call) => {
      const req = call.request;
      const site = identify(call, req.site, "ReportEvaluation");
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

    Watch: serverStream<WatchRequestMsg, StudyEventMsg>("Watch", async (call) => {
      if (!insecure && !peerIdentity(call)) {
        throw new RpcError(grpc.status.UNAUTHENTICATED, "Watch: no verified client certificate");
      }
      await new Promise<void>((resolve) => {
        let unsubscribe: (() => void) | undefined;
        let finished = false;
        const finish = () => {
          if (finished) return;
          finished = true;
          unsubscribe?.();
          resolve();
        };
        call.on("cancelled", finish);
        void bus
          .subscribe(
            study.config.study,
            (ev) => {
              if (finished) return;
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
    }),
  };
}
