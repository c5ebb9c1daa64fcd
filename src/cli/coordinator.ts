#!/usr/bin/env node
/**
 * `coordinator --config study.yaml --state DIR [--host H] [--port P] --cert coordinator.pem
 *  --key coordinator.key --ca ca.pem [--insecure] [--nats URL] [--json]`
 * Runs (or resumes) a federated study and exits when it is done; with --json prints the study
 * summary as one JSON line on stdout.
 */
import path from "node:path";
import { Command } from "commander";
import { startCoordinator } from "../coordinator/server.js";
import { summarize } from "../coordinator/summary.js";
import { parseDashboardAddress } from "../dashboard/auth.js";
import { startDashboard } from "../dashboard/server.js";
import type { DashboardHandle } from "../dashboard/types.js";
import { writeReport } from "../eval/report.js";
import { createEventBus } from "../events/bus-nats.js";
import { createLogger } from "../log.js";
import { loadStudyConfig } from "../study/config.js";
import { intOption, printJson, runProgram } from "./run.js";

const program = new Command("coordinator")
  .description("run the federation coordinator of a study (resumes from --state)")
  .requiredOption("--config <file>", "study config (.json, .yaml or .yml)")
  .requiredOption("--state <dir>", "state directory (created; resumed when it holds a state)")
  .option("--host <host>", "listen address", "127.0.0.1")
  .option("--port <n>", "listen port (0 = any free port)", intOption("--port", 0), 7443)
  .option("--cert <file>", "coordinator certificate (PEM)")
  .option("--key <file>", "coordinator private key (PEM)")
  .option("--ca <file>", "CA certificate that signs the site certificates (PEM)")
  .option("--insecure", "plaintext gRPC without client authentication (local demos only)")
  .option("--nats <url>", "publish study events to NATS JetStream (else in-process)")
  .option(
    "--dashboard <[host]:port>",
    "serve the study dashboard (token from FEDJOINT_DASHBOARD_TOKEN unless loopback)",
  )
  .option("--json", "print the study summary as one JSON line when done")
  .action(
    async (f: {
      config: string;
      state: string;
      host: string;
      port: number;
      cert?: string;
      key?: string;
      ca?: string;
      insecure?: boolean;
      nats?: string;
      dashboard?: string;
      json?: boolean;
    }) => {
      const log = createLogger({ name: "coordinator" });
      const config = await loadStudyConfig(f.config);
      if (f.insecure) {
        log.warn(
          "INSECURE MODE: no TLS, no client authentication, site identities are not verified — local demos only",
        );
        process.stderr.write(
          "WARNING: coordinator running with --insecure (no TLS, anyone can act as any site)\n",
        );
      }
      const bus = await createEventBus({ natsUrl: f.nats, logger: log });
      const coordinator = await startCoordinator({
        config,
        stateDir: f.state,
        host: f.host,
        port: f.port,
        tls: { cert: f.cert, key: f.key, ca: f.ca },
        insecure: f.insecure === true,
        bus,
        log,
      });
      let dashboard: DashboardHandle | undefined;
      if (f.dashboard) {
        const { host, port } = parseDashboardAddress(f.dashboard, "--dashboard");
        dashboard = await startDashboard({
          bus,
          study: config.study,
          host,
          port,
          token: process.env.FEDJOINT_DASHBOARD_TOKEN || undefined,
          embeddings: async () => coordinator.study.latestEmbeddings(),
          logger: log,
        });
        log.info({ url: dashboard.url }, "dashboard listening");
      }
      const stop = async (signal: string) => {
        log.info({ signal }, "stopping coordinator");
        await dashboard?.close();
        await coordinator.close();
        await bus.close();
        process.exit(130);
      };
      process.once("SIGINT", () => void stop("SIGINT"));
      process.once("SIGTERM", () => void stop("SIGTERM"));
      await coordinator.study.done;
      // let every site receive "done" before the server goes away (a lost site is not waited for long)
      const released = await coordinator.study.sitesReleased(10_000);
      if (!released) log.warn("not every site collected its 'done' within 10 s; closing anyway");
      const summary = summarize(coordinator.study.snapshot(), path.resolve(f.state, "results.json"));
      // the study's tables (report.md, metrics.csv, metrics.json): `fedjoint report --runs` merges them
      const report = await writeReport(path.resolve(f.state, "report"), coordinator.study.results());
      log.info({ dir: report.dir, files: report.files }, "study report written");
      await dashboard?.close();
      await coordinator.close();
      await bus.close();
      if (f.json) printJson(summary);
      else process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    },
  );

await runProgram(program);
