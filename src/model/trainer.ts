import { fjError } from "../errors.js";
import { JOINTS, type Joint } from "../joints.js";
import { type Logger, silentLogger } from "../log.js";
import { hashSeed, mulberry32, shuffle } from "../random.js";
import { perDomainBatch, type StudyConfig, type TrainingConfig } from "../study/config.js";
import { contrastiveScales, type Method, type MethodSpec, methodSpec, type Phase } from "../study/methods.js";
import { type EmbeddingBank, isShared, type LossComponents, type NamedTensor } from "./api.js";
import { attUNetVariables, autoEncoderVariables, type NetSpec, type VariableSpec } from "./architecture.js";
import {
  type CheckpointManifest,
  type CheckpointScope,
  checkAgainst,
  inScope,
  readCheckpoint,
  scopeLabel,
  writeCheckpoint,
} from "./checkpoint.js";
import { Adam } from "./engine/adam.js";
import { oneHotFloat } from "./engine/one-hot.js";
import { ReadBehind } from "./engine/readback.js";
import { tf } from "./engine/tf.js";
import { type LabelSpec, type UnionLabels, unionLabels } from "./labels.js";
import type { ForwardContext } from "./layers/context.js";
import { applyStatUpdates } from "./layers/dsbn.js";
import { domainCrossEntropy } from "./losses/ce.js";
import { anatomicalPriorLoss } from "./losses/mjap.js";
import { type BankScale, multiScaleContrastive } from "./losses/msc.js";
import { AttUNet } from "./nets/att-unet.js";
import { MultiJointAutoEncoder } from "./nets/auto-encoder.js";
import { ParamStore } from "./params.js";

/* ------------------------------------------------------------------------------------------------
 * Data the trainer consumes. Structurally the `SliceSet` / `makeBatchSampler` of src/data/slices.ts:
 * any object with these fields works (tests build them by hand).
 * --------------------------------------------------------------------------------------------- */

/** 2D slices of one joint, row-major [count, size, size]: z-scored images and integer labels. */
export interface TrainerSlices {
  size: number;
  count: number;
  images: Float32Array;
  labels: Uint8Array;
}

/** One mini-batch of `n` slices [n, size, size]. */
export interface TrainerBatch {
  images: Float32Array;
  labels: Uint8Array;
  n: number;
}

export interface TrainerSampler {
  next(): TrainerBatch;
}

/**
 * `makeBatchSampler` of src/data/slices.ts (seeded; `augment` = the paper's on-the-fly augmentation),
 * e.g. `(set, o) => makeBatchSampler(set, { ...o, foregroundFraction: 0.5 })`. S is the slice-set
 * type the caller passes in JointData (src/data's SliceSet), handed back to the factory unchanged.
 */
export type SamplerFactory<S extends TrainerSlices = TrainerSlices> = (
  set: S,
  options: { batch: number; seed: number },
) => TrainerSampler;

/** What the trainer needs of one joint: training and validation slices and the label set. */
export interface JointData<S extends TrainerSlices = TrainerSlices> {
  train: S;
  val: S;
  labels: LabelSpec;
}

/* ------------------------------------------------------------------------------------------------
 * Configuration: resolved from the study config (src/study) and the MethodSpec
 * --------------------------------------------------------------------------------------------- */

export interface TrainerConfig {
  method: Method;
  /** Joints this trainer trains on (a site: its own; centralised: all), in canonical order. */
  joints: Joint[];
  /**
   * Label sets of the joints the heads serve (⊇ joints). Only the "shared" method's union head reads
   * the joints a trainer does not train (so that every site builds the same union head).
   */
  labels: Partial<Record<Joint, LabelSpec>>;
  /** Att-UNet / AE first-level filters and levels incl. bottleneck. */
  base: number;
  depth: number;
  /** Slice side in pixels; divisible by 2^(depth−1). */
  size: number;
  /** Seeds the initial weights (same seed ⇒ same Θ_0 everywhere) and the samplers. */
  seed: number;
  /** Slices drawn per joint in one step of each phase (the paper's batch split between joints). */
  batch: Record<Phase, number>;
  /** Adam learning rate of each phase (a federated round's instructions may override it). */
  lr: Record<Phase, number>;
  /** λ1, λ2, λ_SSC, λ3 and the contrastive temperature τ. */
  training: Pick<TrainingConfig, "lambdaAeMsc" | "lambdaMsc" | "lambdaSsc" | "lambdaMjap" | "tau" | "scales">;
}

/**
 * The trainer's settings for `joints` of a study: sizes and seed from `model`, per-joint batch
 * (perDomainBatch: batch / |study joints|), learning rates and loss weights from `training`.
 */
export function trainerConfig(
  study: StudyConfig,
  joints: readonly Joint[],
  labels: Partial<Record<Joint, LabelSpec>>,
): TrainerConfig {
  const t = study.training;
  return {
    method: study.method,
    joints: JOINTS.filter((j) => joints.includes(j)),
    labels,
    base: study.model.base,
    depth: study.model.depth,
    size: study.model.size,
    seed: study.seed,
    batch: { seg: perDomainBatch(study, "seg"), ae: perDomainBatch(study, "ae") },
    lr: { seg: t.seg.lr, ae: t.ae.lr },
    training: {
      lambdaAeMsc: t.lambdaAeMsc,
      lambdaMsc: t.lambdaMsc,
      lambdaSsc: t.lambdaSsc,
      lambdaMjap: t.lambdaMjap,
      tau: t.tau,
      scales: t.scales,
    },
  };
}

/* ------------------------------------------------------------------------------------------------
 * Results
 * --------------------------------------------------------------------------------------------- */

export interface TrainStepsOptions {
  steps: number;
  /** Adam learning rate for these steps (default: the phase's rate from the study config). */
  lr?: number;
  /** Other sites' per-scale embeddings: extra L_MSC negatives without gradient. */
  bank?: EmbeddingBank;
  /**
   * Called with each step's loss components (index from 0), in step order, as they are read back
   * from the device: one step behind the computation, every step before `trainSteps` resolves.
   */
  onStep?: (step: number, loss: LossComponents) => void;
}

export interface TrainStepsResult {
  /** Slices seen: steps × batch actually used. */
  samples: number;
  /** Means over the steps. */
  loss: LossComponents;
  /** Wall time spent in the steps, ms. */
  computeMs: number;
}

export interface ValidationResult {
  joint: Joint;
  /**
   * Dice per structure (label name → Dice), pooled over every validation slice (2·|P∩T| / (|P|+|T|)
   * over all pixels); background excluded; 1 when a structure is absent from both.
   */
  dice: Record<string, number>;
  /** Mean of `dice` over the structures. */
  mean: number;
  slices: number;
}

/* ------------------------------------------------------------------------------------------------
 * The trainer
 * --------------------------------------------------------------------------------------------- */

interface PhaseState {
  params: ParamStore;
  optimizer?: Adam;
  /** Samplers by `<stream>/<joint>`. */
  samplers: Map<string, TrainerSampler>;
}

const SCOPE_ALL: CheckpointScope = "all";

/**
 * Trains one multi-domain model (Att-UNet S and, for +mjap methods, the multi-joint auto-encoder
 * AE) on the slices of the joints it serves. The one training engine behind both centralised
 * `fedjoint train` (all joints) and the federated site-client (its own joint): the federation only
 * moves `sharedTensors` (Θ, every name `shared/…`) and embeddings; `domainTensors` (Γ_k: DSBN
 * γ/β and running statistics, output heads, AE input/output layers) never leave the trainer.
 *
 * Phases: "ae" (only for +mjap: L_CE + λ1·L_MSC on one-hot masks) then "seg" (L_CE [+ λ2·L_MSC |
 * + λ_SSC·L_SSC] [+ λ3·L_MJAP with F frozen]). Each phase has its own variables and Adam state.
 *
 * tf.memory().numTensors stays flat across `trainSteps`, `embeddings`, `validate`, `predictSlices`.
 */
export class SegmentationTrainer<S extends TrainerSlices = TrainerSlices> {
  readonly config: TrainerConfig;
  readonly net: AttUNet;
  readonly ae?: MultiJointAutoEncoder;
  /** The "shared" method's union label space (undefined for the other methods). */
  readonly union?: UnionLabels;
  private readonly spec: MethodSpec;
  private readonly phases = new Map<Phase, PhaseState>();
  private readonly log: Logger;
  private readonly makeSampler?: SamplerFactory<S>;
  private readonly data: Partial<Record<Joint, JointData<S>>>;
  private warnedInBatch = false;
  private disposed = false;

  /**
   * @param config   method, joints, labels, sizes, hyper-parameters (see `trainerConfig`)
   * @param data     training/validation slices of every joint in config.joints
   * @param options  `makeSampler`: src/data/slices.ts makeBatchSampler (required for trainSteps);
   *                 `log`: pino logger (the one-time in-batch-only L_MSC notice goes there)
   */
  constructor(
    config: TrainerConfig,
    data: Partial<Record<Joint, JointData<S>>>,
    options: { makeSampler?: SamplerFactory<S>; log?: Logger } = {},
  ) {
    validateConfig(config, data);
    this.config = { ...config, joints: [...config.joints] };
    this.spec = methodSpec(config.method);
    this.data = data;
    this.log = options.log ?? silentLogger;
    this.makeSampler = options.makeSampler;
    const net: NetSpec = {
      base: config.base,
      depth: config.depth,
      classes: Object.fromEntries(
        JOINTS.filter((j) => config.labels[j]).map((j) => [j, config.labels[j]!.classes]),
      ),
      sharedNorm: this.spec.sharedNorm,
    };
    if (net.sharedNorm) this.union = unionLabels(config.labels);
    const seg = new ParamStore(config.seed);
    this.net = new AttUNet(seg, { ...net, inChannels: 1 });
    this.net.build(config.joints);
    checkArchitecture(seg, attUNetVariables(net, config.joints), "att-unet");
    this.phases.set("seg", { params: seg, samplers: new Map() });
    if (this.spec.phases.includes("ae")) {
      const ae = new ParamStore(config.seed);
      this.ae = new MultiJointAutoEncoder(ae, net);
      this.ae.build(config.joints);
      checkArchitecture(ae, autoEncoderVariables(net, config.joints), "auto-encoder");
      this.phases.set("ae", { params: ae, samplers: new Map() });
    }
  }

  /** Phases this method trains, in order. */
  get phaseList(): Phase[] {
    return [...this.spec.phases];
  }

  /** Number of scales of both networks (2·depth − 1). */
  get scaleCount(): number {
    return this.net.dims.length;
  }

  /** Slices per inference forward pass (`predictSlices`): the segmentation step's batch. */
  get inferenceChunk(): number {
    return this.chunkSize("seg");
  }

  /** L_MSC scale indices of a phase ([] when the phase has no contrastive term). */
  contrastiveScales(phase: Phase): number[] {
    const term = this.spec.phase[phase].contrastive;
    return term ? contrastiveScales(term, this.config.depth, this.config.training.scales) : [];
  }

  /** Weight of the contrastive term of a phase (λ1, λ2, λ_SSC, or 0). */
  contrastiveWeight(phase: Phase): number {
    const term = this.spec.phase[phase].contrastive;
    return term ? this.config.training[term.weight] : 0;
  }

  /** The parameter store of a phase (throws for "ae" when the method has no auto-encoder). */
  paramsOf(phase: Phase): ParamStore {
    return this.state(phase).params;
  }

  /** Θ of a phase: every `shared/…` variable (trainable or running statistics), copied out. */
  sharedTensors(phase: Phase): Promise<NamedTensor[]> {
    const p = this.paramsOf(phase);
    return p.read(p.names((n) => isShared(n)));
  }

  /**
   * Replaces Θ of a phase (e.g. the aggregate of a federated round). The set must be exactly this
   * phase's shared variables with the same shapes; otherwise a ModelError names the first problem
   * and nothing is written. The optimiser state is kept.
   */
  setSharedTensors(phase: Phase, tensors: readonly NamedTensor[]): void {
    const p = this.paramsOf(phase);
    this.replace(
      p,
      `${phase} shared tensors`,
      tensors,
      p.names((n) => isShared(n)),
    );
  }

  /** Γ of a phase for the joints served: DSBN γ/β/running stats, heads, AE input/output layers. */
  domainTensors(phase: Phase): Promise<NamedTensor[]> {
    const p = this.paramsOf(phase);
    return p.read(p.names((n) => !isShared(n)));
  }

  setDomainTensors(phase: Phase, tensors: readonly NamedTensor[]): void {
    const p = this.paramsOf(phase);
    this.replace(
      p,
      `${phase} domain tensors`,
      tensors,
      p.names((n) => !isShared(n)),
    );
  }

  /**
   * Re-estimates the served joints' DSBN running statistics for the current Θ: `batches` forward
   * passes in training mode (no gradient, no optimiser) over training batches, the running mean
   * and variance set to the average of their batch statistics. In a federation Θ changes at every
   * aggregation while the running statistics were accumulated under the site's previous weights;
   * validating, evaluating or embedding without this normalises with stale statistics.
   */
  recalibrateNorms(phase: Phase, batches = 8): void {
    this.alive();
    const per = this.perJoint(phase);
    const groups = this.config.joints.map((joint) => ({ joint, count: per }));
    for (let i = 0; i < batches; i++) {
      const batch = this.drawBatch(phase, per, "recalibrate");
      tf.tidy(() => {
        const ctx: ForwardContext = { groups, training: true, statUpdates: [], statMomentum: 1 / (i + 1) };
        if (phase === "ae") this.ae!.apply(this.oneHots(batch.labels, phase), ctx);
        else {
          const x = tf.tensor4d(batch.images, [per * groups.length, this.config.size, this.config.size, 1]);
          this.net.apply(x, ctx);
        }
        applyStatUpdates(ctx);
      });
      tf.dispose(batch.labels);
    }
  }

  /**
   * Runs `steps` Adam steps of a phase. Each step draws batch/|joints| slices per joint (domain
   * groups contiguous), computes the phase's loss, steps the optimiser on this phase's trainable
   * variables and then applies the DSBN running-statistics updates. Yields to the event loop
   * between steps; the step's losses are read back asynchronously while the next step is queued
   * (no synchronous device read inside a step). With L_MSC active, one domain and no bank, the
   * loss reduces to in-batch terms (every pair positive); that is logged once per trainer.
   */
  async trainSteps(phase: Phase, options: TrainStepsOptions): Promise<TrainStepsResult> {
    this.alive();
    const st = this.state(phase);
    st.optimizer ??= new Adam(this.config.lr[phase]);
    const optimizer = st.optimizer;
    optimizer.learningRate = options.lr ?? this.config.lr[phase];
    const per = this.perJoint(phase);
    const joints = this.config.joints;
    const scales = this.contrastiveScales(phase);
    const wMsc = this.contrastiveWeight(phase);
    const useMsc = wMsc > 0 && scales.length > 0;
    const useMjap = this.spec.phase[phase].mjap;
    const bank = useMsc ? this.bankTensors(options.bank, scales) : undefined;
    if (useMsc && joints.length === 1 && (!bank || bank.size === 0) && !this.warnedInBatch) {
      this.warnedInBatch = true;
      this.log.warn(
        { phase, joint: joints[0] },
        "L_MSC has one domain and no embedding bank: in-batch terms only (every pair is a positive, no negatives)",
      );
    }
    const vars = st.params.trainable();
    const domains = Int32Array.from(joints.flatMap((j) => Array<number>(per).fill(JOINTS.indexOf(j))));
    const groups = joints.map((joint) => ({ joint, count: per }));
    const sums = { total: 0, ce: 0, msc: 0, mjap: 0 };
    const losses = new ReadBehind<number>((values, step) => {
      const loss: LossComponents = { total: values[0], ce: values[1] };
      let k = 2;
      if (useMsc) loss.msc = values[k++];
      if (useMjap) loss.mjap = values[k++];
      if (!Number.isFinite(loss.total)) {
        throw fjError("FJ_MODEL_DIVERGED", `${phase} loss became ${loss.total} at step ${step}`);
      }
      sums.total += loss.total;
      sums.ce += loss.ce;
      sums.msc += loss.msc ?? 0;
      sums.mjap += loss.mjap ?? 0;
      options.onStep?.(step, loss);
    });
    const t0 = performance.now();
    try {
      for (let step = 0; step < options.steps; step++) {
        const batch = this.drawBatch(phase, per);
        const ctx: ForwardContext = { groups, training: true, statUpdates: [] };
        const parts: tf.Scalar[] = [];
        const cost = optimizer.minimize(
          () => {
            const labels = batch.labels;
            let ce: tf.Scalar;
            let embeddings: tf.Tensor2D[] | undefined;
            let mjap: tf.Scalar | undefined;
            if (phase === "ae") {
              const out = this.ae!.apply(this.oneHots(labels, phase), ctx, { embeddings: useMsc });
              ce = domainCrossEntropy(out.logits, labels);
              embeddings = out.embeddings;
            } else {
              const x = tf.tensor4d(batch.images, [
                per * joints.length,
                this.config.size,
                this.config.size,
                1,
              ]);
              const out = this.net.apply(x, ctx, { embeddings: useMsc });
              ce = domainCrossEntropy(out.logits, labels);
              embeddings = out.embeddings;
              if (useMjap) {
                const fctx: ForwardContext = { groups, training: false, statUpdates: [] };
                const pred = this.ae!.encode(
                  out.logits.map((l) => tf.softmax(l) as tf.Tensor4D),
                  fctx,
                ).code;
                const truth = this.ae!.encode(this.oneHots(labels, phase), fctx).code;
                mjap = anatomicalPriorLoss(this.splitGroups(truth, groups), this.splitGroups(pred, groups));
              }
            }
            let total: tf.Scalar = ce;
            parts.push(tf.keep(ce.clone()));
            if (useMsc && embeddings) {
              const msc = multiScaleContrastive(embeddings, domains, {
                tau: this.config.training.tau,
                scales,
                bank,
              });
              total = tf.add(total, tf.mul(msc, wMsc));
              parts.push(tf.keep(msc.clone()));
            }
            if (mjap) {
              total = tf.add(total, tf.mul(mjap, this.config.training.lambdaMjap));
              parts.push(tf.keep(mjap.clone()));
            }
            return total;
          },
          true,
          vars,
        );
        applyStatUpdates(ctx);
        tf.dispose(batch.labels);
        // [total, ce, msc?, mjap?] in one tensor, read while the next step is queued.
        const packed = tf.tidy(() => tf.stack([cost ?? tf.scalar(Number.NaN), ...parts]));
        tf.dispose([...parts, ...(cost ? [cost] : [])]);
        await losses.push(packed, step);
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      await losses.drain();
    } finally {
      await losses.drain().catch(() => undefined);
      if (bank) for (const b of bank.values()) b.vectors.dispose();
    }
    const n = Math.max(options.steps, 1);
    const loss: LossComponents = { total: sums.total / n, ce: sums.ce / n };
    if (useMsc) loss.msc = sums.msc / n;
    if (useMjap) loss.mjap = sums.mjap / n;
    return { samples: options.steps * per * joints.length, loss, computeMs: performance.now() - t0 };
  }

  /**
   * Per-scale unit vectors z_s of `count` random training slices of each joint served (inference
   * statistics, no gradient), for the cross-site bank. Vectors are in random order and carry no
   * slice or exam index; `domains` holds JOINTS.indexOf(joint). All 2·depth−1 scales.
   */
  async embeddings(phase: Phase, options: { count: number; seed: number }): Promise<EmbeddingBank> {
    this.alive();
    const dims = this.net.dims;
    const chunks: Float32Array[][] = dims.map(() => []);
    const doms: number[] = [];
    const rand = mulberry32(options.seed);
    // One read per chunk: every scale's [n, dim] vectors flattened end to end.
    const reads = new ReadBehind<{ n: number; domain: number }>((flat, { n, domain }) => {
      let o = 0;
      for (const [s, dim] of dims.entries()) {
        chunks[s].push((flat as Float32Array).subarray(o, o + n * dim));
        o += n * dim;
      }
      for (let i = 0; i < n; i++) doms.push(domain);
    });
    for (const joint of this.config.joints) {
      const set = this.jointData(joint).train;
      const order = shuffle(
        Int32Array.from({ length: set.count }, (_, i) => i),
        rand,
      );
      const picked = Array.from({ length: options.count }, (_, i) => order[i % order.length]);
      const chunk = this.chunkSize(phase);
      for (let s = 0; s < picked.length; s += chunk) {
        const idx = picked.slice(s, s + chunk);
        const { images, labels } = gather(set, idx);
        const flat = tf.tidy(() => {
          const ctx: ForwardContext = {
            groups: [{ joint, count: idx.length }],
            training: false,
            statUpdates: [],
          };
          const emb =
            phase === "ae"
              ? this.ae!.apply(this.oneHotsOf([labels], [joint], [idx.length]), ctx, { embeddings: true })
                  .embeddings!
              : this.net.apply(tf.tensor4d(images, [idx.length, set.size, set.size, 1]), ctx, {
                  embeddings: true,
                }).embeddings!;
          return tf.concat(emb.map((e) => e.reshape([-1])));
        });
        await reads.push(flat, { n: idx.length, domain: JOINTS.indexOf(joint) });
      }
    }
    await reads.drain();
    const total = doms.length;
    // One shuffle shared by every scale, so that vector i of each scale is the same slice.
    const perm = shuffle(
      Int32Array.from({ length: total }, (_, i) => i),
      rand,
    );
    return {
      scales: dims.map((dim, s) => {
        const flat = concatF32(chunks[s]);
        const vectors = new Float32Array(total * dim);
        const domains = new Int32Array(total);
        for (let i = 0; i < total; i++) {
          vectors.set(flat.subarray(perm[i] * dim, (perm[i] + 1) * dim), i * dim);
          domains[i] = doms[perm[i]];
        }
        return { scale: s, dim, vectors, count: total, domains };
      }),
    };
  }

  /** Argmax labels [count, size, size] of the segmentation network for slices of `joint` (inference). */
  async predictSlices(joint: Joint, images: Float32Array): Promise<Uint8Array> {
    this.alive();
    this.jointLabels(joint);
    const size = this.config.size;
    const count = images.length / (size * size);
    if (!Number.isInteger(count)) {
      throw fjError(
        "FJ_MODEL_SHAPE",
        `predictSlices: ${images.length} values is not a whole number of ${size}×${size} slices`,
      );
    }
    const out = new Uint8Array(images.length);
    const union = this.union;
    const off = union?.offset[joint] ?? 0;
    const c = this.jointLabels(joint).classes;
    // Chunk k's argmax is read while chunk k+1 is queued.
    const reads = new ReadBehind<number>((values, base) => {
      if (union) {
        for (let i = 0; i < values.length; i++) {
          const u = values[i];
          out[base + i] = u > off && u < off + c ? u - off : 0;
        }
      } else {
        out.set(values, base);
      }
    });
    const chunk = this.chunkSize("seg");
    for (let s = 0; s < count; s += chunk) {
      const n = Math.min(chunk, count - s);
      const arg = tf.tidy(() => {
        const x = tf.tensor4d(images.subarray(s * size * size, (s + n) * size * size), [n, size, size, 1]);
        const ctx: ForwardContext = { groups: [{ joint, count: n }], training: false, statUpdates: [] };
        return tf.argMax(this.net.apply(x, ctx).logits[0], 3);
      });
      await reads.push(arg, s * size * size);
    }
    await reads.drain();
    return out;
  }

  /** Dice per structure on the validation slices of `joint`, pooled over all its slices. */
  async validate(joint: Joint): Promise<ValidationResult> {
    const data = this.jointData(joint);
    if (data.val.count === 0) throw fjError("FJ_MODEL_NO_VALIDATION", `${joint} has no validation slices`);
    const pred = await this.predictSlices(joint, data.val.images);
    const spec = data.labels;
    const inter = new Float64Array(spec.classes);
    const sumP = new Float64Array(spec.classes);
    const sumT = new Float64Array(spec.classes);
    const truth = data.val.labels;
    for (let i = 0; i < truth.length; i++) {
      const t = truth[i];
      const p = pred[i];
      sumT[t]++;
      sumP[p]++;
      if (t === p) inter[t]++;
    }
    const dice: Record<string, number> = {};
    let sum = 0;
    for (let c = 1; c < spec.classes; c++) {
      const d = sumT[c] + sumP[c] === 0 ? 1 : (2 * inter[c]) / (sumT[c] + sumP[c]);
      dice[spec.names[c]] = d;
      sum += d;
    }
    return { joint, dice, mean: sum / (spec.classes - 1), slices: data.val.count };
  }

  /**
   * Saves the variables of both phases that fall in `scope` (all | shared | {domain}) as a
   * checkpoint directory (format in ./checkpoint.ts: names, shapes, dtypes, SHA-256; atomic).
   */
  async saveCheckpoint(dir: string, scope: CheckpointScope = SCOPE_ALL, meta: Record<string, unknown> = {}) {
    this.alive();
    const tensors = (
      await Promise.all(
        [...this.phases.values()].map((st) => st.params.read(st.params.names((n) => inScope(n, scope)))),
      )
    ).flat();
    return writeCheckpoint(dir, tensors, scope, {
      method: this.config.method,
      base: this.config.base,
      depth: this.config.depth,
      size: this.config.size,
      joints: this.config.joints,
      ...meta,
    });
  }

  /**
   * Loads a checkpoint written by `saveCheckpoint` (any scope). Every tensor must exist in this
   * model with the same shape, and every variable of the checkpoint's scope must be present
   * (for a domain scope: of the joints this trainer holds); otherwise a ModelError, nothing written.
   */
  async loadCheckpoint(dir: string): Promise<CheckpointManifest> {
    this.alive();
    const { manifest, tensors } = await readCheckpoint(dir);
    const scope: CheckpointScope =
      manifest.scope === "all" || manifest.scope === "shared"
        ? manifest.scope
        : { domain: manifest.scope.slice("domain:".length) as Joint };
    const expected = new Map<string, number[]>();
    for (const st of this.phases.values())
      for (const n of st.params.names()) expected.set(n, [...st.params.get(n).shape]);
    checkAgainst(`${dir} (scope ${scopeLabel(scope)})`, tensors, expected, scope);
    for (const st of this.phases.values()) {
      const mine = tensors.filter((t) => st.params.has(t.name));
      if (mine.length > 0) st.params.write(mine);
    }
    return manifest;
  }

  /** Parameter counts of the segmentation network (or AE): Θ and Γ_k per joint served. */
  parameterCounts(phase: Phase = "seg"): { shared: number; domain: Partial<Record<Joint, number>> } {
    const p = this.paramsOf(phase);
    const shared = p.count(p.names((_, s, t) => t && s === "shared"));
    const domain: Partial<Record<Joint, number>> = {};
    for (const j of this.config.joints) {
      domain[j] = p.count(p.names((_, s, t) => t && s !== "shared" && s.domain === j));
    }
    return { shared, domain };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const st of this.phases.values()) {
      st.optimizer?.dispose();
      st.params.dispose();
    }
    this.phases.clear();
  }

  /* ------------------------------------------------------------------------------------------ */

  private alive(): void {
    if (this.disposed) throw fjError("FJ_MODEL_DISPOSED", "the trainer was disposed");
  }

  private state(phase: Phase): PhaseState {
    this.alive();
    const st = this.phases.get(phase);
    if (!st) throw fjError("FJ_MODEL_PHASE", `method ${this.config.method} has no '${phase}' phase`);
    return st;
  }

  private replace(p: ParamStore, what: string, tensors: readonly NamedTensor[], names: string[]): void {
    const want = new Set(names);
    const got = new Set<string>();
    for (const t of tensors) {
      if (!want.has(t.name))
        throw fjError("FJ_MODEL_UNKNOWN_VARIABLE", `${what}: ${t.name} is not one of them`);
      if (got.has(t.name)) throw fjError("FJ_MODEL_CHECKPOINT", `${what}: ${t.name} appears twice`);
      got.add(t.name);
    }
    const missing = names.find((n) => !got.has(n));
    if (missing)
      throw fjError(
        "FJ_MODEL_MISSING_VARIABLE",
        `${what}: ${missing} is missing (${got.size}/${want.size} given)`,
      );
    p.write([...tensors]);
  }

  private jointData(joint: Joint): JointData<S> {
    const d = this.data[joint];
    if (!d || !this.config.joints.includes(joint)) {
      throw fjError("FJ_MODEL_JOINT", `this trainer serves ${this.config.joints.join(", ")}, not ${joint}`);
    }
    return d;
  }

  private jointLabels(joint: Joint): LabelSpec {
    return this.jointData(joint).labels;
  }

  private perJoint(phase: Phase): number {
    return this.config.batch[phase];
  }

  private chunkSize(phase: Phase): number {
    return Math.max(this.perJoint(phase) * this.config.joints.length, 1);
  }

  /**
   * Draws per-joint batches and assembles one domain-grouped batch (labels as int32 tensors). Each
   * (stream, phase, joint) has its own seeded sampler, so recalibrating DSBN statistics never moves
   * the training batches: the same seed gives the same training batches at a site and centrally.
   */
  private drawBatch(
    phase: Phase,
    per: number,
    stream: "train" | "recalibrate" = "train",
  ): { images: Float32Array; labels: tf.Tensor3D[] } {
    if (!this.makeSampler) {
      throw fjError(
        "FJ_MODEL_SAMPLER",
        "SegmentationTrainer needs options.makeSampler (src/data/slices.ts makeBatchSampler) to train",
      );
    }
    const st = this.state(phase);
    const size = this.config.size;
    const px = size * size;
    const joints = this.config.joints;
    const images = new Float32Array(per * joints.length * px);
    const labels: tf.Tensor3D[] = [];
    joints.forEach((joint, k) => {
      let sampler = st.samplers.get(`${stream}/${joint}`);
      if (!sampler) {
        const seed = hashSeed("fedjoint-sampler", stream, this.config.seed, phase, joint);
        sampler = this.makeSampler!(this.jointData(joint).train, { batch: per, seed });
        st.samplers.set(`${stream}/${joint}`, sampler);
      }
      const b = sampler.next();
      if (b.n !== per || b.images.length !== per * px || b.labels.length !== per * px) {
        throw fjError(
          "FJ_MODEL_BATCH",
          `sampler for ${joint} returned ${b.n} slices of ${b.images.length / Math.max(b.n, 1)} pixels, expected ${per} of ${px}`,
        );
      }
      images.set(b.images, k * per * px);
      labels.push(tf.tensor3d(this.labelValues(joint, b.labels), [per, size, size], "int32"));
    });
    return { images, labels };
  }

  /** Label values as int32, mapped into the union space for the "shared" method. */
  private labelValues(joint: Joint, labels: Uint8Array): Int32Array {
    const out = Int32Array.from(labels);
    if (this.union) {
      const off = this.union.offset[joint]!;
      for (let i = 0; i < out.length; i++) if (out[i] > 0) out[i] += off;
    }
    return out;
  }

  private classesIn(joint: Joint): number {
    return this.union ? this.union.classes : this.jointLabels(joint).classes;
  }

  /** One-hot masks per domain group from int32 label tensors. */
  private oneHots(labels: tf.Tensor3D[], _phase: Phase): tf.Tensor4D[] {
    return labels.map((l, k) => oneHotFloat<tf.Rank.R4>(l, this.classesIn(this.config.joints[k])));
  }

  private oneHotsOf(labels: Uint8Array[], joints: Joint[], counts: number[]): tf.Tensor4D[] {
    const size = this.config.size;
    return labels.map((l, k) => {
      const t = tf.tensor3d(this.labelValues(joints[k], l), [counts[k], size, size], "int32");
      return oneHotFloat<tf.Rank.R4>(t, this.classesIn(joints[k]));
    });
  }

  private splitGroups(x: tf.Tensor4D, groups: { count: number }[]): tf.Tensor4D[] {
    if (groups.length === 1) return [x];
    return tf.split(
      x,
      groups.map((g) => g.count),
      0,
    ) as tf.Tensor4D[];
  }

  private bankTensors(bank: EmbeddingBank | undefined, scales: number[]): Map<number, BankScale> | undefined {
    if (!bank) return undefined;
    const map = new Map<number, BankScale>();
    for (const s of bank.scales) {
      if (!scales.includes(s.scale) || s.count === 0) continue;
      const dim = this.net.dims[s.scale];
      if (s.dim !== dim || s.vectors.length !== s.count * dim || s.domains.length !== s.count) {
        throw fjError(
          "FJ_MODEL_BANK",
          `embedding bank scale ${s.scale}: ${s.count} vectors of dim ${s.dim} (${s.vectors.length} values), this network expects dim ${dim}`,
        );
      }
      map.set(s.scale, { vectors: tf.tensor2d(s.vectors, [s.count, dim]), domains: s.domains });
    }
    return map;
  }
}

function validateConfig(config: TrainerConfig, data: Partial<Record<Joint, JointData>>): void {
  const fail = (msg: string) => {
    throw fjError("FJ_MODEL_CONFIG", msg);
  };
  if (config.joints.length === 0) fail("trainer config: joints is empty");
  if (new Set(config.joints).size !== config.joints.length)
    fail(`trainer config: joints repeat (${config.joints.join(",")})`);
  if (!methodSpec(config.method).pooled && config.joints.length !== 1) {
    fail(
      `method ${config.method} trains one joint per model, got ${config.joints.join(",")} (build one trainer per joint)`,
    );
  }
  if (config.depth < 2) fail(`depth is ${config.depth}, expected ≥ 2`);
  if (config.size % 2 ** (config.depth - 1) !== 0)
    fail(`size ${config.size} must be divisible by 2^(depth−1) = ${2 ** (config.depth - 1)}`);
  for (const j of config.joints) {
    const d = data[j];
    const spec = config.labels[j];
    if (!spec) fail(`labels of ${j} are missing from the config`);
    if (!d) fail(`no data for ${j}`);
    for (const [part, set] of [
      ["train", d!.train],
      ["val", d!.val],
    ] as const) {
      if (set.size !== config.size)
        fail(`${j} ${part} slices are ${set.size}×${set.size}, the model expects ${config.size}`);
      if (set.images.length !== set.count * set.size * set.size || set.labels.length !== set.images.length) {
        fail(
          `${j} ${part}: ${set.count} slices of ${set.size}² do not match ${set.images.length} image / ${set.labels.length} label values`,
        );
      }
      if (set.count === 0 && part === "train") fail(`${j} has no training slices`);
      for (let i = 0; i < set.labels.length; i++) {
        if (set.labels[i] >= spec!.classes) {
          fail(
            `${j} ${part} label value ${set.labels[i]} is outside 0..${spec!.classes - 1} (${spec!.names.join(", ")})`,
          );
        }
      }
    }
  }
  const n = (config.training.scales ?? []).find(
    (s) => !Number.isInteger(s) || s < 0 || s >= 2 * config.depth - 1,
  );
  if (n !== undefined)
    fail(`scale ${n} does not exist: depth ${config.depth} has scales 0..${2 * config.depth - 2}`);
  if (!(config.training.tau > 0)) fail(`tau is ${config.training.tau}, expected > 0`);
  for (const phase of ["seg", "ae"] as const) {
    if (!(Number.isInteger(config.batch[phase]) && config.batch[phase] >= 1))
      fail(`${phase} batch per joint is ${config.batch[phase]}, expected an integer ≥ 1`);
  }
}

/**
 * The variables the layers created must be exactly the architecture's (./architecture.ts), which
 * the coordinator uses as the tensor schema and Θ_0 without building the network.
 */
function checkArchitecture(params: ParamStore, specs: readonly VariableSpec[], what: string): void {
  const built = new Map(params.specs().map((v) => [v.name, v]));
  for (const v of specs) {
    const b = built.get(v.name);
    if (!b || b.shape.join() !== v.shape.join() || b.trainable !== v.trainable) {
      throw fjError(
        "FJ_MODEL_ARCHITECTURE",
        `${what}: ${v.name} [${v.shape}] of the architecture ${b ? `was built as [${b.shape}]` : "was not built"}`,
      );
    }
    built.delete(v.name);
  }
  const extra = [...built.keys()][0];
  if (extra !== undefined)
    throw fjError("FJ_MODEL_ARCHITECTURE", `${what}: ${extra} is not in the architecture`);
}

function gather(set: TrainerSlices, idx: number[]): { images: Float32Array; labels: Uint8Array } {
  const px = set.size * set.size;
  const images = new Float32Array(idx.length * px);
  const labels = new Uint8Array(idx.length * px);
  idx.forEach((i, k) => {
    images.set(set.images.subarray(i * px, (i + 1) * px), k * px);
    labels.set(set.labels.subarray(i * px, (i + 1) * px), k * px);
  });
  return { images, labels };
}

function concatF32(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
