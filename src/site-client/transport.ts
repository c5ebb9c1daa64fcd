/**
 * The site's gRPC transport: promisified Federation calls with deadlines, reconnection with
 * exponential backoff, tensor streams through src/protocol, and the wire tap. The site-client's
 * loop never sees a byte or a gRPC type.
 *
 * Retry policy: a status carrying an FJ_ code is the coordinator's answer — retried only when the
 * code is transient (busy, idle, shutting down: src/protocol/status.ts), else it ends the site
 * with that code at once (authentication as FJ_SITE_DENIED, validation as the coordinator's
 * code). A status without a code comes from the transport: retried, unless the TLS layer shows
 * that the handshake itself fails (wrong CA on either side: FJ_SITE_TLS, at once).
 */
import * as grpc from "@grpc/grpc-js";
import { fjError, ProtocolError } from "../errors.js";
import { type Logger, silentLogger } from "../log.js";
import type { NamedTensor } from "../model/api.js";
import {
  type AckMsg,
  CHANNEL_OPTIONS,
  type EmbeddingHeaderMsg,
  federationService,
  type JoinReplyMsg,
  type JoinRequestMsg,
  type RoundRefMsg,
  type TaskMsg,
  type TensorSetHeaderMsg,
  type TensorStreamMsg,
  type UpdateHeaderMsg,
} from "../protocol/proto.js";
import { detailOf, fjCodeOf, isTransientCode } from "../protocol/status.js";
import { readTensorStream, writeTensorStream } from "../protocol/stream.js";
import { encodeTensorSet, tapHeader, type WireDtype } from "../protocol/tensors.js";
import { clientCredentials, hostOf, isLoopback, probeTls, type TlsFiles } from "../protocol/tls.js";

type Callback<T> = (err: grpc.ServiceError | null, value?: T) => void;
interface RawClient extends grpc.Client {
  Join(
    req: JoinRequestMsg,
    meta: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: Callback<JoinReplyMsg>,
  ): grpc.ClientUnaryCall;
  NextTask(
    req: { site: string },
    meta: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: Callback<TaskMsg>,
  ): grpc.ClientUnaryCall;
  PullModel(
    req: { site: string; ref: RoundRefMsg },
    meta: grpc.Metadata,
    opts: grpc.CallOptions,
  ): grpc.ClientReadableStream<TensorStreamMsg>;
  PullEmbeddings(
    req: { site: string; ref: RoundRefMsg },
    meta: grpc.Metadata,
    opts: grpc.CallOptions,
  ): grpc.ClientReadableStream<TensorStreamMsg>;
  PushUpdate(
    meta: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: Callback<AckMsg>,
  ): grpc.ClientWritableStream<unknown>;
  PushEmbeddings(
    meta: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: Callback<AckMsg>,
  ): grpc.ClientWritableStream<unknown>;
  ReportEvaluation(
    req: { site: string; fold: number; metricsJson: string; meanDice: number },
    meta: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: Callback<AckMsg>,
  ): grpc.ClientUnaryCall;
}

/** Transport statuses without an FJ_ code worth a reconnect-and-retry. */
const TRANSIENT = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.CANCELLED,
  grpc.status.UNKNOWN,
  grpc.status.INTERNAL,
  grpc.status.RESOURCE_EXHAUSTED,
]);

/** Certificate verification failures in a transport status (this side refused the coordinator). */
const TLS_FAILURE =
  /self[- ]signed certificate|unable to verify|unable to get (local )?issuer certificate|certificate has expired|certificate is not yet valid|altnames|Hostname\/IP does not match/i;

/** How the transport treats a failed call: retry it, or end with this error. */
type Verdict = { retry: true } | { retry: false; error: Error };

export interface TransportOptions {
  address: string;
  site: string;
  tls: TlsFiles;
  insecure: boolean;
  log?: Logger;
  /** Give up after this long without a successful call (ms, default 10 min). */
  retryForMs?: number;
  /** Wire dtype of pushed tensors. */
  dtype?: WireDtype;
}

export interface Traffic {
  sent: number;
  received: number;
}

export class Transport {
  readonly site: string;
  readonly traffic: Traffic = { sent: 0, received: 0 };
  dtype: WireDtype;
  private client?: RawClient;
  private readonly options: TransportOptions;
  private readonly log: Logger;

  constructor(options: TransportOptions) {
    if (options.insecure && !isLoopback(hostOf(options.address))) {
      throw fjError(
        "FJ_TLS_INSECURE_REMOTE",
        `--insecure with --coordinator ${options.address}: plaintext without authentication is for a coordinator on 127.0.0.1, ::1 or localhost only`,
      );
    }
    this.options = options;
    this.site = options.site;
    this.log = options.log ?? silentLogger;
    this.dtype = options.dtype ?? "float32";
  }

  private async raw(): Promise<RawClient> {
    if (this.client) return this.client;
    const creds = await clientCredentials(this.options.tls, this.options.insecure);
    const Ctor = federationService();
    this.client = new Ctor(this.options.address, creds, CHANNEL_OPTIONS) as unknown as RawClient;
    return this.client;
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }

  /** Retries `fn` on transient failures (see the module comment) with backoff (0.25 s → 8 s). */
  private async retry<T>(what: string, fn: (c: RawClient) => Promise<T>): Promise<T> {
    const limit = this.options.retryForMs ?? 600_000;
    const start = Date.now();
    let delay = 250;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(await this.raw());
      } catch (err) {
        if (typeof (err as grpc.ServiceError).code !== "number") throw err;
        const verdict = await this.classify(err as grpc.ServiceError, what);
        if (!verdict.retry) throw verdict.error;
        if (Date.now() - start > limit) {
          throw fjError(
            "FJ_SITE_UNREACHABLE",
            `coordinator ${this.options.address} unreachable for ${Math.round(limit / 1000)} s (${what}: ${(err as Error).message})`,
          );
        }
        this.log.warn(
          { rpc: what, attempt, retryInMs: delay, err: (err as Error).message },
          "coordinator call failed, retrying",
        );
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 8000);
      }
    }
  }

  private async classify(err: grpc.ServiceError, what: string): Promise<Verdict> {
    const code = fjCodeOf(err);
    if (code !== undefined) {
      if (isTransientCode(code)) return { retry: true };
      if (code.startsWith("FJ_AUTH_") || err.code === grpc.status.PERMISSION_DENIED) {
        return {
          retry: false,
          error: fjError("FJ_SITE_DENIED", `${what}: the coordinator refused this site: ${err.details}`),
        };
      }
      return { retry: false, error: new ProtocolError(code, `${what}: ${detailOf(err)}`) };
    }
    if (err.code === grpc.status.PERMISSION_DENIED || err.code === grpc.status.UNAUTHENTICATED) {
      return {
        retry: false,
        error: fjError("FJ_SITE_DENIED", `${what}: the coordinator refused this site: ${err.details}`),
      };
    }
    if (!TRANSIENT.has(err.code)) {
      return { retry: false, error: fjError("FJ_SITE_RPC", `${what}: ${err.details || err.message}`) };
    }
    if (err.code === grpc.status.UNAVAILABLE && !this.options.insecure) {
      const tls = TLS_FAILURE.test(err.details ?? "")
        ? { verdict: "untrusted", detail: err.details }
        : await probeTls(this.options.address, this.options.tls);
      if (tls.verdict === "refused" || tls.verdict === "untrusted") {
        return {
          retry: false,
          error: fjError("FJ_SITE_TLS", `${what}: coordinator ${this.options.address}: ${tls.detail}`),
        };
      }
    }
    return { retry: true };
  }

  private deadline(ms: number): grpc.CallOptions {
    return { deadline: new Date(Date.now() + ms) };
  }

  async join(req: Omit<JoinRequestMsg, "site">): Promise<JoinReplyMsg> {
    return this.retry(
      "Join",
      (c) =>
        new Promise((resolve, reject) =>
          c.Join({ ...req, site: this.site }, new grpc.Metadata(), this.deadline(30_000), (err, v) =>
            err ? reject(err) : resolve(v!),
          ),
        ),
    );
  }

  async nextTask(): Promise<TaskMsg> {
    return this.retry(
      "NextTask",
      (c) =>
        new Promise((resolve, reject) =>
          c.NextTask({ site: this.site }, new grpc.Metadata(), this.deadline(90_000), (err, v) =>
            err ? reject(err) : resolve(v!),
          ),
        ),
    );
  }

  private async pull(rpc: "PullModel" | "PullEmbeddings", ref: RoundRefMsg): Promise<NamedTensor[]> {
    return this.retry(rpc, async (c) => {
      const stream = c[rpc]({ site: this.site, ref }, new grpc.Metadata(), this.deadline(300_000));
      const got = await readTensorStream<TensorSetHeaderMsg>(
        stream,
        rpc,
        (h) => h,
        (h) => tapHeader("received", rpc, h),
      );
      this.traffic.received += got.bytes;
      return got.tensors;
    });
  }

  pullModel(ref: RoundRefMsg): Promise<NamedTensor[]> {
    return this.pull("PullModel", ref);
  }

  pullEmbeddings(ref: RoundRefMsg): Promise<NamedTensor[]> {
    return this.pull("PullEmbeddings", ref);
  }

  private async push(
    rpc: "PushUpdate" | "PushEmbeddings",
    header: (tensors: TensorSetHeaderMsg) => UpdateHeaderMsg | EmbeddingHeaderMsg,
    tensors: readonly NamedTensor[],
  ): Promise<AckMsg> {
    const enc = encodeTensorSet(tensors, this.dtype);
    const first = header(enc.header);
    return this.retry(rpc, async (c) => {
      let ackResolve!: (a: AckMsg) => void;
      let ackReject!: (e: unknown) => void;
      const acked = new Promise<AckMsg>((res, rej) => {
        ackResolve = res;
        ackReject = rej;
      });
      const stream = c[rpc](new grpc.Metadata(), this.deadline(300_000), (err, v) =>
        err ? ackReject(err) : ackResolve(v!),
      );
      tapHeader("sent", rpc, first);
      try {
        await writeTensorStream(stream, { header: first }, enc.payload);
        stream.end();
      } catch (err) {
        // the call's own status (via the callback) explains the failure better than the write error
        stream.end();
        void err;
      }
      const ack = await acked;
      if (ack.status !== "rejected") this.traffic.sent += enc.payload.length;
      return ack;
    });
  }

  pushUpdate(
    ref: RoundRefMsg,
    samples: number,
    loss: Record<string, number>,
    metrics: Record<string, number>,
    tensors: readonly NamedTensor[],
  ): Promise<AckMsg> {
    return this.push(
      "PushUpdate",
      (t) => ({ site: this.site, ref, samples, loss, metrics, tensors: t }),
      tensors,
    );
  }

  pushEmbeddings(
    ref: RoundRefMsg,
    tensors: readonly NamedTensor[],
    mix: number,
    noise: number,
  ): Promise<AckMsg> {
    return this.push("PushEmbeddings", (t) => ({ site: this.site, ref, tensors: t, mix, noise }), tensors);
  }

  async reportEvaluation(fold: number, meanDice: number, metrics: unknown): Promise<AckMsg> {
    return this.retry(
      "ReportEvaluation",
      (c) =>
        new Promise((resolve, reject) =>
          c.ReportEvaluation(
            { site: this.site, fold, meanDice, metricsJson: JSON.stringify(metrics) },
            new grpc.Metadata(),
            this.deadline(30_000),
            (err, v) => (err ? reject(err) : resolve(v!)),
          ),
        ),
    );
  }
}
