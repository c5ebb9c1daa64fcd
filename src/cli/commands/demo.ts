import type { Command } from "commander";
import { createLogger } from "../../log.js";
import { demoOptions, type SimulateSummary, simulate } from "../../simulation/simulate.js";
import { printJson } from "../run.js";

function table(summary: SimulateSummary): string {
  const lines = [
    `fedjoint demo: ${summary.method}, ${Object.keys(summary.sites).length} sites on loopback mTLS, ` +
      `${summary.aggregations} aggregations in ${summary.wallSeconds.toFixed(1)} s`,
    "",
    "site      joint     val Dice round 0 → final   test-exam Dice per bone (3D, post-processed)   compute s   MB sent/received",
  ];
  for (const [name, s] of Object.entries(summary.sites)) {
    const dice = (d: number | null) => (d === null ? "  n/a" : d.toFixed(3));
    const bones = Object.entries(s.testDicePerLabel)
      .map(([bone, d]) => `${bone} ${d.toFixed(2)}`)
      .join(", ");
    lines.push(
      `${name.padEnd(9)} ${s.joint.padEnd(9)} ${dice(s.initialDice)} → ${dice(s.finalDice)}            ` +
        `${bones.padEnd(46)} ${s.computeSeconds.toFixed(1).padStart(9)}   ` +
        `${(s.bytes.sent / 1e6).toFixed(2)}/${(s.bytes.received / 1e6).toFixed(2)}`,
    );
  }
  lines.push(
    "",
    `round wall time / slowest site's compute: median ${summary.overhead.median.toFixed(3)}, max ${summary.overhead.max.toFixed(3)}`,
    "Only shared convolution weights, sample counts, anonymised embeddings and metrics crossed the wire.",
  );
  return `${lines.join("\n")}\n`;
}

/**
 * `fedjoint demo` (`npm run demo`): the newcomer's first command — `fedjoint simulate` on its
 * embedded defaults: a coordinator and three site-client processes (ankle, knee, shoulder) on
 * synthetic phantoms, over loopback mTLS with freshly generated certificates.
 */
export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("simulate a three-site federation (ankle, knee, shoulder phantoms) on embedded defaults")
    .option(
      "--backend <name>",
      "auto|tensorflow|native|wasm|webgpu|cpu",
      process.env.FEDJOINT_BACKEND ?? "auto",
    )
    .option("--json", "print the simulate summary as one JSON line")
    .action(async (f: { backend: string; json?: boolean }) => {
      const log = createLogger({ name: "demo" });
      const summary = await simulate(demoOptions({ backend: f.backend, log }));
      if (f.json) printJson(summary);
      else process.stdout.write(table(summary));
    });
}
