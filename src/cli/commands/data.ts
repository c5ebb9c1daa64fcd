import type { Command } from "commander";
import { checkDataset, type DatasetReport } from "../../data/dataset.js";
import { printJson } from "../run.js";

function fmt(v: number[]): string {
  return v.map((x) => Number(x.toFixed(3))).join("×");
}

function printSummary(r: DatasetReport): void {
  const s = r.summary;
  const lines = [
    `dataset ${r.name} (${r.root})`,
    `cases: ${s.cases}${s.numTraining !== null ? ` (numTraining ${s.numTraining})` : ""}`,
    `labels: ${s.labels.map((l) => `${l.value}=${l.name} ${l.voxels} voxels in ${l.cases} cases`).join("; ")}`,
    `shapes: ${s.shapes.map((x) => `${x.shape.join("×")} (${x.count})`).join(", ") || "none"}`,
    `spacing (mm): ${s.spacing ? `${fmt(s.spacing.min)} … ${fmt(s.spacing.max)}` : "none"}`,
    `intensity: ${s.intensity ? `${s.intensity.min} … ${s.intensity.max}` : "none"}`,
    `slices with foreground (axis 2): ${s.slicesWithForeground} of ${s.slices}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

/** `fedjoint data check DIR` — validates an nnU-Net v2 site dataset before any training. */
export function registerData(program: Command): void {
  const data = program.command("data").description("site dataset tools");
  data
    .command("check")
    .description(
      "validate an nnU-Net v2 dataset: files, shapes, spacing, labels, intensities (exit 2 on problems)",
    )
    .argument("<dir>", "dataset folder (dataset.json, imagesTr/, labelsTr/)")
    .option("--json", "print the report as one JSON line")
    .action(async (dir: string, f: { json?: boolean }) => {
      const report = await checkDataset(dir);
      if (f.json) printJson(report);
      else printSummary(report);
      for (const w of report.warnings) process.stderr.write(`warning ${w.code}: ${w.file}: ${w.message}\n`);
      for (const p of report.problems) process.stderr.write(`${p.code}: ${p.file}: ${p.message}\n`);
      if (!report.ok) process.exitCode = 2;
      else if (!f.json) process.stdout.write("ok\n");
    });
}
