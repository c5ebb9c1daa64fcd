/**
 * The global models of a study on disk and in memory: for each (fold, phase) the latest Θ after
 * `rounds` aggregations (round 0: the seeded Θ_0), in a model file of the state directory, with
 * its wire encoding cached so that N sites pulling the same model cost one encoding. Only a few
 * models stay in memory (the current phase's, the fold's final AE, finished folds awaiting
 * evaluation are reloaded from their files on demand): memory O(|Θ|), not O(folds · |Θ|).
 */
import type { NamedTensor } from "../model/api.js";
import {
  type EncodedTensorSet,
  encodeTensorSet,
  packTensorSet,
  type WireDtype,
} from "../protocol/tensors.js";
import type { Phase } from "../study/methods.js";
import { type StateStore, unpackStateFile } from "./store.js";

export interface ModelRecord {
  rounds: number;
  file: string;
  /** SHA-256 of the file, checked whenever it is read back. */
  sha256: string;
}

interface Cached extends ModelRecord {
  tensors: NamedTensor[];
  encoded?: EncodedTensorSet;
}

const keyOf = (fold: number, phase: Phase) => `${fold}/${phase}`;
const KEEP_IN_MEMORY = 3;

export class GlobalModels {
  private readonly cache = new Map<string, Cached>();

  constructor(
    private readonly store: StateStore,
    private readonly dtype: WireDtype,
    /** The persisted records (the Study's state.models), updated in place by `put`. */
    private readonly records: Record<string, ModelRecord>,
  ) {}

  /** Rounds aggregated into the stored model of (fold, phase), or undefined when there is none. */
  rounds(fold: number, phase: Phase): number | undefined {
    return this.records[keyOf(fold, phase)]?.rounds;
  }

  /** Writes Θ of (fold, phase) after `rounds` aggregations (atomic, fsync'ed) and records it. */
  async put(fold: number, phase: Phase, rounds: number, tensors: NamedTensor[]): Promise<void> {
    const file = `model-${fold}-${phase}-${rounds}.bin`;
    const sha256 = await this.store.writeAtomic(file, packTensorSet(tensors));
    const key = keyOf(fold, phase);
    this.records[key] = { rounds, file, sha256 };
    this.remember(key, { rounds, file, sha256, tensors });
  }

  /** Θ of (fold, phase) (throws when there is none; callers check `rounds` first). */
  async tensors(fold: number, phase: Phase): Promise<NamedTensor[]> {
    return (await this.load(fold, phase)).tensors;
  }

  /** The wire encoding of Θ of (fold, phase). */
  async encoded(fold: number, phase: Phase): Promise<EncodedTensorSet> {
    const m = await this.load(fold, phase);
    m.encoded ??= encodeTensorSet(m.tensors, this.dtype);
    return m.encoded;
  }

  /**
   * Reads every recorded model file back and checks its SHA-256 and tensor format (resume): a
   * damaged file is one FJ_COORD_STATE error naming it, before the study goes on.
   */
  async verifyAll(): Promise<void> {
    for (const record of Object.values(this.records)) await this.decode(record);
  }

  /** Files that must be kept (the others are swept). */
  files(): string[] {
    return Object.values(this.records).map((r) => r.file);
  }

  private async load(fold: number, phase: Phase): Promise<Cached> {
    const key = keyOf(fold, phase);
    const record = this.records[key];
    if (!record) throw new RangeError(`no model for fold ${fold} ${phase}`);
    const hit = this.cache.get(key);
    if (hit && hit.file === record.file) return hit;
    return this.remember(key, { ...record, tensors: await this.decode(record) });
  }

  private async decode(record: ModelRecord): Promise<NamedTensor[]> {
    const buf = await this.store.readVerified(record.file, record.sha256);
    return unpackStateFile(buf, this.store.file(record.file));
  }

  private remember(key: string, entry: Cached): Cached {
    this.cache.delete(key);
    this.cache.set(key, entry);
    while (this.cache.size > KEEP_IN_MEMORY) this.cache.delete(this.cache.keys().next().value as string);
    return entry;
  }
}
