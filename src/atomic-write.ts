import { randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";

/**
 * Writes a file atomically: a temporary file next to it, then rename, so a reader (or a process
 * restarted after a kill) sees the old file or the new one, never half of one. With `sync` the data
 * is fsync'ed before the rename (durable against power loss too). `mode` sets the permissions of
 * the new file (e.g. 0o600 for private keys).
 */
export async function writeFileAtomic(
  file: string,
  data: Uint8Array | string | Uint8Array[],
  options: { sync?: boolean; mode?: number } = {},
): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    const fh = await open(tmp, "w", options.mode ?? 0o644);
    try {
      if (Array.isArray(data)) {
        for (const part of data) await fh.write(part);
      } else await fh.writeFile(data);
      if (options.sync) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
