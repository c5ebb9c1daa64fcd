#!/usr/bin/env node
/**
 * `coordinator --config study.yaml --state DIR [--host H] [--port P] --cert coordinator.pem
 *  --key coordinator.key --ca ca.pem [--operator CN] [--insecure] [--nats URL]
 *  [--dashboard [HOST]:PORT [--dashboard-linger-s S]] [--json]`
 * Runs (or resumes) a federated study and exits when it is done; with --json prints the study
 * summary as one JSON line on stdout. With --dashboard-linger-s the dashboard keeps serving the
 * finished study for that long (its final state, report and metrics stay readable); SIGINT or
 * SIGTERM end that wait early and the exit is still 0, for the study is done.
 *
 * Start-up order, so that a failure stops everything with one line and a non-zero exit before
 * anything is half-started: the config and the options that need no I/O (plaintext on loopback
 * only, operator CNs that are no site, the dashboard address and token), the event bus, the
 * dashboard (when asked for: a dashboard that cannot start stops the coordinator), then the
 * coordinator (TLS files, the state directory, the gRPC port). SIGINT and SIGTERM are handled from
 * the first line on: whatever the stage, what was started is closed and the process exits 130
 * (SIGINT) or 143 (SIGTERM); the state directory is consistent at any moment (atomic writes).
 */
import path from "node:path";
import {
  type Coordinator,
  checkCoordinatorOptions,
  DEFAULT_OPERATOR,
  startCoordinator,
} from "../coordinator/server.js";
import { DEFAULT_STREAM_LIMITS } from "../coordinator/service.js";
import { summarize } from "../coordinator/summary.js";
import { checkDashboardAccess, parseDashboardAddress } from "../dashboard/auth.js";
import { startDashboard } from "../dashboard/server.js";
import type { DashboardHandle } from "../dashboard/types.js";
import { fjError } from "../errors.js";
import { writeReport } from "../eval/report.js";
import { createEventBus } from "../events/bus-nats.js";
import type { EventBus } from "../events/events.js";
import { createLogger } from "../log.js";
import { SITE_NAME_PATTERN } from "../protocol/certs.js";
import { loadStudyConfig } from "../study/config.js";
import { Command, intOption, printJson, runProgram } from "./run.js";

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

const program = new Command("coordinator")
  .description("run the federation coordinator of a study (resumes from --state)")
  .requiredOption("--config <file>", "study config (.json, .yaml or .yml)")
  .requiredOption("--state <dir>", "state directory (created; resumed when it holds a state)")
  .option("--host <host>", "listen address", "127.0.0.1")
  .option("--port <n>", "listen port (0 = any free port)", intOption("--port", 0), 7443)
  .option("--cert <file>", "coordinator certificate (PEM)")
  .option("--key <file>", "coordinator private key (PEM)")
  .option("--ca <file>", "CA certificate that signs the site certificates (PEM)")
  .option(
    "--operator <cn>",
    `certificate CN allowed to Watch the study (repeat for several; default ${DEFAULT_OPERATOR})`,
    (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
  )
  .option(
    "--stream-idle-s <s>",
    "end a stream that sends nothing for this long",
    intOption("--stream-idle-s"),
    DEFAULT_STREAM_LIMITS.idleMs / 1000,
  )
  .option(
    "--stream-total-s <s>",
    "end a stream that lasts longer than this",
    intOption("--stream-total-s"),
    DEFAULT_STREAM_LIMITS.totalMs / 1000,
  )
  .option("--insecure", "plaintext gRPC without client authentication (local demos on loopback only)")
  .option(
    "--reproducible-seed <n>",
    "simulations only: the embedding bank's row order from n, so a simulated study repeats exactly (never in a real study: it would let a site tell the others' rows apart)",
    intOption("--reproducible-seed", 0),
  )
  .option("--nats <url>", "publish study events to NATS JetStream (else in-process)")
  .option(
    "--dashboard <[host]:port>",
    "serve the study dashboard (token from FEDJOINT_DASHBOARD_TOKEN unless loopback)",
  )
  .option(
    "--dashboard-linger-s <s>",
    "with --dashboard: keep serving the finished study this long before exiting (SIGINT/SIGTERM end it, exit 0)",
    intOption("--dashboard-linger-s", 0),
    0,
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
      operator?: string[];
      streamIdleS: number;
      streamTotalS: number;
      insecure?: boolean;
      reproducibleSeed?: number;
      nats?: string;
      dashboard?: string;
      dashboardLingerS: number;
      json?: boolean;
    }) => {
      const log = createLogger({ name: "coordinator" });
      let bus: EventBus | undefined;
      let dashboard: DashboardHandle | undefined;
      let coordinator: Coordinator | undefined;
      const closeAll = async () => {
        await dashboard?.close();
        await coordinator?.close();
        await bus?.close();
      };
      let stopping = false;
      /** Ends the dashboard's linger after a finished study (set while it lingers). */
      let endLinger: (() => void) | undefined;
      const stop = (signal: NodeJS.Signals) => {
        if (endLinger) {
          // the study is done: the first signal ends the linger and the normal exit follows; a
          // second one (the close hangs) exits at once
          log.info({ signal }, "ending the dashboard's linger: the study is done");
          endLinger();
          endLinger = undefined;
          stopping = true;
          return;
        }
        if (stopping) process.exit(SIGNAL_EXIT[signal]);
        stopping = true;
        log.info({ signal, status: coordinator?.study.status ?? "starting" }, "stopping coordinator");
        const force = setTimeout(() => process.exit(SIGNAL_EXIT[signal]), 10_000);
        force.unref();
        closeAll().then(
          () => process.exit(SIGNAL_EXIT[signal]),
          (err: unknown) => {
            log.error({ err }, "error while stopping");
            process.exit(SIGNAL_EXIT[signal]);
          },
        );
      };
      process.on("SIGINT", () => stop("SIGINT"));
      process.on("SIGTERM", () => stop("SIGTERM"));

      const config = await loadStudyConfig(f.config);
      const operators = f.operator ?? [DEFAULT_OPERATOR];
      for (const op of operators) {
        if (!SITE_NAME_PATTERN.test(op)) {
          throw fjError(
            "FJ_CLI_ARG",
            `--operator is '${op}', expected letters, digits, _ or - (a certificate CN)`,
          );
        }
      }
      const options = {
        config,
        stateDir: f.state,
        host: f.host,
        port: f.port,
        tls: { cert: f.cert, key: f.key, ca: f.ca },
        insecure: f.insecure === true,
        reproducibleSeed: f.reproducibleSeed,
        operators,
        limits: { idleMs: f.streamIdleS * 1000, totalMs: f.streamTotalS * 1000 },
        log,
      };
      checkCoordinatorOptions(options);
      const dashboardAddress =
        f.dashboard === undefined ? undefined : parseDashboardAddress(f.dashboard, "--dashboard");
      const token = process.env.FEDJOINT_DASHBOARD_TOKEN || undefined;
      if (dashboardAddress) checkDashboardAccess({ ...dashboardAddress, token });
      if (f.insecure) {
        log.warn(
          "INSECURE MODE: no TLS, no client authentication, site identities are not verified — local demos only",
        );
        process.stderr.write(
          "WARNING: coordinator running with --insecure (no TLS, anyone on this machine can act as any site)\n",
        );
      }
      try {
        bus = await createEventBus({ natsUrl: f.nats, logger: log });
        if (dashboardAddress) {
          dashboard = await startDashboard({
            bus,
            study: config.study,
            ...dashboardAddress,
            token,
            embeddings: async () => coordinator?.study.latestEmbeddings() ?? null,
            logger: log,
          });
          log.info({ url: dashboard.url }, "dashboard listening");
        }
        coordinator = await startCoordinator({ ...options, bus });
      } catch (err) {
        await closeAll();
        throw err;
      }
      await coordinator.study.done;
      // let every site receive "done" before the server goes away (a lost site is not waited for long)
      const released = await coordinator.study.sitesReleased(10_000);
      if (!released) log.warn("not every site collected its 'done' within 10 s; closing anyway");
      const summary = summarize(coordinator.study.snapshot(), path.resolve(f.state, "results.json"));
      // the study's tables (report.md, metrics.csv, metrics.json): `fedjoint report --runs` merges them
      const report = await writeReport(path.resolve(f.state, "report"), coordinator.study.results());
      log.info({ dir: report.dir, files: report.files }, "study report written");
      if (dashboard && f.dashboardLingerS > 0) {
        log.info({ url: dashboard.url, seconds: f.dashboardLingerS }, "study done; the dashboard stays up");
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, f.dashboardLingerS * 1000);
          endLinger = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      await closeAll();
      if (f.json) printJson(summary);
      else process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    },
  );

await runProgram(program);
