#!/usr/bin/env node
/**
 * `site-client --joint knee --data DIR --coordinator HOST:PORT --cert site.pem --key site.key
 *  --ca ca.pem --state DIR [--site NAME] [--backend auto|native|wasm|…] [--insecure] [--json]`
 * Validates the local dataset, joins the study and trains until the study is done. The site
 * name is the certificate's subject CN (or --site with --insecure, which only reaches a
 * coordinator on this machine's loopback). Progress bar on a TTY. A refused certificate or an
 * untrusted coordinator ends the site at once (FJ_SITE_TLS), not after --retry-for. SIGINT and
 * SIGTERM close the connection and exit 130 / 143; Γ_k checkpoints are atomic, so a restarted
 * site resumes from its state directory.
 */
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import cliProgress from "cli-progress";
import { Command } from "commander";
import { fjError } from "../errors.js";
import { JOINTS, type Joint } from "../joints.js";
import { createLogger } from "../log.js";
import { initEngine, parseBackendChoice } from "../model/engine/backend.js";
import { SiteClient } from "../site-client/client.js";
import { Transport } from "../site-client/transport.js";
import { validateSiteData } from "../study/site-data.js";
import { intOption, printJson, runProgram } from "./run.js";

async function certificateCn(file: string): Promise<string> {
  let pem: Buffer;
  try {
    pem = await readFile(file);
  } catch (err) {
    throw fjError(
      "FJ_TLS_READ",
      `--cert ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  let subject: string | undefined;
  try {
    subject = new X509Certificate(pem).subject;
  } catch {
    subject = undefined;
  }
  const cn = subject === undefined ? undefined : /(?:^|\n)CN=([^\n]+)/.exec(subject)?.[1]?.trim();
  if (!cn) throw fjError("FJ_TLS_PEM", `--cert ${file}: not a PEM certificate with a subject CN`);
  return cn;
}

const program = new Command("site-client")
  .description("train a federated study at one hospital site (data never leaves this machine)")
  .requiredOption("--joint <joint>", `this site's joint: ${JOINTS.join(" | ")}`)
  .requiredOption("--data <dir>", "nnU-Net v2 dataset directory (dataset.json, imagesTr, labelsTr)")
  .requiredOption("--coordinator <host:port>", "coordinator address")
  .requiredOption("--state <dir>", "site state directory (Γ checkpoints; resumes from it)")
  .option("--cert <file>", "site certificate (PEM; its subject CN is the site name)")
  .option("--key <file>", "site private key (PEM)")
  .option("--ca <file>", "CA certificate of the coordinator (PEM)")
  .option("--site <name>", "site name (default: the certificate CN; with --insecure: the joint)")
  .option("--insecure", "plaintext gRPC, no authentication (local demos only)")
  .option(
    "--reproducible-seed <n>",
    "simulations only: which slices are embedded and their anonymisation from n, so a simulated study repeats exactly (never in a real study: a seed the coordinator could know would let it undo the noise)",
    intOption("--reproducible-seed", 0),
  )
  .option(
    "--backend <name>",
    "auto|tensorflow|native|wasm|webgpu|cpu",
    process.env.FEDJOINT_BACKEND ?? "auto",
  )
  .option(
    "--retry-for <s>",
    "give up after this many seconds without reaching the coordinator",
    intOption("--retry-for"),
    600,
  )
  .option("--json", "print a one-line JSON summary at the end")
  .action(
    async (f: {
      joint: string;
      data: string;
      coordinator: string;
      state: string;
      cert?: string;
      key?: string;
      ca?: string;
      site?: string;
      insecure?: boolean;
      reproducibleSeed?: number;
      backend: string;
      retryFor: number;
      json?: boolean;
    }) => {
      const log = createLogger({ name: "site-client" });
      if (!(JOINTS as readonly string[]).includes(f.joint)) {
        throw fjError("FJ_CLI_ARG", `--joint is '${f.joint}', expected one of ${JOINTS.join(", ")}`);
      }
      const joint = f.joint as Joint;
      if (!/^[^:\s]+:\d+$/.test(f.coordinator) && !/^\[[^\]]+\]:\d+$/.test(f.coordinator)) {
        throw fjError("FJ_CLI_ARG", `--coordinator is '${f.coordinator}', expected HOST:PORT`);
      }
      let site: string;
      if (f.insecure) {
        log.warn("INSECURE MODE: no TLS and no authentication — local demos only");
        process.stderr.write(
          "WARNING: site-client running with --insecure (no TLS, traffic readable by anyone)\n",
        );
        site = f.site ?? joint;
      } else {
        if (!f.cert || !f.key || !f.ca)
          throw fjError(
            "FJ_TLS_MISSING",
            "--cert, --key and --ca are required (or --insecure for a local demo)",
          );
        const cn = await certificateCn(f.cert);
        if (f.site && f.site !== cn)
          throw fjError("FJ_CLI_ARG", `--site ${f.site} differs from the certificate CN ${cn}`);
        site = cn;
      }
      const transport = new Transport({
        address: f.coordinator,
        site,
        tls: { cert: f.cert, key: f.key, ca: f.ca },
        insecure: f.insecure === true,
        log,
        retryForMs: f.retryFor * 1000,
      });
      for (const [signal, code] of [
        ["SIGINT", 130],
        ["SIGTERM", 143],
      ] as const) {
        process.once(signal, () => {
          log.info({ site, signal }, "stopping site-client");
          transport.close();
          process.exit(code);
        });
      }
      const engine = await initEngine(parseBackendChoice(f.backend), { log });
      log.info({ site, joint, data: f.data }, "validating the local dataset");
      const data = await validateSiteData(f.data, joint);
      log.info({ site, joint, exams: data.exams, labels: data.labels.names }, "dataset valid");
      let bar: cliProgress.SingleBar | undefined;
      const tty = process.stderr.isTTY === true && !f.json;
      const client = new SiteClient({
        site,
        joint,
        data,
        transport,
        stateDir: f.state,
        backend: engine.backend,
        reproducibleSeed: f.reproducibleSeed,
        log,
        onProgress: tty
          ? (p) => {
              if (p.step === 1) {
                bar?.stop();
                bar = new cliProgress.SingleBar(
                  {
                    format: `fold ${p.fold} ${p.phase} round ${p.round} [{bar}] {value}/{total} steps  loss {loss}`,
                    stream: process.stderr,
                  },
                  cliProgress.Presets.shades_classic,
                );
                bar.start(p.steps, 0, { loss: "-" });
              }
              bar?.update(p.step, { loss: p.loss.toFixed(4) });
              if (p.step === p.steps) {
                bar?.stop();
                bar = undefined;
              }
            }
          : undefined,
      });
      const summary = await client.run();
      bar?.stop();
      if (f.json) printJson({ ...summary, engine });
      else process.stdout.write(`${JSON.stringify({ ...summary, engine }, null, 2)}\n`);
    },
  );

await runProgram(program);
