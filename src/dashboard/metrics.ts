/**
 * Prometheus metrics of a study, derived from the study events (one source of truth: whatever
 * the dashboard shows, /metrics counts). Text exposition by prom-client, on a private registry.
 * `observe` is idempotent per (study, seq): feeding the same event twice (a replay plus a live
 * subscription, two subscriptions) never counts twice.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { EventBus, StudyEvent } from "../events/events.js";
import { presentedToken, tokenMatches } from "./auth.js";

const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

export interface StudyMetrics {
  readonly registry: Registry;
  /** Content-Type of `render()`'s output. */
  readonly contentType: string;
  /** Applies one event (ignored if its seq was already seen for its study). */
  observe(event: StudyEvent): void;
  /** Subscribes to a study on a bus and observes its events (replay by default). */
  attach(bus: EventBus, study: string, options?: { replay?: boolean }): Promise<() => void>;
  /** Prometheus text exposition format. */
  render(): Promise<string>;
}

export interface MetricsOptions {
  /** Metric name prefix (default "fedjoint_"). */
  prefix?: string;
  /** Also export Node process metrics (CPU, memory, event loop) (default false). */
  processMetrics?: boolean;
}

export function createMetrics(options: MetricsOptions = {}): StudyMetrics {
  const p = options.prefix ?? "fedjoint_";
  const registry = new Registry();
  if (options.processMetrics === true) collectDefaultMetrics({ register: registry, prefix: p });
  const reg = [registry];
  const events = new Counter({
    name: `${p}events_total`,
    help: "Study events seen, by kind",
    labelNames: ["study", "kind"],
    registers: reg,
  });
  const roundsOpened = new Counter({
    name: `${p}rounds_opened_total`,
    help: "Rounds opened",
    labelNames: ["study", "phase"],
    registers: reg,
  });
  const roundsClosed = new Counter({
    name: `${p}rounds_closed_total`,
    help: "Rounds closed",
    labelNames: ["study", "phase"],
    registers: reg,
  });
  const roundsAggregated = new Counter({
    name: `${p}rounds_aggregated_total`,
    help: "Rounds aggregated into a new model",
    labelNames: ["study", "phase"],
    registers: reg,
  });
  const accepted = new Counter({
    name: `${p}updates_accepted_total`,
    help: "Site updates accepted",
    labelNames: ["study", "site"],
    registers: reg,
  });
  const rejected = new Counter({
    name: `${p}updates_rejected_total`,
    help: "Site updates rejected, by error code",
    labelNames: ["study", "site", "code"],
    registers: reg,
  });
  const updateBytes = new Counter({
    name: `${p}update_bytes_total`,
    help: "Bytes of accepted site updates",
    labelNames: ["study", "site"],
    registers: reg,
  });
  const bytesIn = new Counter({
    name: `${p}bytes_in_total`,
    help: "Bytes received by aggregated rounds",
    labelNames: ["study"],
    registers: reg,
  });
  const bytesOut = new Counter({
    name: `${p}bytes_out_total`,
    help: "Bytes sent by aggregated rounds",
    labelNames: ["study"],
    registers: reg,
  });
  const roundDuration = new Histogram({
    name: `${p}round_duration_seconds`,
    help: "Wall time from round opened to round closed",
    labelNames: ["study", "phase"],
    buckets: DURATION_BUCKETS,
    registers: reg,
  });
  const aggregationDuration = new Histogram({
    name: `${p}aggregation_duration_seconds`,
    help: "Time spent aggregating a round",
    labelNames: ["study", "phase"],
    buckets: DURATION_BUCKETS,
    registers: reg,
  });
  const sitesConnected = new Gauge({
    name: `${p}sites_connected`,
    help: "Sites joined and not left",
    labelNames: ["study"],
    registers: reg,
  });
  const currentFold = new Gauge({
    name: `${p}current_fold`,
    help: "Fold of the last opened round",
    labelNames: ["study"],
    registers: reg,
  });
  const currentRound = new Gauge({
    name: `${p}current_round`,
    help: "Index of the last opened round",
    labelNames: ["study"],
    registers: reg,
  });
  const missingSites = new Gauge({
    name: `${p}last_round_missing_sites`,
    help: "Sites missing from the last closed round",
    labelNames: ["study"],
    registers: reg,
  });
  const embeddingVectors = new Counter({
    name: `${p}embedding_vectors_total`,
    help: "Anonymised embedding vectors received",
    labelNames: ["study", "site"],
    registers: reg,
  });
  const evaluations = new Counter({
    name: `${p}evaluations_total`,
    help: "Evaluation reports received (one per site and fold)",
    labelNames: ["study", "site"],
    registers: reg,
  });
  const done = new Gauge({
    name: `${p}study_done`,
    help: "1 when the study has finished",
    labelNames: ["study"],
    registers: reg,
  });
  const studyDuration = new Gauge({
    name: `${p}study_duration_seconds`,
    help: "Duration of a finished study",
    labelNames: ["study"],
    registers: reg,
  });
  const lastEvent = new Gauge({
    name: `${p}last_event_timestamp_seconds`,
    help: "Time of the last study event (Unix seconds)",
    labelNames: ["study"],
    registers: reg,
  });

  const lastSeq = new Map<string, number>();
  const connected = new Map<string, Set<string>>();
  const sitesOf = (study: string): Set<string> => {
    let s = connected.get(study);
    if (s === undefined) {
      s = new Set();
      connected.set(study, s);
    }
    return s;
  };

  const observe = (e: StudyEvent): void => {
    const seen = lastSeq.get(e.study);
    if (seen !== undefined && e.seq <= seen) return;
    lastSeq.set(e.study, e.seq);
    const study = e.study;
    events.inc({ study, kind: e.kind });
    const t = Date.parse(e.time);
    if (Number.isFinite(t)) lastEvent.set({ study }, t / 1000);
    switch (e.kind) {
      case "study.started":
        done.set({ study }, 0);
        sitesConnected.set({ study }, sitesOf(study).size);
        break;
      case "site.joined":
        sitesOf(study).add(e.site);
        sitesConnected.set({ study }, sitesOf(study).size);
        break;
      case "site.left":
        sitesOf(study).delete(e.site);
        sitesConnected.set({ study }, sitesOf(study).size);
        break;
      case "round.opened":
        roundsOpened.inc({ study, phase: e.phase });
        currentFold.set({ study }, e.fold);
        currentRound.set({ study }, e.round);
        break;
      case "update.accepted":
        accepted.inc({ study, site: e.site });
        updateBytes.inc({ study, site: e.site }, nonNegative(e.bytes));
        break;
      case "update.rejected":
        rejected.inc({ study, site: e.site, code: e.code });
        break;
      case "round.closed":
        roundsClosed.inc({ study, phase: e.phase });
        roundDuration.observe({ study, phase: e.phase }, nonNegative(e.durationMs) / 1000);
        missingSites.set({ study }, e.missing.length);
        break;
      case "round.aggregated":
        roundsAggregated.inc({ study, phase: e.phase });
        bytesIn.inc({ study }, nonNegative(e.bytesIn));
        bytesOut.inc({ study }, nonNegative(e.bytesOut));
        aggregationDuration.observe({ study, phase: e.phase }, nonNegative(e.durationMs) / 1000);
        break;
      case "embeddings.received":
        embeddingVectors.inc({ study, site: e.site }, nonNegative(e.vectors));
        break;
      case "evaluation.reported":
        evaluations.inc({ study, site: e.site });
        break;
      case "study.done":
        done.set({ study }, 1);
        studyDuration.set({ study }, nonNegative(e.durationMs) / 1000);
        break;
    }
  };

  return {
    registry,
    contentType: registry.contentType,
    observe,
    attach: (bus, study, opts = {}) => bus.subscribe(study, observe, { replay: opts.replay ?? true }),
    render: () => registry.metrics(),
  };
}

function nonNegative(x: number): number {
  return Number.isFinite(x) && x > 0 ? x : 0;
}

/** Writes the exposition to a response (used by the dashboard and by `serveMetrics`). */
export async function writeMetrics(metrics: StudyMetrics, res: ServerResponse): Promise<void> {
  const body = await metrics.render();
  res.writeHead(200, { "Content-Type": metrics.contentType, "Cache-Control": "no-store" });
  res.end(body);
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Serves `/metrics` alone on its own port (for a Prometheus that must not reach the dashboard).
 * With `token`, requests need `Authorization: Bearer <token>` (or `?token=`).
 */
export async function serveMetrics(
  metrics: StudyMetrics,
  options: { host?: string; port: number; token?: string },
): Promise<MetricsServer> {
  const host = options.host ?? "127.0.0.1";
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD" }).end();
      return;
    }
    if (path !== "/metrics") {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found: try /metrics\n");
      return;
    }
    if (options.token !== undefined && !tokenMatches(presentedToken(req, url), options.token)) {
      res
        .writeHead(401, { "WWW-Authenticate": "Bearer", "Content-Type": "text/plain" })
        .end("unauthorized\n");
      return;
    }
    writeMetrics(metrics, res).catch((err: unknown) => {
      res.writeHead(500, { "Content-Type": "text/plain" }).end(`metrics failed: ${(err as Error).message}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : options.port;
  const shownHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
