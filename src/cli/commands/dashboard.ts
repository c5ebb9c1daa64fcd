import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { parseDashboardAddress } from "../../dashboard/auth.js";
import { startDashboard } from "../../dashboard/server.js";
import type { DashboardTls } from "../../dashboard/types.js";
import { fjError } from "../../errors.js";
import { NatsBus } from "../../events/bus-nats.js";
import { createLogger } from "../../log.js";

interface DashboardFlags {
  nats: string;
  study: string;
  stream: string;
  listen: string;
  cert?: string;
  key?: string;
  ca?: string;
  operator?: string[];
}

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw fjError(
      "FJ_CLI_ARG",
      `${flag} ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

/**
 * `fedjoint dashboard`: the study dashboard served from the NATS audit log, away from the
 * coordinator (auditors, or a coordinator started without --dashboard). Runs until SIGINT/SIGTERM.
 */
export function registerDashboard(program: Command): void {
  program
    .command("dashboard")
    .description("Serve a study's dashboard from its NATS JetStream event log (read-only)")
    .requiredOption("--nats <url>", "NATS server URL, e.g. nats://nats:4222")
    .requiredOption("--study <id>", "study id")
    .option("--stream <name>", "JetStream stream", "FEDJOINT")
    .option(
      "--listen <[host]:port>",
      "address to serve on (token from FEDJOINT_DASHBOARD_TOKEN unless loopback)",
      "127.0.0.1:8080",
    )
    .option("--cert <file>", "TLS certificate (PEM) for HTTPS")
    .option("--key <file>", "TLS key (PEM)")
    .option("--ca <file>", "CA (PEM): clients with a certificate it signed need no token")
    .option(
      "--operator <cn>",
      "with --ca: only client certificates of this CN (repeat for several; default: any the CA signed)",
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
    )
    .action(async (f: DashboardFlags) => {
      const logger = createLogger({ name: "dashboard" });
      const { host, port } = parseDashboardAddress(f.listen, "--listen");
      if ((f.cert === undefined) !== (f.key === undefined))
        throw fjError("FJ_CLI_ARG", "--cert and --key go together");
      if (f.ca !== undefined && f.cert === undefined)
        throw fjError("FJ_CLI_ARG", "--ca needs --cert and --key (HTTPS)");
      let tls: DashboardTls | undefined;
      if (f.cert !== undefined && f.key !== undefined) {
        tls = { cert: readPem("--cert", f.cert), key: readPem("--key", f.key) };
        if (f.ca !== undefined) tls.ca = readPem("--ca", f.ca);
      }
      const token = process.env.FEDJOINT_DASHBOARD_TOKEN || undefined;
      const bus = await NatsBus.connect(f.nats, { stream: f.stream, logger, name: "fedjoint-dashboard" });
      let dashboard: Awaited<ReturnType<typeof startDashboard>>;
      try {
        dashboard = await startDashboard({
          bus,
          study: f.study,
          host,
          port,
          token,
          tls,
          ...(f.operator === undefined ? {} : { operators: f.operator }),
          logger,
        });
      } catch (err) {
        await bus.close();
        throw err;
      }
      process.stderr.write(`dashboard for study ${f.study}: ${dashboard.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      await dashboard.close();
      await bus.close();
    });
}
