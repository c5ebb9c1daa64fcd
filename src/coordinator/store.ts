import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../atomic-write.js";
import { fjError } from "../errors.js";

export class StateStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  file(name: string): string {
    return path.join(this.dir, name);
  }

  /**
   * Temp file + rename: atomic against the process being killed at any point. With `sync` the
   * data is also fsync'ed before the rename (durable against power loss); the study syncs every
   * aggregation and leaves per-update snapshots to the page cache (rename only).
   */
  async writeAtomic(name: string, data: Uint8Array | string | Uint8Array[], sync = true): Promise<void> {
    await writeFileAtomic(this.file(name), data, { sync });
  }

  async read(name: string): Promise<Buffer> {
    return readFile(this.file(name));
  }

  async readState<T>(): Promise<T | undefined> {
    let text: string;
    try {
      text = await readFile(this.file("state.json"), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw fjError(
        "FJ_COORD_STATE",
        `${this.file("state.json")}: corrupt JSON, expected a coordinator state`,
        {
          cause: err,
        },
      );
    }
  }

  /** Deletes every .bin file (and stale temp file) not in `keep`. */
  async sweep(keep: ReadonlySet<string>): Promise<void> {
    const entries = await readdir(this.dir);
    await Promise.all(
      entries
        .filter((e) => (e.endsWith(".bin") && !keep.has(e)) || e.includes(".tmp-"))
        .map((e) => rm(path.join(this.dir, e), { force: true })),
    );
  }
}
