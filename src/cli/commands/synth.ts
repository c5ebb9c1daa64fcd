import type { Command } from "commander";
import { defaultDepth, synthesizeDataset } from "../../data/phantoms.js";
import { fjError } from "../../errors.js";
import { isJoint, JOINT_BONES, JOINTS } from "../../joints.js";
import { createLogger } from "../../log.js";
import { intOption, printJson } from "../run.js";

interface SynthFlags {
  joint: string;
  subjects: number;
  size: number;
  depth?: number;
  seed: number;
  out: string;
  json?: boolean;
}

/** `fedjoint synth` — writes a synthetic nnU-Net v2 joint dataset (phantoms). */
export function registerSynth(program: Command): void {
  program
    .command("synth")
    .description("write a synthetic pediatric joint MR dataset (nnU-Net v2 layout) with bone labels")
    .requiredOption("--joint <joint>", `joint: ${JOINTS.join("|")}`)
    .requiredOption("--out <dir>", "output dataset folder (new, empty, or a previous phantom dataset)")
    .option("--subjects <n>", "number of exams", intOption("--subjects"), 17)
    .option("--size <n>", "in-plane matrix (size × size)", intOption("--size", 16), 128)
    .option(
      "--depth <n>",
      "number of slices (default: covers the joint's bones at its slice thickness; fewer crop them)",
      intOption("--depth", 4),
    )
    .option("--seed <n>", "random seed (the same seed gives the same dataset)", intOption("--seed", 0), 1)
    .option("--json", "print one JSON line")
    .action(async (f: SynthFlags) => {
      const joint = f.joint;
      if (!isJoint(joint)) {
        throw fjError("FJ_CLI_ARG", `--joint is '${joint}', expected one of ${JOINTS.join(", ")}`);
      }
      const log = createLogger({ name: "synth" });
      const depth = f.depth ?? defaultDepth(joint, f.size);
      const t0 = performance.now();
      const ds = await synthesizeDataset({
        joint,
        subjects: f.subjects,
        size: f.size,
        depth,
        seed: f.seed,
        out: f.out,
        onSubject: (s) =>
          log.debug({ subject: s.id, seconds: Number(s.seconds.toFixed(3)) }, "subject written"),
      });
      const seconds = Number(((performance.now() - t0) / 1000).toFixed(3));
      const result = {
        out: ds.root,
        joint,
        subjects: ds.cases.length,
        shape: [f.size, f.size, depth],
        labels: ds.labels,
        seed: f.seed,
        seconds,
      };
      if (f.json) {
        printJson(result);
        return;
      }
      process.stdout.write(
        `wrote ${ds.cases.length} ${joint} phantoms ${f.size}×${f.size}×${depth} to ${ds.root} in ${seconds.toFixed(2)} s\n` +
          `labels: ${JOINT_BONES[joint].map((n, i) => `${i + 1}=${n}`).join(", ")}\n`,
      );
    });
}
