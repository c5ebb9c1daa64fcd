import type { Command } from "commander";
import { fjError } from "../../errors.js";
import { NatsBus } from "../../events/bus-nats.js";
import type { StudyEvent, StudyEventKind } from "../../events/events.js";
import { createLogger } from "../../log.js";
import { printJson } from "../run.js";

const KINDS: StudyEventKind[] = [
  "study.started",
  "site.joined",
  "site.left",
  "round.opened",
  "update.accepted",
  "update.rejected",
  "round.closed",
  "round.aggregated",
  "embeddings.received",
  "evaluation.reported",
  "study.done",
];

interface EventsFlags {
  nats: string;
  study: string;
  stream: string;
  kind?: string[];
  site?: string;
  json?: boolean;
}

/** One human line per event: `#seq time kind [site] [f0 seg r3] details`. */
export function formatEvent(e: StudyEvent): string {
  const parts = [`#${e.seq}`, e.time, e.kind];
  if ("site" in e) parts.push(e.site);
  if ("round" in e) parts.push(`f${e.fold} ${e.phase} r${e.round}`);
  switch (e.kind) {
    case "site.joined":
      parts.push(`joint=${e.joint} samples=${e.samples} backend=${e.backend}`);
      break;
    case "site.left":
      parts.push(`reason=${JSON.stringify(e.reason)}`);
      break;
    case "round.opened":
      parts.push(`sites=${e.sites.join(",")}`);
      break;
    case "update.accepted":
      parts.push(
        `samples=${e.samples} bytes=${e.bytes} ${Object.entries(e.loss)
          .map(([k, v]) => `${k}=${v.toFixed(4)}`)
          .join(" ")}`,
      );
      break;
    case "update.rejected":
      parts.push(`${e.code} ${JSON.stringify(e.reason)}`);
      break;
    case "round.closed":
      parts.push(`sites=${e.sites.join(",")} missing=${e.missing.join(",") || "-"} ${e.durationMs} ms`);
      break;
    case "round.aggregated":
      parts.push(`samples=${e.samples} in=${e.bytesIn} out=${e.bytesOut} ${e.durationMs} ms`);
      break;
    case "embeddings.received":
      parts.push(`scales=${e.scales} vectors=${e.vectors}`);
      break;
    case "evaluation.reported":
      parts.push(`fold=${e.fold} labels=${Object.keys(e.metrics).join(",")}`);
      break;
    case "study.done":
      parts.push(`folds=${e.folds} rounds=${e.rounds} ${e.durationMs} ms`);
      break;
    case "study.started":
      break;
  }
  return parts.join("  ");
}

export async function readAuditLog(
  f: EventsFlags,
): Promise<{ study: string; stream: string; events: StudyEvent[]; skipped: number }> {
  for (const k of f.kind ?? []) {
    if (!(KINDS as string[]).includes(k))
      throw fjError("FJ_CLI_ARG", `--kind is '${k}', expected one of: ${KINDS.join(", ")}`);
  }
  const bus = await NatsBus.connect(f.nats, { stream: f.stream, logger: createLogger({ name: "events" }) });
  try {
    const { events, skipped } = await bus.history(f.study);
    const kinds = f.kind;
    const filtered = events.filter(
      (e) =>
        (kinds === undefined || kinds.includes(e.kind)) &&
        (f.site === undefined || ("site" in e && e.site === f.site)),
    );
    return { study: f.study, stream: f.stream, events: filtered, skipped };
  } finally {
    await bus.close();
  }
}

export function registerEvents(program: Command): void {
  program
    .command("events")
    .description("Print a study's audit log (its events stored in NATS JetStream), oldest first")
    .requiredOption("--nats <url>", "NATS server URL, e.g. nats://nats:4222")
    .requiredOption("--study <id>", "study id")
    .option("--stream <name>", "JetStream stream", "FEDJOINT")
    .option("--kind <kinds...>", `only these kinds (${KINDS.join(", ")})`)
    .option("--site <id>", "only events about this site")
    .option("--json", "print one JSON line {study, stream, events, skipped}")
    .action(async (f: EventsFlags) => {
      const r = await readAuditLog(f);
      if (f.json) printJson(r);
      else process.stdout.write(r.events.map((e) => `${formatEvent(e)}\n`).join(""));
    });
}
