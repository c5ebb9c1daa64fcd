/**
 * The study state machine: fold → phase (AE, SEG) → round. Transport-free: the gRPC service
 * (./service.ts) authenticates callers and moves bytes; the strategy (src/aggregation) decides
 * what sites do and how results combine; this class drives the cursor, keeps the ledger and
 * persists. Every accepted update and every aggregation is persisted (./store.ts) before it is
 * acknowledged, so a restarted coordinator resumes exactly where it was and never counts an
 * update twice: the ledger is keyed by (site, fold, phase, round). The strategy's server state is
 * persisted with each aggregation. What every update must look like (its tensor schema) and the
 * Θ_0 of round 0 come from the study config alone (src/study/model.ts), before any site speaks.
 * An upload is decided on its header first (`admitUpdate`, `admitEmbeddings`: round, sample
 * bound, loss/metric names, tensor specs), before the service reads its payload; a resumed state
 * is validated (./state.ts) and every file it names checked against its SHA-256 (./store.ts).
 */
import type { z } from "zod";
import { localOnly } from "../aggregation/local-only.js";
import { withNormBound } from "../aggregation/norm-bound.js";
import { createStrategy } from "../aggregation/strategies/index.js";
import type {
  EvaluateInstructions,
  Exclusion,
  RoundAggregator,
  RoundContext,
  Strategy,
  StrategyState,
  TensorSchema,
  TrainInstructions,
} from "../aggregation/strategy.js";
import {
  checkScalars,
  checkTensorSpecs,
  type TensorSpec,
  updateScalarRules,
  validateUpdate,
} from "../aggregation/validate.js";
import { type ErrorCode, fjError } from "../errors.js";
import { STUDY_RESULTS_SCHEMA, type StudyResults } from "../eval/types.js";
import type { EventBus, StudyEventInput } from "../events/events.js";
import type { Joint } from "../joints.js";
import { type Logger, silentLogger } from "../log.js";
import type { NamedTensor } from "../model/api.js";
import { scaleDims } from "../model/architecture.js";
import { PAPER_LABELS } from "../model/labels.js";
import { type EncodedTensorSet, packTensorSet, type WireDtype } from "../protocol/tensors.js";
import { configHash, perDomainBatch, roundsOf, type StudyConfig } from "../study/config.js";
import { planFolds } from "../study/folds.js";
import { federates, methodSpec, type Phase } from "../study/methods.js";
import { federatedSchema, initialModel } from "../study/model.js";
import { checkEmbeddingSpecs, checkEmbeddings, EmbeddingBank, type EmbeddingSpec } from "./bank.js";
import { GlobalModels, type ModelRecord } from "./models.js";
import { evaluationReportSchema, parseState } from "./state.js";
import { StateStore, unpackStateFile } from "./store.js";

export const STATE_VERSION = 3;

export interface Ref {
  fold: number;
  phase: Phase;
  round: number;
}

export interface LedgerEntry extends Ref {
  site: string;
  sha256: string;
  samples: number;
  bytes: number;
  loss: Record<string, number>;
  metrics: Record<string, number>;
  acceptedAt: string;
}

export interface AggregationRecord extends Ref {
  /** Sites whose updates entered the aggregate. */
  sites: string[];
  missing: string[];
  /** Accepted updates the strategy left out (absent: none). */
  excluded?: Exclusion[];
  samples: number;
  openedAt: string;
  aggregatedAt: string;
  durationMs: number;
}

export { evaluationReportSchema };
export type EvaluationReport = z.infer<typeof evaluationReportSchema>;

export interface EvaluationRecord extends EvaluationReport {
  site: string;
  fold: number;
  meanDice: number;
  reportedAt: string;
}

export interface EmbeddingRecord extends Ref {
  site: string;
  file: string;
  sha256: string;
  vectors: number;
}

export interface Traffic {
  /** site → coordinator (update + embeddings payload bytes). */
  sent: number;
  /** coordinator → site (model + bank payload bytes). */
  received: number;
}

export type StudyStatus = "joining" | "running" | "finishing" | "done";

export interface StudyState {
  version: number;
  configHash: string;
  config: StudyConfig;
  status: StudyStatus;
  seq: number;
  cursor: { fold: number; phaseIndex: number; round: number };
  roundOpenedAt?: string;
  finishingSince?: string;
  joined: Record<string, { joint: Joint; exams: number; backend: string; joinedAt: string }>;
  /** Latest global model per "fold/phase" (round 0: Θ_0). */
  models: Record<string, ModelRecord>;
  /** The strategy's server state of the current (fold, phase) after `rounds` aggregations. */
  strategy?: {
    fold: number;
    phase: Phase;
    rounds: number;
    file?: string;
    sha256?: string;
    scalars: Record<string, number>;
  };
  accumulator?: Ref & { file: string; sha256: string };
  ledger: LedgerEntry[];
  aggregations: AggregationRecord[];
  embeddings: EmbeddingRecord[];
  evaluations: EvaluationRecord[];
  traffic: Record<string, Record<string, Traffic>>;
  startedAt?: string;
  finishedAt?: string;
}

export type Task =
  | { kind: "wait" | "done" }
  | { kind: "evaluate"; ref: Ref; hasModel: boolean; instructions: EvaluateInstructions }
  | {
      kind: "train";
      ref: Ref;
      /** Whether a global model exists to pull (always, when the method federates: Θ_0 in round 0). */
      hasModel: boolean;
      hasBank: boolean;
      /** For SEG of a +mjap method: aggregations of the fold's final AE model (0 = none). */
      aeRounds: number;
      instructions: TrainInstructions;
    };

export type AckResult =
  | { status: "accepted" }
  | { status: "duplicate"; code: ErrorCode; reason: string }
  | { status: "rejected"; code: ErrorCode; reason: string };

/** What an update stream's header declares, before any payload byte is read. */
export interface UpdateHeaderInput {
  site: string;
  ref: Ref;
  samples: number;
  loss: Record<string, number>;
  metrics: Record<string, number>;
  sha256: string;
  /** The tensors the header announces (names, shapes, wire dtypes). */
  specs: TensorSpec[];
}

export interface UpdateInput {
  site: string;
  ref: Ref;
  samples: number;
  loss: Record<string, number>;
  metrics: Record<string, number>;
  sha256: string;
  dtypes: string[];
  bytes: number;
  tensors: NamedTensor[];
}

/** A study event as the study emits it (study, seq and time are added by `emit`). */
type EventBody = StudyEventInput extends infer E
  ? E extends StudyEventInput
    ? Omit<E, "study">
    : never
  : never;

const refKey = (r: Ref) => `${r.fold}/${r.phase}/${r.round}`;

/** A promise-chain mutex: state changes and persistence run one at a time. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

export interface StudyOptions {
  config: StudyConfig;
  stateDir: string;
  bus: EventBus;
  log?: Logger;
  /** Long-poll wait of NextTask before answering "wait" (ms, default 20,000). */
  pollMs?: number;
  /** Simulations only: the embedding bank's row order from this seed (EmbeddingBank). */
  reproducibleSeed?: number;
}

export class Study {
  readonly config: StudyConfig;
  readonly phases: readonly Phase[];
  readonly strategy: Strategy;
  readonly wireDtype: WireDtype;
  private readonly federates: boolean;
  private readonly schemas: Partial<Record<Phase, TensorSchema>>;
  private readonly store: StateStore;
  private readonly bus: EventBus;
  private readonly log: Logger;
  private readonly pollMs: number;
  private readonly mutex = new Mutex();
  private state!: StudyState;
  private models!: GlobalModels;
  private strategyState?: StrategyState;
  private aggregator?: RoundAggregator;
  private readonly bank: EmbeddingBank;
  private waiters = new Set<() => void>();
  private timer?: NodeJS.Timeout;
  private timedOut = false;
  private doneResolve!: () => void;
  /** Resolves when the study is done. */
  readonly done: Promise<void>;
  private closed = false;
  private readonly toldDone = new Set<string>();

  constructor(options: StudyOptions) {
    this.config = options.config;
    this.bank = new EmbeddingBank(options.reproducibleSeed);
    const spec = methodSpec(this.config.method);
    this.phases = spec.phases;
    this.federates = federates(this.config.method);
    this.strategy = this.federates
      ? withNormBound(createStrategy(this.config), this.config.relativeNormBound)
      : localOnly(this.config);
    this.schemas = Object.fromEntries(this.phases.map((p) => [p, federatedSchema(this.config, p)]));
    this.wireDtype = this.config.compression === "float16" ? "float16" : "float32";
    this.store = new StateStore(options.stateDir);
    this.bus = options.bus;
    this.log = options.log ?? silentLogger;
    this.pollMs = options.pollMs ?? 20_000;
    this.done = new Promise((resolve) => {
      this.doneResolve = resolve;
    });
  }

  /** The tensor schema every update of `phase` must match (empty when nothing is federated). */
  schemaOf(phase: Phase): TensorSchema {
    return this.schemas[phase] ?? { tensors: [] };
  }

  /** Loads the state directory (resume) or starts a new study there. */
  async open(): Promise<{ resumed: boolean }> {
    await this.store.init();
    const raw = await this.store.readState();
    const hash = configHash(this.config);
    if (raw !== undefined) {
      const where = this.store.file("state.json");
      const version = (raw as { version?: unknown } | null)?.version;
      if (version !== STATE_VERSION) {
        throw fjError("FJ_COORD_STATE", `${where}: version ${String(version)}, expected ${STATE_VERSION}`);
      }
      const savedHash = (raw as { configHash?: unknown }).configHash;
      if (savedHash !== hash) {
        const savedStudy = (raw as { config?: { study?: unknown } }).config?.study;
        throw fjError(
          "FJ_COORD_CONFIG_CHANGED",
          `${where} belongs to a different study config (study ${String(savedStudy)}); use a new --state directory or the same config`,
        );
      }
      const saved = parseState(raw, this.config, STATE_VERSION, where);
      await this.loadFiles(saved);
      this.state = saved;
      // Event seq numbers published after the last persist may be lost: leave a gap.
      this.state.seq += 1000;
      this.log.info(
        {
          study: this.config.study,
          status: saved.status,
          ...this.cursorRef(),
          ledger: saved.ledger.length,
          aggregations: saved.aggregations.length,
        },
        "resumed study from state directory",
      );
      if (this.state.status === "running") {
        // killed between advancing the cursor and writing the new phase's Θ_0: write it now
        await this.mutex.run(() => this.startPhaseIfNew());
        this.armTimer(true);
        // killed after the last update of a round but before its aggregation: close it now
        await this.mutex.run(() => this.maybeClose());
      }
      if (this.state.status === "finishing") {
        this.armFinishTimer();
        await this.mutex.run(() => this.maybeFinish());
      }
      if (this.state.status === "done") this.doneResolve();
      return { resumed: true };
    }
    this.state = {
      version: STATE_VERSION,
      configHash: hash,
      config: this.config,
      status: "joining",
      seq: 0,
      cursor: { fold: 0, phaseIndex: 0, round: 0 },
      joined: {},
      models: {},
      ledger: [],
      aggregations: [],
      embeddings: [],
      evaluations: [],
      traffic: {},
    };
    this.models = new GlobalModels(this.store, this.wireDtype, this.state.models);
    await this.persist();
    await this.emit({ kind: "study.started", config: this.config as unknown as Record<string, unknown> });
    return { resumed: false };
  }

  /**
   * Reads back every file the saved state names — models, embedding banks, strategy state, the
   * open round's aggregator — checking each against its recorded SHA-256 and format: damage is
   * one FJ_COORD_STATE error naming the file, before anything of the study runs.
   */
  private async loadFiles(saved: StudyState): Promise<void> {
    this.models = new GlobalModels(this.store, this.wireDtype, saved.models);
    await this.models.verifyAll();
    for (const e of saved.embeddings) {
      const buf = await this.store.readVerified(e.file, e.sha256);
      this.bank.put(e, e.site, unpackStateFile(buf, this.store.file(e.file)));
    }
    if (saved.strategy) {
      const st = saved.strategy;
      if (st.file !== undefined && st.sha256 === undefined) {
        throw fjError(
          "FJ_COORD_STATE",
          `${this.store.file("state.json")}: strategy.sha256: missing for ${st.file}`,
        );
      }
      const tensors =
        st.file !== undefined && st.sha256 !== undefined
          ? unpackStateFile(await this.store.readVerified(st.file, st.sha256), this.store.file(st.file))
          : [];
      this.strategyState = { tensors, scalars: { ...st.scalars } };
    }
    if (saved.accumulator) {
      const a = saved.accumulator;
      const buf = await this.store.readVerified(a.file, a.sha256);
      try {
        this.aggregator = this.strategy.restore(this.schemaOf(a.phase), buf);
      } catch (err) {
        throw fjError("FJ_COORD_STATE", `${this.store.file(a.file)}: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
  }

  /**
   * The study's results in the eval format (`fedjoint report` reads it): per fold and site the
   * test exam's metrics, and the leave-one-out plan (π_k from the seed and each site's exam count).
   */
  results(): StudyResults {
    const st = this.state;
    const joined = Object.entries(st.joined).map(([site, j]) => ({ site, nExams: j.exams }));
    const plan =
      joined.length > 0
        ? planFolds({ sites: joined, seed: this.config.seed, folds: this.config.folds })
        : undefined;
    const folds = Array.from({ length: this.config.folds }, (_, fold) => ({
      fold,
      sites: st.evaluations
        .filter((e) => e.fold === fold)
        .map((e) => ({
          site: e.site,
          joint: this.config.sites.find((s) => s.name === e.site)!.joint,
          exams: [e.test],
        })),
    }));
    return {
      schema: STUDY_RESULTS_SCHEMA,
      study: this.config.study,
      createdAt: new Date().toISOString(),
      ...(plan
        ? { foldPlan: { seed: plan.seed, nFolds: plan.nFolds, permutations: plan.permutations } }
        : {}),
      methods: [{ method: this.config.method, backbone: "att-unet", folds }],
    };
  }

  /** A read-only copy of the persisted state (tests, summaries). */
  snapshot(): StudyState {
    return structuredClone(this.state);
  }

  get status(): StudyStatus {
    return this.state.status;
  }

  isSite(name: string): boolean {
    return this.config.sites.some((s) => s.name === name);
  }

  /* ---------------------------------------------------------------------------------------- */

  async join(
    site: string,
    info: { joint: string; labels: string[]; exams: number; backend: string },
  ): Promise<StudyConfig> {
    return this.mutex.run(async () => {
      const spec = this.config.sites.find((s) => s.name === site);
      if (!spec)
        throw fjError("FJ_COORD_UNKNOWN_SITE", `site ${site} is not part of study ${this.config.study}`);
      if (info.joint !== spec.joint) {
        throw fjError(
          "FJ_COORD_JOINT",
          `site ${site} declares joint ${info.joint}, the study expects ${spec.joint}`,
        );
      }
      if (!Number.isInteger(info.exams) || info.exams < 3) {
        throw fjError("FJ_COORD_EXAMS", `site ${site} has ${info.exams} exams, expected at least 3`);
      }
      if (info.exams < this.config.folds) {
        throw fjError(
          "FJ_COORD_EXAMS",
          `site ${site} has ${info.exams} exams, the study runs ${this.config.folds} leave-one-out folds`,
        );
      }
      const canonical = PAPER_LABELS[spec.joint].names;
      if (methodSpec(this.config.method).sharedNorm && info.labels.join() !== canonical.join()) {
        // the "shared" method's one union head must be the same network at every site
        throw fjError(
          "FJ_COORD_LABELS",
          `site ${site} declares labels ${info.labels.join(",")}, method ${this.config.method} needs the ${spec.joint} label set ${canonical.join(",")}`,
        );
      }
      this.state.joined[site] = {
        joint: spec.joint,
        exams: info.exams,
        backend: info.backend,
        joinedAt: new Date().toISOString(),
      };
      await this.emit({
        kind: "site.joined",
        site,
        joint: spec.joint,
        samples: info.exams,
        backend: info.backend,
      });
      this.log.info({ site, joint: spec.joint, exams: info.exams, backend: info.backend }, "site joined");
      if (this.state.status === "joining" && this.config.sites.every((s) => this.state.joined[s.name])) {
        this.state.status = "running";
        this.state.startedAt = new Date().toISOString();
        await this.openRound();
      }
      await this.persist();
      this.notify();
      return this.config;
    });
  }

  /** Long-poll: resolves with a task as soon as there is one, or "wait" after pollMs. */
  async nextTask(site: string, signal?: AbortSignal): Promise<Task> {
    if (!this.state.joined[site]) throw fjError("FJ_COORD_NOT_JOINED", `site ${site} must Join first`);
    const now = this.taskFor(site);
    if (now.kind !== "wait") return now;
    await new Promise<void>((resolve) => {
      const t = setTimeout(finish, this.pollMs);
      const waiter = () => finish();
      function finish() {
        clearTimeout(t);
        signal?.removeEventListener("abort", finish);
        resolve();
      }
      this.waiters.add(waiter);
      signal?.addEventListener("abort", finish);
      void this.done.then(finish);
    });
    return this.taskFor(site);
  }

  private taskFor(site: string): Task {
    const st = this.state;
    if (st.status === "done" || this.closed) {
      this.toldDone.add(site);
      this.notify();
      return { kind: "done" };
    }
    const finishedFolds = st.status === "finishing" ? this.config.folds : st.cursor.fold;
    const sites = this.config.sites.map((s) => s.name);
    for (let f = 0; f < finishedFolds; f++) {
      if (!st.evaluations.some((e) => e.site === site && e.fold === f)) {
        const rounds = roundsOf(this.config, "seg");
        const instructions = this.strategy.configureEvaluate({ fold: f, rounds }, sites)[site];
        return {
          kind: "evaluate",
          ref: { fold: f, phase: "seg", round: instructions.round },
          hasModel: this.hasModel(f, "seg", instructions.round),
          instructions,
        };
      }
    }
    if (st.status !== "running") return { kind: "wait" };
    const ref = this.cursorRef();
    if (st.ledger.some((e) => e.site === site && refKey(e) === refKey(ref))) return { kind: "wait" };
    const aeRounds = ref.phase === "seg" && this.phases.includes("ae") ? roundsOf(this.config, "ae") : 0;
    return {
      kind: "train",
      ref,
      hasModel: this.hasModel(ref.fold, ref.phase, ref.round),
      hasBank: ref.round > 0 && this.bank.othersCount({ ...ref, round: ref.round - 1 }, site) > 0,
      aeRounds,
      instructions: this.instructionsFor(site, ref),
    };
  }

  private roundContext(ref: Ref): RoundContext {
    return { ...ref, rounds: roundsOf(this.config, ref.phase) };
  }

  private instructionsFor(site: string, ref: Ref): TrainInstructions {
    const sites = this.config.sites.map((s) => s.name);
    return this.strategy.configureTrain(this.roundContext(ref), sites)[site];
  }

  private hasModel(fold: number, phase: Phase, rounds: number): boolean {
    return this.federates && this.models.rounds(fold, phase) === rounds;
  }

  /** The global model of (fold, phase) after `round` aggregations (wire-encoded). */
  async model(site: string, ref: Ref): Promise<EncodedTensorSet> {
    const have = this.models.rounds(ref.fold, ref.phase);
    if (!this.federates || have !== ref.round) {
      throw fjError(
        "FJ_COORD_NO_MODEL",
        this.federates
          ? `no model for fold ${ref.fold} ${ref.phase} round ${ref.round} (the coordinator holds ${have === undefined ? "none" : `round ${have}`})`
          : `method ${this.config.method} federates no model`,
      );
    }
    const encoded = await this.models.encoded(ref.fold, ref.phase);
    this.count(site, ref, "received", encoded.payload.length);
    return encoded;
  }

  /* ---------------------------------------------------------------------------------------- */

  /**
   * Decides on an update stream from its header alone, before any payload byte is read: the open
   * round, a replay or duplicate, the sample count, the loss and metric names and values, and the
   * announced tensors against the phase's schema (which also fixes the stream's byte count).
   * Undefined: read the payload; otherwise the answer (rejections are logged and published).
   */
  async admitUpdate(h: UpdateHeaderInput): Promise<AckResult | undefined> {
    return this.mutex.run(async () => {
      const result = this.preflight(h);
      if (result) await this.reportRefusal(h.site, h.ref, result);
      return result;
    });
  }

  /** Validates, ledgers and folds one update into the open round (persisted before returning). */
  async pushUpdate(u: UpdateInput): Promise<AckResult> {
    return this.mutex.run(async () => {
      const result = await this.acceptUpdate(u);
      if (result.status !== "accepted") await this.reportRefusal(u.site, u.ref, result);
      return result;
    });
  }

  private async reportRefusal(site: string, ref: Ref, result: AckResult): Promise<void> {
    if (result.status === "rejected") {
      this.log.warn({ site, ...ref, code: result.code, reason: result.reason }, "update rejected");
      await this.emit({ kind: "update.rejected", site, ...ref, code: result.code, reason: result.reason });
    } else if (result.status === "duplicate") {
      this.log.info({ site, ...ref, code: result.code }, "duplicate update ignored");
    }
  }

  /** The checks an update passes on its header (shared by admitUpdate and acceptUpdate). */
  private preflight(u: UpdateHeaderInput): AckResult | undefined {
    const st = this.state;
    const key = refKey(u.ref);
    const prior = st.ledger.find((e) => e.site === u.site && refKey(e) === key);
    if (prior) {
      const same = prior.sha256 === u.sha256;
      return {
        status: same ? "duplicate" : "rejected",
        code: "FJ_PROTOCOL_REPLAY",
        reason: `an update of ${u.site} for fold ${u.ref.fold} ${u.ref.phase} round ${u.ref.round} was already accepted${same ? " (same SHA-256): not counted again" : " with different content: replay refused"}`,
      };
    }
    if (st.status !== "running") {
      return {
        status: "rejected",
        code: "FJ_PROTOCOL_STALE",
        reason: `the study is ${st.status}, no round is open`,
      };
    }
    const open = this.cursorRef();
    if (key !== refKey(open)) {
      const stale = this.order(u.ref) < this.order(open);
      return {
        status: "rejected",
        code: stale ? "FJ_PROTOCOL_STALE" : "FJ_PROTOCOL_EARLY",
        reason: `update for fold ${u.ref.fold} ${u.ref.phase} round ${u.ref.round}, the open round is fold ${open.fold} ${open.phase} round ${open.round}`,
      };
    }
    const steps = this.instructionsFor(u.site, open).steps;
    const maxSamples = steps * perDomainBatch(this.config, open.phase);
    if (!Number.isInteger(u.samples) || u.samples < 1 || u.samples > maxSamples) {
      return {
        status: "rejected",
        code: "FJ_AGG_SAMPLES",
        reason: `sample count ${u.samples}, expected an integer 1..${maxSamples} (${steps} steps × ${perDomainBatch(this.config, open.phase)} slices)`,
      };
    }
    const scalars = checkScalars(u.loss, u.metrics, updateScalarRules(this.config.method, open.phase));
    if (!scalars.ok) return { status: "rejected", code: scalars.code, reason: scalars.reason };
    if (this.federates) {
      const specs = checkTensorSpecs(u.specs, this.schemaOf(open.phase), this.allowedDtypes());
      if (!specs.ok) return { status: "rejected", code: specs.code, reason: specs.reason };
    } else if (u.specs.length > 0) {
      return {
        status: "rejected",
        code: "FJ_AGG_SCHEMA",
        reason: `method ${this.config.method} federates no tensors`,
      };
    }
    return undefined;
  }

  private allowedDtypes(): string[] {
    return this.config.compression === "float16" ? ["float32", "float16"] : ["float32"];
  }

  private async acceptUpdate(u: UpdateInput): Promise<AckResult> {
    const st = this.state;
    const refused = this.preflight({
      ...u,
      specs: u.tensors.map((t, i) => ({ name: t.name, shape: t.shape, dtype: u.dtypes[i] })),
    });
    if (refused) return refused;
    if (this.federates) {
      const verdict = validateUpdate(u.tensors, {
        schema: this.schemaOf(u.ref.phase),
        maxNorm: this.config.maxUpdateNorm,
        dtypes: u.dtypes,
        allowedDtypes: this.allowedDtypes(),
      });
      if (!verdict.ok) return { status: "rejected", code: verdict.code, reason: verdict.reason };
    }
    this.aggregator ??= this.strategy.begin(this.schemaOf(u.ref.phase));
    this.aggregator.add({ site: u.site, samples: u.samples, tensors: u.tensors });
    st.ledger.push({
      site: u.site,
      ...u.ref,
      sha256: u.sha256,
      samples: u.samples,
      bytes: u.bytes,
      loss: u.loss,
      metrics: u.metrics,
      acceptedAt: new Date().toISOString(),
    });
    this.count(u.site, u.ref, "sent", u.bytes);
    const file = `acc-${u.ref.fold}-${u.ref.phase}-${u.ref.round}-${this.aggregator.sites.length}.bin`;
    const sha256 = await this.store.writeAtomic(file, this.aggregator.snapshot(), false);
    st.accumulator = { ...u.ref, file, sha256 };
    await this.persist(false);
    this.log.info(
      { site: u.site, ...u.ref, samples: u.samples, bytes: u.bytes, loss: u.loss },
      "update accepted",
    );
    await this.emit({
      kind: "update.accepted",
      site: u.site,
      ...u.ref,
      samples: u.samples,
      bytes: u.bytes,
      loss: u.loss,
      ...(u.metrics.val_dice_before === undefined ? {} : { validationDice: u.metrics.val_dice_before }),
    });
    await this.maybeClose();
    return { status: "accepted" };
  }

  private order(r: Ref): number {
    const p = this.phases.indexOf(r.phase);
    return (r.fold * 10 + Math.max(p, 0)) * 1_000_000 + r.round;
  }

  /* ---------------------------------------------------------------------------------------- */

  /**
   * Decides on an embeddings stream from its header alone (the open round, embeddings on, not yet
   * received, one [count ≤ embeddings.count, dim] tensor per scale): undefined = read the payload,
   * whose size the admitted specs fix; otherwise the answer (rejections are published).
   */
  async admitEmbeddings(
    site: string,
    ref: Ref,
    specs: readonly EmbeddingSpec[],
  ): Promise<AckResult | undefined> {
    return this.mutex.run(async () => {
      const result = this.embeddingsPreflight(site, ref, specs);
      if (result?.status === "rejected") await this.reportEmbeddingsRefusal(site, ref, result);
      return result;
    });
  }

  private embeddingsPreflight(
    site: string,
    ref: Ref,
    specs: readonly EmbeddingSpec[],
  ): AckResult | undefined {
    if (this.state.status !== "running" || refKey(ref) !== refKey(this.cursorRef())) {
      return {
        status: "rejected",
        code: "FJ_PROTOCOL_STALE",
        reason: `embeddings for fold ${ref.fold} ${ref.phase} round ${ref.round}: not the open round`,
      };
    }
    if (!this.instructionsFor(site, ref).embed) {
      return {
        status: "rejected",
        code: "FJ_COORD_EMBEDDINGS_OFF",
        reason: `this study exchanges no embeddings in ${ref.phase} rounds (method ${this.config.method}, embeddings.enabled ${this.config.embeddings.enabled})`,
      };
    }
    if (this.bank.has(ref, site)) {
      return {
        status: "duplicate",
        code: "FJ_PROTOCOL_REPLAY",
        reason: `embeddings of ${site} for this round already received`,
      };
    }
    const problem = checkEmbeddingSpecs(specs, { ...this.embeddingShape(), dtypes: this.allowedDtypes() });
    if (problem) return { status: "rejected", code: "FJ_COORD_EMBEDDINGS", reason: problem };
    return undefined;
  }

  private embeddingShape(): { dims: number[]; maxRows: number } {
    return {
      dims: scaleDims(this.config.model.base, this.config.model.depth),
      maxRows: this.config.embeddings.count,
    };
  }

  private async reportEmbeddingsRefusal(site: string, ref: Ref, result: AckResult): Promise<void> {
    if (result.status !== "rejected") return;
    this.log.warn({ site, ...ref, code: result.code, reason: result.reason }, "embeddings rejected");
    await this.emit({ kind: "update.rejected", site, ...ref, code: result.code, reason: result.reason });
  }

  async pushEmbeddings(site: string, ref: Ref, tensors: NamedTensor[], bytes: number): Promise<AckResult> {
    return this.mutex.run(async () => {
      const refused = this.embeddingsPreflight(site, ref, tensors);
      if (refused) {
        await this.reportEmbeddingsRefusal(site, ref, refused);
        return refused;
      }
      const problem = checkEmbeddings(tensors, this.embeddingShape());
      if (problem) {
        const result: AckResult = { status: "rejected", code: "FJ_COORD_EMBEDDINGS", reason: problem };
        await this.reportEmbeddingsRefusal(site, ref, result);
        return result;
      }
      const file = `emb-${ref.fold}-${ref.phase}-${ref.round}-${site}.bin`;
      const sha256 = await this.store.writeAtomic(file, packTensorSet(tensors), false);
      this.bank.put(ref, site, tensors);
      const vectors = tensors[0].shape[0];
      this.state.embeddings.push({ ...ref, site, file, sha256, vectors });
      this.count(site, ref, "sent", bytes);
      // Banks older than the previous round are no longer served.
      const kept = (e: Ref) => e.fold === ref.fold && e.phase === ref.phase && e.round >= ref.round - 1;
      this.state.embeddings = this.state.embeddings.filter(kept);
      this.bank.retain(kept);
      await this.persist(false);
      await this.emit({ kind: "embeddings.received", site, ...ref, scales: tensors.length, vectors });
      return { status: "accepted" };
    });
  }

  /** The other sites' vectors of `ref` per scale, rows shuffled, no identifiers. */
  bankFor(site: string, ref: Ref): NamedTensor[] {
    return this.bank.othersOf(site, ref);
  }

  /**
   * The most recent round's uploaded embeddings per site and scale (1-based), for the
   * coordinator's dashboard (scatter and cosine matrices); null before any upload.
   */
  latestEmbeddings(): {
    fold: number;
    phase: Phase;
    round: number;
    scales: { scale: number; sites: Record<string, Float32Array[]> }[];
  } | null {
    const recs = this.state.embeddings;
    if (recs.length === 0) return null;
    const last = recs.reduce((a, b) => (this.order(b) > this.order(a) ? b : a));
    const bySite = this.bank.sitesOf(last);
    if (bySite.size === 0) return null;
    const scales = new Map<number, Record<string, Float32Array[]>>();
    for (const [site, tensors] of bySite) {
      for (const t of tensors) {
        const s = Number(/^embedding\/scale(\d+)$/.exec(t.name)?.[1] ?? Number.NaN);
        if (!Number.isInteger(s)) continue;
        const [n, dim] = t.shape;
        const rows = Array.from({ length: n }, (_, i) => t.data.subarray(i * dim, (i + 1) * dim));
        const entry = scales.get(s + 1) ?? {};
        entry[site] = rows;
        scales.set(s + 1, entry);
      }
    }
    return {
      fold: last.fold,
      phase: last.phase,
      round: last.round,
      scales: [...scales.entries()].sort((a, b) => a[0] - b[0]).map(([scale, sites]) => ({ scale, sites })),
    };
  }

  noteBankSent(site: string, ref: Ref, bytes: number): void {
    this.count(site, { ...ref, round: ref.round + 1 }, "received", bytes);
  }

  /* ---------------------------------------------------------------------------------------- */

  async reportEvaluation(
    site: string,
    fold: number,
    meanDice: number,
    report: EvaluationReport,
  ): Promise<AckResult> {
    return this.mutex.run(async () => {
      if (!Number.isInteger(fold) || fold < 0 || fold >= this.config.folds) {
        return {
          status: "rejected",
          code: "FJ_COORD_FOLD",
          reason: `fold ${fold}, the study has folds 0..${this.config.folds - 1}`,
        };
      }
      if (this.state.evaluations.some((e) => e.site === site && e.fold === fold)) {
        return {
          status: "duplicate",
          code: "FJ_PROTOCOL_REPLAY",
          reason: `evaluation of ${site} for fold ${fold} already received`,
        };
      }
      const finished =
        this.state.status === "finishing" || this.state.status === "done"
          ? this.config.folds
          : this.state.cursor.fold;
      if (fold >= finished) {
        return {
          status: "rejected",
          code: "FJ_PROTOCOL_EARLY",
          reason: `fold ${fold} has not finished training`,
        };
      }
      this.state.evaluations.push({ site, fold, meanDice, ...report, reportedAt: new Date().toISOString() });
      const metrics: Record<string, Record<string, number>> = {};
      for (const [label, m] of Object.entries(report.test.labels)) {
        metrics[label] = {
          dice: m.dice,
          sensitivity: m.sensitivity,
          specificity: m.specificity,
          mssd: m.mssd,
          assd: m.assd,
        };
        if (m.ravd !== null) metrics[label].ravd = m.ravd;
      }
      const joint = this.config.sites.find((s) => s.name === site)!.joint;
      await this.emit({ kind: "evaluation.reported", site, joint, fold, metrics });
      this.log.info({ site, fold, meanDice }, "evaluation reported");
      await this.maybeFinish();
      await this.persist();
      this.notify();
      return { status: "accepted" };
    });
  }

  /* ---------------------------------------------------------------------------------------- */

  private cursorRef(): Ref {
    const c = this.state.cursor;
    return { fold: c.fold, phase: this.phases[c.phaseIndex], round: c.round };
  }

  private async openRound(): Promise<void> {
    await this.startPhaseIfNew();
    this.state.roundOpenedAt = new Date().toISOString();
    this.timedOut = false;
    this.armTimer(false);
    const ref = this.cursorRef();
    this.log.info({ ...ref }, "round opened");
    await this.emit({ kind: "round.opened", ...ref, sites: this.config.sites.map((s) => s.name) });
  }

  /**
   * Round 0 of a (fold, phase): the global model starts as the seeded Θ_0 (the same initial values
   * every site's network has) and the strategy's state is initialised from it, both persisted.
   */
  private async startPhaseIfNew(): Promise<void> {
    const ref = this.cursorRef();
    if (!this.federates || ref.round !== 0 || this.models.rounds(ref.fold, ref.phase) !== undefined) return;
    const theta0 = initialModel(this.config, ref.phase);
    await this.models.put(ref.fold, ref.phase, 0, theta0);
    await this.saveStrategyState(ref.fold, ref.phase, 0, this.strategy.initialize(theta0));
    await this.persist();
  }

  private async saveStrategyState(
    fold: number,
    phase: Phase,
    rounds: number,
    state: StrategyState,
  ): Promise<void> {
    let file: string | undefined;
    let sha256: string | undefined;
    if (state.tensors.length > 0) {
      file = `strategy-${fold}-${phase}-${rounds}.bin`;
      sha256 = await this.store.writeAtomic(file, packTensorSet(state.tensors));
    }
    this.strategyState = state;
    this.state.strategy = { fold, phase, rounds, file, sha256, scalars: { ...state.scalars } };
  }

  private armTimer(resumed: boolean): void {
    if (this.timer) clearTimeout(this.timer);
    this.timedOut = false;
    const opened = resumed ? Date.now() : Date.parse(this.state.roundOpenedAt ?? new Date().toISOString());
    const left = Math.max(0, opened + this.config.roundTimeoutS * 1000 - Date.now());
    this.timer = setTimeout(() => {
      void this.mutex.run(async () => {
        this.timedOut = true;
        await this.maybeClose();
      });
    }, left);
    this.timer.unref?.();
  }

  private async maybeClose(): Promise<void> {
    if (this.state.status !== "running") return;
    const ref = this.cursorRef();
    const got = this.state.ledger.filter((e) => refKey(e) === refKey(ref)).map((e) => e.site);
    const all = this.config.sites.every((s) => got.includes(s.name));
    if (!all && !(this.timedOut && got.length >= this.config.minSites)) {
      if (this.timedOut && got.length < this.config.minSites) {
        this.log.warn(
          { ...ref, updates: got.length, minSites: this.config.minSites },
          "round timeout with fewer than minSites updates: waiting",
        );
      }
      return;
    }
    await this.aggregate(ref, got);
  }

  private async aggregate(ref: Ref, sites: string[]): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    const t0 = performance.now();
    const agg = this.aggregator;
    if (!agg) throw fjError("FJ_COORD_INVARIANT", "no aggregator for a round with updates");
    const missing = this.config.sites.map((s) => s.name).filter((s) => !sites.includes(s));
    const openedAt = this.state.roundOpenedAt ?? new Date().toISOString();
    const openedMs = Date.parse(openedAt);
    await this.emit({ kind: "round.closed", ...ref, sites, missing, durationMs: Date.now() - openedMs });
    for (const s of missing)
      await this.emit({
        kind: "site.left",
        site: s,
        reason: `no update by the end of fold ${ref.fold} ${ref.phase} round ${ref.round}`,
      });
    let excluded: Exclusion[] = [];
    if (this.federates) {
      const current = await this.models.tensors(ref.fold, ref.phase);
      const st = this.state.strategy;
      const state =
        st && st.fold === ref.fold && st.phase === ref.phase && st.rounds === ref.round && this.strategyState
          ? this.strategyState
          : this.strategy.initialize(current);
      const next = this.strategy.aggregate(agg, current, state, this.roundContext(ref));
      excluded = next.excluded ?? [];
      await this.models.put(ref.fold, ref.phase, ref.round + 1, next.model);
      await this.saveStrategyState(ref.fold, ref.phase, ref.round + 1, next.state);
    }
    // the sites whose updates entered the aggregate, and their samples
    const entered = sites.filter((s) => !excluded.some((e) => e.site === s));
    const samples = this.state.ledger
      .filter((e) => refKey(e) === refKey(ref) && entered.includes(e.site))
      .reduce((n, e) => n + e.samples, 0);
    for (const e of excluded) {
      this.log.warn(
        { site: e.site, ...ref, code: e.code, reason: e.reason },
        "update left out of the aggregate",
      );
      await this.emit({ kind: "update.rejected", site: e.site, ...ref, code: e.code, reason: e.reason });
    }
    const aggregatedAt = new Date().toISOString();
    const record: AggregationRecord = {
      ...ref,
      sites: entered,
      missing,
      ...(excluded.length > 0 ? { excluded } : {}),
      samples,
      openedAt,
      aggregatedAt,
      durationMs: Date.parse(aggregatedAt) - openedMs,
    };
    this.state.aggregations.push(record);
    this.state.accumulator = undefined;
    this.aggregator = undefined;
    // advance the cursor
    const c = this.state.cursor;
    const phase = this.phases[c.phaseIndex];
    let opened = false;
    if (c.round + 1 < roundsOf(this.config, phase)) {
      c.round++;
      opened = true;
    } else if (c.phaseIndex + 1 < this.phases.length) {
      c.phaseIndex++;
      c.round = 0;
      opened = true;
    } else if (c.fold + 1 < this.config.folds) {
      c.fold++;
      c.phaseIndex = 0;
      c.round = 0;
      opened = true;
    } else {
      this.state.status = "finishing";
      this.state.finishingSince = new Date().toISOString();
    }
    if (opened) this.state.roundOpenedAt = new Date().toISOString();
    await this.persist();
    const totalBytes = Object.values(this.state.traffic[refKey(ref)] ?? {});
    await this.emit({
      kind: "round.aggregated",
      ...ref,
      sites: entered,
      samples,
      bytesIn: totalBytes.reduce((n, t) => n + t.sent, 0),
      bytesOut: totalBytes.reduce((n, t) => n + t.received, 0),
      durationMs: record.durationMs,
    });
    this.log.info(
      {
        ...ref,
        sites: entered,
        missing,
        excluded: excluded.map((e) => e.site),
        samples,
        ms: Math.round(performance.now() - t0),
        roundMs: record.durationMs,
      },
      "round aggregated",
    );
    if (opened) await this.openRound();
    else {
      this.armFinishTimer();
      await this.maybeFinish();
    }
    this.notify();
  }

  private armFinishTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    const since = Date.parse(this.state.finishingSince ?? new Date().toISOString());
    const left = Math.max(0, since + this.config.roundTimeoutS * 1000 - Date.now());
    this.timer = setTimeout(() => {
      void this.mutex.run(async () => {
        this.timedOut = true;
        await this.maybeFinish();
        await this.persist();
        this.notify();
      });
    }, left);
    this.timer.unref?.();
  }

  private async maybeFinish(): Promise<void> {
    if (this.state.status !== "finishing") return;
    const evals = this.state.evaluations;
    const complete = (need: number) =>
      Array.from({ length: this.config.folds }, (_, f) => f).every(
        (f) => evals.filter((e) => e.fold === f).length >= need,
      );
    if (!complete(this.config.sites.length) && !(this.timedOut && complete(this.config.minSites))) return;
    if (this.timer) clearTimeout(this.timer);
    this.state.status = "done";
    this.state.finishedAt = new Date().toISOString();
    await this.store.writeAtomic("results.json", `${JSON.stringify(this.results())}\n`);
    await this.persist();
    const durationMs =
      Date.parse(this.state.finishedAt) - Date.parse(this.state.startedAt ?? this.state.finishedAt);
    await this.emit({
      kind: "study.done",
      folds: this.config.folds,
      rounds: this.state.aggregations.length,
      durationMs,
    });
    this.log.info({ aggregations: this.state.aggregations.length, durationMs }, "study done");
    this.notify();
    this.doneResolve();
  }

  private count(site: string, ref: Ref, dir: keyof Traffic, bytes: number): void {
    const key = refKey(ref);
    this.state.traffic[key] ??= {};
    this.state.traffic[key][site] ??= { sent: 0, received: 0 };
    this.state.traffic[key][site][dir] += bytes;
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = new Set();
    for (const f of w) f();
  }

  /** Commits the state (state.json last); `sync` = fsync (aggregations, joins, evaluations). */
  private async persist(sync = true): Promise<void> {
    const st = this.state;
    await this.store.writeAtomic("state.json", `${JSON.stringify(st)}\n`, sync);
    const keep = new Set<string>([
      ...this.models.files(),
      ...st.embeddings.map((e) => e.file),
      ...(st.accumulator ? [st.accumulator.file] : []),
      ...(st.strategy?.file ? [st.strategy.file] : []),
    ]);
    await this.store.sweep(keep);
  }

  private async emit(event: EventBody): Promise<void> {
    this.state.seq++;
    const full = { ...event, study: this.config.study, seq: this.state.seq, time: new Date().toISOString() };
    try {
      await this.bus.publish(full as Parameters<EventBus["publish"]>[0]);
    } catch (err) {
      this.log.warn({ err, kind: event.kind }, "event bus publish failed");
    }
  }

  /** Resolves once every joined site has been answered "done" (or after `maxMs`). */
  async sitesReleased(maxMs: number): Promise<boolean> {
    const deadline = Date.now() + maxMs;
    for (;;) {
      if (Object.keys(this.state.joined).every((s) => this.toldDone.has(s))) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.add(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.notify();
    await this.mutex.run(async () => undefined);
  }
}
