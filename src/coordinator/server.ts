/**
 * Starts a coordinator: the TLS files first (nothing is written before they are readable), a
 * Study on its state directory (new or resumed, validated), then the gRPC Federation service on
 * host:port with mTLS (or plaintext on a loopback address only, for demos). TLS handshakes the
 * server refuses — a client certificate from another CA, a client that does not trust this
 * coordinator's certificate — are logged ("TLS handshake refused") with the peer and the reason.
 */
import type { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { fjError } from "../errors.js";
import type { EventBus } from "../events/events.js";
import { type Logger, silentLogger } from "../log.js";
import { CHANNEL_OPTIONS, federationService } from "../protocol/proto.js";
import type { StreamLimits } from "../protocol/stream.js";
import { isLoopback, serverCredentials, type TlsFiles } from "../protocol/tls.js";
import type { StudyConfig } from "../study/config.js";
import { DEFAULT_STREAM_LIMITS, federationHandlers } from "./service.js";
import { Study } from "./study.js";

/** The operator identity (certificate CN) when none is configured: `fedjoint certs` issues it. */
export const DEFAULT_OPERATOR = "operator";

export interface CoordinatorOptions {
  config: StudyConfig;
  stateDir: string;
  /** Listen address (default 127.0.0.1) and port (0 = any free port). */
  host?: string;
  port?: number;
  tls: TlsFiles;
  insecure?: boolean;
  bus: EventBus;
  log?: Logger;
  pollMs?: number;
  /** Certificate CNs allowed to Watch the study (default ["operator"]); none may be a site. */
  operators?: readonly string[];
  /** Idle and total deadlines of every stream (default 30 s, 10 min). */
  limits?: StreamLimits;
  /** Upload payloads buffered at once (default 4). */
  maxConcurrentUploads?: number;
  /** Simulations only (`--reproducible-seed`): the embedding bank's row order from this seed. */
  reproducibleSeed?: number;
}

export interface Coordinator {
  study: Study;
  port: number;
  resumed: boolean;
  /** Stops accepting calls and closes the study (the bus is the caller's). */
  close(): Promise<void>;
}

/**
 * Checks the options that need no I/O: plaintext only on loopback, operator identities that are
 * not sites. Throws the one-line error.
 */
export function checkCoordinatorOptions(
  options: Pick<CoordinatorOptions, "config" | "host" | "insecure" | "operators">,
): void {
  const host = options.host ?? "127.0.0.1";
  if (options.insecure === true && !isLoopback(host)) {
    throw fjError(
      "FJ_TLS_INSECURE_REMOTE",
      `--insecure with --host ${host || "(all interfaces)"}: plaintext without authentication is for 127.0.0.1, ::1 or localhost only`,
    );
  }
  for (const op of options.operators ?? [DEFAULT_OPERATOR]) {
    if (options.config.sites.some((s) => s.name === op)) {
      throw fjError(
        "FJ_CLI_ARG",
        `--operator ${op} is also a site of study ${options.config.study}: give the operator its own CN`,
      );
    }
  }
}

export async function startCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  const log = options.log ?? silentLogger;
  const insecure = options.insecure === true;
  checkCoordinatorOptions(options);
  // TLS files before the state directory: a missing --ca writes nothing
  const creds = await serverCredentials(options.tls, insecure);
  const study = new Study({
    config: options.config,
    stateDir: options.stateDir,
    bus: options.bus,
    log,
    pollMs: options.pollMs,
    reproducibleSeed: options.reproducibleSeed,
  });
  const { resumed } = await study.open();
  const server = new grpc.Server(CHANNEL_OPTIONS);
  server.addService(
    federationService().service,
    federationHandlers({
      study,
      bus: options.bus,
      insecure,
      log,
      operators: options.operators ?? [DEFAULT_OPERATOR],
      limits: options.limits ?? DEFAULT_STREAM_LIMITS,
      maxConcurrentUploads: options.maxConcurrentUploads,
    }),
  );
  const host = options.host ?? "127.0.0.1";
  const address = `${host.includes(":") ? `[${host}]` : host}:${options.port ?? 0}`;
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, creds, (err, p) => {
        if (err) reject(fjError("FJ_COORD_BIND", `cannot listen on ${address}: ${err.message}`));
        else resolve(p);
      });
    });
  } catch (err) {
    await study.close();
    server.forceShutdown();
    throw err;
  }
  if (!insecure) logRefusedHandshakes(server, log);
  log.info(
    {
      study: options.config.study,
      address: `${host}:${port}`,
      tls: !insecure,
      resumed,
      status: study.status,
    },
    "coordinator listening",
  );
  return {
    study,
    port,
    resumed,
    async close() {
      await study.close();
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
    },
  };
}

/**
 * Logs every TLS handshake the server refuses. grpc-js 1.14 keeps its HTTP/2 servers in the
 * private `http2Servers` map and leaves their `tlsClientError` events unhandled; Node then drops
 * the connection without a word. The refusal reason of a client certificate is the socket's
 * `authorizationError` (e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE for a certificate of another CA); a
 * client that refuses the coordinator's certificate just hangs up. (The wrong-CA test of
 * test/integration/security asserts this log line, so a grpc-js change here cannot go unseen.)
 */
function logRefusedHandshakes(server: grpc.Server, log: Logger): void {
  const servers = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers;
  if (!(servers instanceof Map)) {
    log.warn("cannot observe TLS handshakes (grpc-js internals changed): refused handshakes are not logged");
    return;
  }
  for (const http2Server of servers.keys()) {
    const peers = new WeakMap<object, string>();
    http2Server.prependListener("connection", (socket: Socket) => {
      peers.set(socket, `${socket.remoteAddress}:${socket.remotePort}`);
    });
    http2Server.on(
      "tlsClientError",
      (err: NodeJS.ErrnoException, tls: { authorizationError?: unknown; _parent?: object }) => {
        const reason = tls?.authorizationError
          ? `client certificate refused: ${String(tls.authorizationError)} (not signed by this study's CA?)`
          : `the client closed the handshake (${err.code ?? err.message}): it may not trust this coordinator's certificate`;
        log.warn(
          { peer: tls?._parent ? peers.get(tls._parent) : undefined, reason },
          "TLS handshake refused",
        );
      },
    );
  }
}
