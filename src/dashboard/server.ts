/**
 * The coordinator's dashboard: a read-only HTTP(S) server (node:http) that folds one study's
 * events (one bus subscription, replayed from the start) into a view model and pushes it to
 * browsers over SSE. Also serves the Prometheus metrics fed by the same subscription.
 *
 * Routes (GET/HEAD only):
 *   /                     page shell            public
 *   /app.js /app.css      page script and style public
 *   /vendor/chart.umd.min.js  Chart.js (from node_modules) public
 *   /healthz              "ok"                  public
 *   /events               SSE: `state` messages (the whole view model, coalesced) — protected
 *   /api/state            view model JSON       protected
 *   /api/events           retained raw events   protected
 *   /api/embeddings       PCA + cosine JSON     protected
 *   /metrics              Prometheus text       protected
 * "Protected" = open on loopback; otherwise a bearer token (header or ?token=) or a verified
 * client certificate (mTLS, when `tls.ca` is given).
 */
import { readFile } from "node:fs/promises";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fjError } from "../errors.js";
import { assertStudyId } from "../events/bus-memory.js";
import type { StudyEvent } from "../events/events.js";
import { silentLogger } from "../log.js";
import {
  checkDashboardAccess,
  hasVerifiedClientCert,
  isLoopback,
  MIN_TOKEN_LENGTH,
  presentedToken,
  tokenMatches,
} from "./auth.js";
import { embeddingView } from "./embeddings.js";
import { createMetrics, writeMetrics } from "./metrics.js";
import { DashboardStateBuilder } from "./state.js";
import type { DashboardHandle, DashboardOptions, EmbeddingView } from "./types.js";
import { APP_JS } from "./ui/client.js";
import { APP_CSS, INDEX_HTML } from "./ui/page.js";

export { MIN_TOKEN_LENGTH };

/** Retained raw events for /api/events. */
const MAX_EVENTS = 100_000;
/** SSE: at most one state push per this many ms per client. */
const PUSH_INTERVAL_MS = 150;
const HEARTBEAT_MS = 15_000;

const SECURITY_HEADERS = {
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

let chartJs: Promise<string> | undefined;
function chartJsSource(): Promise<string> {
  if (chartJs === undefined) {
    const require = createRequire(import.meta.url);
    const file = join(dirname(require.resolve("chart.js")), "chart.umd.min.js");
    chartJs = readFile(file, "utf8").catch((err: unknown) => {
      chartJs = undefined;
      throw fjError("FJ_DASHBOARD_ASSET", `cannot read Chart.js at ${file}: ${(err as Error).message}`);
    });
  }
  return chartJs;
}

interface SseClient {
  res: ServerResponse;
  timer: NodeJS.Timeout | undefined;
  lastPush: number;
}

export async function startDashboard(options: DashboardOptions): Promise<DashboardHandle> {
  const logger = options.logger ?? silentLogger;
  assertStudyId(options.study);
  const loopback = isLoopback(options.host);
  checkDashboardAccess({
    host: options.host,
    port: options.port,
    token: options.token,
    clientCa: options.tls?.ca !== undefined,
  });
  const scatterScales = options.scatterScales;
  const metrics = options.metrics ?? createMetrics();
  const builder = new DashboardStateBuilder(options.study);
  const events: StudyEvent[] = [];
  const clients = new Set<SseClient>();
  let embeddingCache: { key: string; view: EmbeddingView } | undefined;

  const push = (client: SseClient): void => {
    client.timer = undefined;
    client.lastPush = Date.now();
    const state = builder.snapshot();
    client.res.write(`event: state\nid: ${state.lastSeq}\ndata: ${JSON.stringify(state)}\n\n`);
  };
  const schedule = (client: SseClient): void => {
    if (client.timer !== undefined) return;
    const wait = Math.max(0, client.lastPush + PUSH_INTERVAL_MS - Date.now());
    client.timer = setTimeout(() => push(client), wait);
  };

  const onEvent = (event: StudyEvent): void => {
    metrics.observe(event);
    if (!builder.apply(event)) return;
    events.push(event);
    if (events.length > MAX_EVENTS) events.splice(0, events.length - MAX_EVENTS);
    for (const c of clients) schedule(c);
  };
  const unsubscribe = await options.bus.subscribe(options.study, onEvent, { replay: true });

  const authorised = (req: IncomingMessage, url: URL): boolean => {
    if (loopback) return true;
    if (options.tls?.ca !== undefined && hasVerifiedClientCert(req, options.operators)) return true;
    return options.token !== undefined && tokenMatches(presentedToken(req, url), options.token);
  };

  const send = (
    res: ServerResponse,
    status: number,
    type: string,
    body: string,
    cache = "no-store",
  ): void => {
    res.writeHead(status, { ...SECURITY_HEADERS, "Content-Type": type, "Cache-Control": cache });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, value: unknown): void =>
    send(res, status, "application/json; charset=utf-8", JSON.stringify(value));

  const embeddings = async (): Promise<EmbeddingView> => {
    if (options.embeddings === undefined) {
      return {
        available: false,
        reason: "the coordinator does not expose embeddings",
        scatter: [],
        cosine: [],
      };
    }
    const snapshot = await options.embeddings();
    if (snapshot === null) return { available: false, reason: "no embeddings yet", scatter: [], cosine: [] };
    const key = `${snapshot.fold}/${snapshot.phase}/${snapshot.round}/${snapshot.scales
      .map(
        (s) =>
          `${s.scale}:${Object.entries(s.sites)
            .map(([k, v]) => `${k}=${v.length}`)
            .join(",")}`,
      )
      .join(";")}`;
    if (embeddingCache?.key !== key) embeddingCache = { key, view: embeddingView(snapshot, scatterScales) };
    return embeddingCache.view;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? "/", "http://dashboard.invalid");
    if (req.method !== "GET" && req.method !== "HEAD") {
      res
        .writeHead(405, { ...SECURITY_HEADERS, Allow: "GET, HEAD", "Content-Type": "text/plain" })
        .end("read-only\n");
      return;
    }
    const path = url.pathname.replace(/\/+$/, "") || "/";
    switch (path) {
      case "/":
      case "/index.html":
        send(res, 200, "text/html; charset=utf-8", INDEX_HTML);
        return;
      case "/app.js":
        send(res, 200, "text/javascript; charset=utf-8", APP_JS, "no-cache");
        return;
      case "/app.css":
        send(res, 200, "text/css; charset=utf-8", APP_CSS, "no-cache");
        return;
      case "/vendor/chart.umd.min.js":
        chartJsSource().then(
          (src) => send(res, 200, "text/javascript; charset=utf-8", src, "public, max-age=3600"),
          (err: Error) => send(res, 500, "text/plain", `${err.message}\n`),
        );
        return;
      case "/healthz":
        send(res, 200, "text/plain", "ok\n");
        return;
      case "/favicon.ico":
        res.writeHead(204, SECURITY_HEADERS).end();
        return;
    }
    if (!authorised(req, url)) {
      res.writeHead(401, {
        ...SECURITY_HEADERS,
        "WWW-Authenticate": 'Bearer realm="fedjoint"',
        "Content-Type": "text/plain",
      });
      res.end("unauthorized: send Authorization: Bearer <token> or ?token=<token>\n");
      return;
    }
    switch (path) {
      case "/events": {
        res.writeHead(200, {
          ...SECURITY_HEADERS,
          "Content-Type": "text/event-stream; charset=utf-8",
          "Cache-Control": "no-store",
          Connection: "keep-alive",
          "X-Accel-Buffering": "no",
        });
        res.write("retry: 3000\n\n");
        const client: SseClient = { res, timer: undefined, lastPush: 0 };
        clients.add(client);
        push(client);
        const heartbeat = setInterval(() => res.write(": ping\n\n"), HEARTBEAT_MS);
        heartbeat.unref();
        req.on("close", () => {
          clearInterval(heartbeat);
          if (client.timer !== undefined) clearTimeout(client.timer);
          clients.delete(client);
        });
        return;
      }
      case "/api/state":
        json(res, 200, builder.snapshot());
        return;
      case "/api/events":
        json(res, 200, events);
        return;
      case "/api/embeddings":
        embeddings().then(
          (view) => json(res, 200, view),
          (err: Error) => {
            logger.warn({ err }, "dashboard: embeddings snapshot failed");
            json(res, 500, {
              available: false,
              reason: `embeddings failed: ${err.message}`,
              scatter: [],
              cosine: [],
            });
          },
        );
        return;
      case "/metrics":
        writeMetrics(metrics, res).catch((err: Error) =>
          send(res, 500, "text/plain", `metrics failed: ${err.message}\n`),
        );
        return;
      default:
        send(res, 404, "text/plain", "not found\n");
    }
  };

  const server: Server =
    options.tls === undefined
      ? createHttpServer(handle)
      : createHttpsServer(
          {
            cert: options.tls.cert,
            key: options.tls.key,
            ...(options.tls.ca === undefined
              ? {}
              : { ca: options.tls.ca, requestCert: true, rejectUnauthorized: false }),
          },
          handle,
        );
  const listenHost = options.host === "" ? undefined : options.host;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, listenHost, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    unsubscribe();
    throw fjError(
      "FJ_DASHBOARD_LISTEN",
      `cannot listen on ${options.host || "all interfaces"}:${options.port}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : options.port;
  const shownHost =
    listenHost === undefined || listenHost === "0.0.0.0" || listenHost === "::"
      ? "127.0.0.1"
      : listenHost.includes(":")
        ? `[${listenHost}]`
        : listenHost;
  const url = `${options.tls === undefined ? "http" : "https"}://${shownHost}:${port}/`;
  logger.info({ url, study: options.study, protected: !loopback }, "dashboard listening");

  let closed = false;
  return {
    url,
    state: () => builder.snapshot(),
    close: async () => {
      if (closed) return;
      closed = true;
      unsubscribe();
      for (const c of clients) {
        if (c.timer !== undefined) clearTimeout(c.timer);
        c.res.end();
      }
      clients.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
