import type { Command } from "commander";
import { fjError } from "../../errors.js";
import { isJoint, JOINTS, type Joint } from "../../joints.js";
import { PAPER_LABELS } from "../../model/labels.js";
import { type Arch, modelSummary } from "../../model/summary.js";
import { intOption, printJson } from "../run.js";

interface SummaryFlags {
  arch: string;
  base: number;
  depth: number;
  joints: string;
  shared?: boolean;
  json?: boolean;
}

/** Parses a comma-separated joint list (`--joints ankle,knee`), one line naming the flag on error. */
export function parseJoints(value: string, flag = "--joints"): Joint[] {
  const joints = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = joints.find((j) => !isJoint(j));
  if (bad !== undefined || joints.length === 0) {
    throw fjError(
      "FJ_CLI_ARG",
      `${flag} is '${value}', expected a comma-separated list of ${JOINTS.join("|")}`,
    );
  }
  if (new Set(joints).size !== joints.length)
    throw fjError("FJ_CLI_ARG", `${flag} '${value}' repeats a joint`);
  return joints as Joint[];
}

export function registerModel(program: Command): void {
  const model = program.command("model").description("inspect the networks");
  model
    .command("summary")
    .description("parameter counts by partition (shared Θ, domain-specific Γ_k) and the embedding scales")
    .option("--arch <arch>", "att-unet | ae (multi-joint auto-encoder)", "att-unet")
    .option("--base <n>", "filters of the first level (paper 32)", intOption("--base"), 32)
    .option("--depth <n>", "levels including the bottleneck (paper 5)", intOption("--depth", 2), 5)
    .option("--joints <list>", "joints (domains), comma-separated", "ankle,knee,shoulder")
    .option("--shared", "the 'shared' baseline: one batch norm and one union head")
    .option("--json", "print one JSON line")
    .action(async (f: SummaryFlags) => {
      if (f.arch !== "att-unet" && f.arch !== "ae") {
        throw fjError("FJ_CLI_ARG", `--arch is '${f.arch}', expected att-unet or ae`);
      }
      const joints = parseJoints(f.joints);
      const s = modelSummary(f.arch as Arch, {
        base: f.base,
        depth: f.depth,
        joints,
        labels: PAPER_LABELS,
        sharedNorm: f.shared === true,
      });
      if (f.json) {
        printJson(s);
        return;
      }
      const lines = [
        `${s.arch} base ${s.base} depth ${s.depth}${s.sharedNorm ? " (shared baseline)" : " (DSL)"}`,
        `  shared parameters Θ:       ${s.sharedParams.toLocaleString("en-US")}`,
        ...joints.map(
          (j) =>
            `  ${`domain ${j} Γ:`.padEnd(27)}${(s.domainParams[j] ?? 0).toLocaleString("en-US")} (+ ${(s.domainStats[j] ?? 0).toLocaleString("en-US")} running statistics)`,
        ),
        `  total trainable:           ${s.totalParams.toLocaleString("en-US")} (domain-specific ${(100 * s.domainFraction).toFixed(2)} %)`,
        `  scales (embedding dims):   [${s.scales.join(", ")}]`,
      ];
      process.stdout.write(`${lines.join("\n")}\n`);
    });
}
