/**
 * The site's own state directory: Γ_k (DSBN, heads, AE input/output layers) checkpointed after
 * every round via the trainer's checkpoint format, and a small progress file. This is how a
 * restarted site-client resumes; nothing in it is ever sent.
 */
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../atomic-write.js";

export interface SiteProgress {
  site: string;
  fold: number;
  /** Last (phase, round) this site pushed in `fold`. */
  phase?: string;
  round?: number;
  /** Checkpoint directory (relative to the state dir) of Γ_k for `fold`. */
  checkpoint?: string;
  evaluated: number[];
}

export class SiteState {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  async read(): Promise<SiteProgress | undefined> {
    try {
      return JSON.parse(await readFile(path.join(this.dir, "progress.json"), "utf8")) as SiteProgress;
    } catch {
      return undefined;
    }
  }

  async write(p: SiteProgress): Promise<void> {
    await writeFileAtomic(path.join(this.dir, "progress.json"), `${JSON.stringify(p)}\n`);
  }

  checkpointDir(fold: number): string {
    return path.join(this.dir, `gamma-fold${fold}`);
  }

  /** The site's model to use (src/model/model-dir.ts), written after the last fold's evaluation. */
  modelDir(): string {
    return path.join(this.dir, "model");
  }
}
