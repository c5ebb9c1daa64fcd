import cliProgress from "cli-progress";
import type { Command } from "commander";
import { fjError } from "../../errors.js";
import { isJoint, JOINTS, type Joint } from "../../joints.js";
import { createLogger } from "../../log.js";
import { initEngine, parseBackendChoice } from "../../model/engine/backend.js";
import { readModelDir } from "../../model/model-dir.js";
import { folderJobs } from "../../segment/jobs.js";
import { modelJoint, SegmentationNetwork } from "../../segment/network.js";
import { checkExam, type ExamJob, type ExamSegmentation, segmentExam } from "../../segment/segment.js";
import { printJson } from "../run.js";

interface SegmentFlags {
  model: string;
  image?: string;
  images?: string;
  out: string;
  joint?: string;
  postprocess: string;
  overwrite?: boolean;
  ignoreGeometry?: boolean;
  backend: string;
  progress?: boolean;
  json?: boolean;
}

const POSTPROCESS = ["paper", "none"] as const;

async function jobsOf(f: SegmentFlags): Promise<(ExamJob & { case?: string })[]> {
  if (f.image !== undefined && f.images !== undefined)
    throw fjError("FJ_CLI_ARG", "--image and --images: give one exam (--image) or one folder (--images)");
  if (f.image !== undefined) return [{ image: f.image, out: f.out }];
  if (f.images !== undefined) return folderJobs(f.images, f.out);
  throw fjError("FJ_SEGMENT_INPUT", "no exam given: pass --image FILE or --images DIR");
}

/** `fedjoint segment`: a site's (or a centralised run's) model on new exams, written as label maps. */
export function registerSegment(program: Command): void {
  program
    .command("segment")
    .description(
      "segment exams with a trained model directory (a site's model/ or fedjoint train --out): a uint8 label map on each exam's grid",
    )
    .requiredOption("--model <dir>", "model directory (manifest.json + tensors.bin)")
    .option("--image <file>", "one exam (.nii or .nii.gz; a single 3D volume)")
    .option("--images <dir>", "a folder of exams named <case>_0000.nii[.gz] (nnU-Net naming)")
    .requiredOption("--out <path>", "label map file for --image; folder for --images (<case>.nii[.gz] each)")
    .option("--joint <joint>", `the exams' joint, when the model serves several (${JOINTS.join("|")})`)
    .option("--postprocess <mode>", "paper (largest component per bone + 5×5×5 ball closing) | none", "paper")
    .option("--overwrite", "replace existing output files")
    .option(
      "--ignore-geometry",
      "segment exams whose field of view or slicing differs from the training exams",
    )
    .option("--backend <name>", "auto|tensorflow|wasm|webgpu|cpu", process.env.FEDJOINT_BACKEND ?? "auto")
    .option("--no-progress", "no progress bar")
    .option("--json", "print one JSON line: per exam its output and per-bone volumes in mm³ (local output)")
    .action(async (f: SegmentFlags) => {
      if (!(POSTPROCESS as readonly string[]).includes(f.postprocess)) {
        throw fjError(
          "FJ_CLI_ARG",
          `--postprocess is '${f.postprocess}', expected ${POSTPROCESS.join(" or ")}`,
        );
      }
      let joint: Joint | undefined;
      if (f.joint !== undefined) {
        if (!isJoint(f.joint))
          throw fjError("FJ_CLI_ARG", `--joint is '${f.joint}', expected one of ${JOINTS.join(", ")}`);
        joint = f.joint;
      }
      const backend = parseBackendChoice(f.backend);
      const log = createLogger({ name: "segment" });
      const t0 = performance.now();
      const jobs = await jobsOf(f);
      const model = await readModelDir(f.model);
      const options = {
        postprocess: f.postprocess === "paper",
        ignoreGeometry: f.ignoreGeometry === true,
        overwrite: f.overwrite === true,
        log,
      };
      // Everything that can be refused is, before the engine starts: the model, the joint, and
      // every exam (a readable 3D NIfTI, a geometry the model handles, an output that is free).
      const chosen = modelJoint(model, joint);
      for (const job of jobs) await checkExam(model, chosen, job, options);
      const engine = await initEngine(backend, { log });
      const net = new SegmentationNetwork(model, chosen);
      try {
        const tty = f.progress !== false && process.stderr.isTTY === true;
        const results: ExamSegmentation[] = [];
        for (const [i, job] of jobs.entries()) {
          const name = job.case ?? job.image;
          const bar = tty
            ? new cliProgress.SingleBar(
                {
                  format: `${name} (${i + 1}/${jobs.length}) |{bar}| {value}/{total} slices`,
                  stream: process.stderr,
                  hideCursor: true,
                },
                cliProgress.Presets.shades_classic,
              )
            : undefined;
          let started = false;
          const r = await segmentExam(net, job, {
            ...options,
            onProgress: (done, total) => {
              if (!started) bar?.start(total, 0);
              started = true;
              bar?.update(done);
            },
          });
          bar?.stop();
          results.push(r);
          log.info(
            {
              image: r.image,
              out: r.out,
              slices: r.slices,
              seconds: Math.round(r.seconds.total * 100) / 100,
            },
            "exam segmented",
          );
        }
        const card = model.card;
        const summary = {
          model: {
            dir: f.model,
            joint: net.joint,
            study: card.source.study,
            method: card.source.method,
            source: card.source.kind,
            site: card.source.site,
            fold: card.source.fold,
            rounds: card.source.rounds,
            fedjoint: card.fedjoint,
          },
          backend: engine.backend,
          postprocess: f.postprocess,
          exams: results,
          seconds: (performance.now() - t0) / 1000,
        };
        if (f.json) printJson(summary);
        else {
          for (const r of results) {
            const bones = Object.entries(r.bones)
              .map(([b, v]) => `${b} ${(v.volumeMm3 / 1000).toFixed(1)} cm³`)
              .join(", ");
            process.stdout.write(
              `${r.out}: ${r.dims.join("×")}, ${bones} (${r.seconds.total.toFixed(1)} s)\n`,
            );
          }
        }
      } finally {
        net.dispose();
      }
    });
}
