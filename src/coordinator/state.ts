/**
 * The schema of state.json, checked when a coordinator resumes: every field the Study reads, with
 * its type and range, file names that stay inside the state directory, SHA-256 digests of the
 * files they name, and a cursor and ledger that fit the study config. A damaged or foreign state
 * is one FJ_COORD_STATE line naming state.json and the field, never a stack trace.
 */
import { z } from "zod";
import { type ErrorCode, fjError, isErrorCode } from "../errors.js";
import { transmittedExamSchema } from "../eval/types.js";
import { JOINTS } from "../joints.js";
import { roundsOf, type StudyConfig } from "../study/config.js";
import { methodSpec, PHASES } from "../study/methods.js";
import { STATE_FILE_PATTERN } from "./store.js";
import type { StudyState } from "./study.js";

/**
 * A site's evaluation of a fold: validation Dice per label and its test exam's metrics — without
 * voxel counts (DESIGN §4: the bones' volumes stay at the site; RAVD and Dice travel).
 */
export const evaluationReportSchema = z.strictObject({
  validation: z.record(z.string(), z.strictObject({ dice: z.number().min(0).max(1) })),
  test: transmittedExamSchema,
});

const count = z.number().int().nonnegative();
const time = z.string().min(1);
const file = z.string().regex(STATE_FILE_PATTERN, "expected a .bin file name inside the state directory");
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "expected a hex SHA-256");
const phase = z.enum(PHASES);
const scalars = z.record(z.string(), z.number());
const errorCode = z.custom<ErrorCode>((v) => typeof v === "string" && isErrorCode(v), "expected an FJ_ code");
const ref = { fold: count, phase, round: count };

const stateSchema = z.object({
  version: z.number(),
  configHash: z.string(),
  config: z.looseObject({ study: z.string() }),
  status: z.enum(["joining", "running", "finishing", "done"]),
  seq: count,
  cursor: z.object({ fold: count, phaseIndex: count, round: count }),
  roundOpenedAt: time.optional(),
  finishingSince: time.optional(),
  joined: z.record(
    z.string(),
    z.object({ joint: z.enum(JOINTS), exams: count, backend: z.string(), joinedAt: time }),
  ),
  models: z.record(z.string(), z.object({ rounds: count, file, sha256 })),
  strategy: z
    .object({ fold: count, phase, rounds: count, file: file.optional(), sha256: sha256.optional(), scalars })
    .optional(),
  accumulator: z.object({ ...ref, file, sha256 }).optional(),
  ledger: z.array(
    z.object({
      ...ref,
      site: z.string(),
      sha256: z.string(),
      samples: count,
      bytes: count,
      loss: scalars,
      metrics: scalars,
      acceptedAt: time,
    }),
  ),
  aggregations: z.array(
    z.object({
      ...ref,
      sites: z.array(z.string()),
      missing: z.array(z.string()),
      excluded: z.array(z.object({ site: z.string(), code: errorCode, reason: z.string() })).optional(),
      samples: count,
      openedAt: time,
      aggregatedAt: time,
      durationMs: z.number(),
    }),
  ),
  embeddings: z.array(z.object({ ...ref, site: z.string(), file, sha256, vectors: count })),
  evaluations: z.array(
    evaluationReportSchema.extend({ site: z.string(), fold: count, meanDice: z.number(), reportedAt: time }),
  ),
  traffic: z.record(z.string(), z.record(z.string(), z.object({ sent: count, received: count }))),
  startedAt: time.optional(),
  finishedAt: time.optional(),
});

// The schema reads what the Study writes: a field added to StudyState must be added here. (The
// config is the one the state's configHash matched: the Study's own.)
const _schemaCoversState: Omit<z.output<typeof stateSchema>, "config"> extends Omit<StudyState, "config">
  ? true
  : false = true;
void _schemaCoversState;

/**
 * Validates a parsed state.json against the schema and the study config it is resumed with
 * (version, sites, cursor within the study's folds, phases and rounds). `where` names the file.
 */
export function parseState(raw: unknown, config: StudyConfig, version: number, where: string): StudyState {
  const r = stateSchema.safeParse(raw);
  if (!r.success) {
    const iss = r.error.issues[0];
    const field = iss.path.length > 0 ? iss.path.join(".") : "(root)";
    throw fjError("FJ_COORD_STATE", `${where}: ${field}: ${iss.message}`);
  }
  // configHash matched: the saved config is this config
  const st: StudyState = { ...r.data, config };
  const bad = (field: string, what: string) => fjError("FJ_COORD_STATE", `${where}: ${field}: ${what}`);
  if (st.version !== version) throw bad("version", `${st.version}, expected ${version}`);
  const phases = methodSpec(config.method).phases;
  const c = st.cursor;
  if (c.fold >= config.folds) throw bad("cursor.fold", `${c.fold}, the study has ${config.folds} folds`);
  if (c.phaseIndex >= phases.length) {
    throw bad("cursor.phaseIndex", `${c.phaseIndex}, method ${config.method} has ${phases.length} phases`);
  }
  const rounds = roundsOf(config, phases[c.phaseIndex]);
  if (c.round >= rounds) throw bad("cursor.round", `${c.round}, the phase has ${rounds} rounds`);
  const sites = new Set(config.sites.map((s) => s.name));
  for (const s of Object.keys(st.joined))
    if (!sites.has(s)) throw bad(`joined.${s}`, "not a site of the study");
  st.ledger.forEach((e, i) => {
    if (!sites.has(e.site)) throw bad(`ledger.${i}.site`, `${e.site} is not a site of the study`);
  });
  return st;
}
