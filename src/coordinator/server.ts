/**
 * Starts a coordinator: a Study on its state directory (new or resumed), the gRPC Federation
 * service on host:port with mTLS (or insecure for demos), and the event bus.
 */
import * as grpc from "@grpc/grpc-js";
import { fjError } from "../errors.js";
import type { EventBus } from "../events/events.js";
import { type Logger, silentLogger } from "../log.js";
import { CHANNEL_OPTIONS, federationService } from "../protocol/proto.js";
import { serverCredentials, type TlsFiles } from "../protocol/tls.js";
import type { StudyConfig } from "../study/config.js";
import { federationHandlers } from "./service.js";
import { Study } from "./study.js";

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
}

export interface Coordinator {
  study: Study;
  port: number;
  resumed: boolean;
  /** Stops accepting calls and closes the study (the bus is the caller's). */
  close(): Promise<void>;
}

export async function startCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  const log = options.log ?? silentLogger;
  const insecure = options.insecure === true;
  const study = new Study({
    config: options.config,
    stateDir: options.stateDir,
    bus: options.bus,
    log,
    pollMs: options.pollMs,
  });
  const { resumed } = await study.open();
  const creds = await serverCredentials(options.tls, insecure);
  const server = new grpc.Server(CHANNEL_OPTIONS);
  server.addService(
    federationService().service,
    federationHandlers({ study, bus: options.bus, insecure, log }),
  );
  const host = options.host ?? "127.0.0.1";
  const address = `${host.includes(":") ? `[${host}]` : host}:${options.port ?? 0}`;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, creds, (err, p) => {
      if (err) reject(fjError("FJ_COORD_BIND", `cannot listen on ${address}: ${err.message}`));
      else resolve(p);
    });
  });
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
