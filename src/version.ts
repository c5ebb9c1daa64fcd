import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * fedjoint's version, read once from the package's own package.json (one level above src/ or
 * dist/), so that what a model directory or a Join message records is the installed version.
 */
function readVersion(): string {
  const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "package.json");
  const pkg = JSON.parse(readFileSync(file, "utf8")) as { version?: unknown };
  if (typeof pkg.version !== "string") throw new Error(`${file} has no version`);
  return pkg.version;
}

export const FEDJOINT_VERSION: string = readVersion();
