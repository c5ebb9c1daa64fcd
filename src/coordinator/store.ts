/**
 * The coordinator's state directory: state.json (the study state) and the .bin files it names
 * (models, strategy state, the open round's aggregator, embedding banks). Every file is written
 * atomically and its SHA-256 returned, so the state can record it; a file read back is checked
 * against the recorded digest, and any damage — missing, unreadable, altered — is one
 * FJ_COORD_STATE error naming the file.
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../atomic-write.js";
import { FedjointError, fjError } from "../errors.js";
import type { NamedTensor } from "../model/api.js";
import { unpackTensorSet } from "../protocol/tensors.js";

/** File names the state may refer to: plain names inside the directory, nothing else. */
export const STATE_FILE_PATTERN = /^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,200}\.bin$/;

export function sha256Of(data: Uint8Array | string | readonly Uint8Array[]): string {
  const h = createHash("sha256");
  if (Array.isArray(data)) for (const part of data) h.update(part);
  else h.update(data as Uint8Array | string);
  return h.digest("hex");
}

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
   * Temp file + rename: atomic against the process being killed at any point. With `sync` the data
   * is also fsync'ed before the rename (durable against power loss); the study syncs every
   * aggregation and leaves per-update snapshots to the page cache (rename only). Returns the
   * file's SHA-256 (hex).
   */
  async writeAtomic(name: string, data: Uint8Array | string | Uint8Array[], sync = true): Promise<string> {
    await writeFileAtomic(this.file(name), data, { sync });
    return sha256Of(data);
  }

  /** A file the state refers to, checked against its recorded SHA-256. */
  async readVerified(name: string, sha256: string): Promise<Buffer> {
    if (!STATE_FILE_PATTERN.test(name)) {
      throw fjError(
        "FJ_COORD_STATE",
        `${this.file("state.json")}: refers to '${name}', not a state file name`,
      );
    }
    let buf: Buffer;
    try {
      buf = await readFile(this.file(name));
    } catch (err) {
      throw fjError(
        "FJ_COORD_STATE",
        `${this.file(name)}: cannot read (${(err as NodeJS.ErrnoException).code ?? "error"}), state.json refers to it`,
      );
    }
    const got = sha256Of(buf);
    if (got !== sha256) {
      throw fjError(
        "FJ_COORD_STATE",
        `${this.file(name)}: SHA-256 ${got.slice(0, 12)}… differs from the ${sha256.slice(0, 12)}… state.json recorded (the file is damaged)`,
      );
    }
    return buf;
  }

  async readState(): Promise<unknown> {
    let text: string;
    try {
      text = await readFile(this.file("state.json"), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw fjError(
        "FJ_COORD_STATE",
        `${this.file("state.json")}: cannot read (${(err as NodeJS.ErrnoException).code ?? "error"})`,
      );
    }
    try {
      return JSON.parse(text) as unknown;
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

/** A tensor file of the state directory decoded; a format error is FJ_COORD_STATE naming the file. */
export function unpackStateFile(buf: Buffer, file: string): NamedTensor[] {
  try {
    return unpackTensorSet(buf, file);
  } catch (err) {
    if (err instanceof FedjointError) throw fjError("FJ_COORD_STATE", err.message, { cause: err });
    throw err;
  }
}
