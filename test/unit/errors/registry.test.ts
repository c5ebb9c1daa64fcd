/**
 * The error registry (src/errors.ts) is the one declaration of every FJ_ code: no code is used that
 * the registry lacks, and the registry holds no code that nothing uses.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { Command, runProgram } from "../../../src/cli/run.js";
import {
  DataError,
  EnvironmentError,
  ERRORS,
  EXIT_CODES,
  FedjointError,
  fjError,
  InputError,
  isErrorCode,
  ModelError,
  ProtocolError,
} from "../../../src/errors.js";

const ROOT = join(import.meta.dirname, "../../..");
const CODE = /\bFJ_[A-Z0-9]+(?:_[A-Z0-9]+)*\b/g;

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return files(p, ext);
    return ext.test(e.name) ? [p] : [];
  });
}

/** code → files using it, outside the registry itself. */
function usage(paths: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const p of paths) {
    for (const m of readFileSync(p, "utf8").matchAll(CODE)) {
      const list = out.get(m[0]) ?? [];
      const rel = relative(ROOT, p);
      if (!list.includes(rel)) list.push(rel);
      out.set(m[0], list);
    }
  }
  return out;
}

const registry = join(ROOT, "src", "errors.ts");
const sources = files(join(ROOT, "src"), /\.ts$/).filter((p) => p !== registry);
const docs = [join(ROOT, "README.md"), ...files(join(ROOT, "docs"), /\.md$/)];

describe("error registry", () => {
  it("every FJ_ code used in src/ is declared in the registry", () => {
    const undeclared = [...usage(sources)].filter(([code]) => !isErrorCode(code));
    expect(undeclared.map(([code, where]) => `${code} (${where.join(", ")})`)).toEqual([]);
  });

  it("every FJ_ code the docs mention is declared in the registry", () => {
    const undeclared = [...usage(docs)].filter(([code]) => !isErrorCode(code));
    expect(undeclared.map(([code, where]) => `${code} (${where.join(", ")})`)).toEqual([]);
  });

  it("every registered code is used somewhere in src/", () => {
    const used = usage(sources);
    expect(Object.keys(ERRORS).filter((code) => !used.has(code))).toEqual([]);
  });

  it("each code is declared once, with a message and a remedy", () => {
    const text = readFileSync(registry, "utf8");
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(text.match(new RegExp(`^\\s*${code}:`, "gm")), code).toHaveLength(1);
      expect(spec.message.length, code).toBeGreaterThan(3);
      expect(spec.remedy.length, code).toBeGreaterThan(3);
    }
  });

  it("fjError picks the class and exit code from the code's kind", () => {
    const cases = [
      ["FJ_CLI_ARG", InputError, 2],
      ["FJ_DATA_MISSING", DataError, 2],
      ["FJ_MODEL_SHAPE", ModelError, 3],
      ["FJ_ENGINE_INIT", EnvironmentError, 4],
      ["FJ_PROTOCOL_CHUNK", ProtocolError, 5],
    ] as const;
    for (const [code, cls, exit] of cases) {
      const e = fjError(code, "detail");
      expect(e).toBeInstanceOf(cls);
      expect(e).toBeInstanceOf(FedjointError);
      expect(e.exitCode).toBe(exit);
      expect(e.exitCode).toBe(EXIT_CODES[ERRORS[code].kind]);
      expect(e.remedy).toBe(ERRORS[code].remedy);
    }
  });

  it("toLine is `CODE: file: detail`, the remedy is a field", () => {
    const e = fjError("FJ_DATA_LABEL_UNKNOWN", "has label 7, dataset.json declares 0–4", {
      file: "labelsTr/knee_003.nii.gz",
    });
    expect(e.toLine()).toBe(
      "FJ_DATA_LABEL_UNKNOWN: labelsTr/knee_003.nii.gz: has label 7, dataset.json declares 0–4",
    );
    expect(e.detail).toBe("has label 7, dataset.json declares 0–4");
    expect(e.file).toBe("labelsTr/knee_003.nii.gz");
    expect(fjError("FJ_CLI_ARG", "--size is 'x'").toLine()).toBe("FJ_CLI_ARG: --size is 'x'");
  });

  it("a code from a peer that this version does not know keeps its line and has no remedy", () => {
    const e = new ProtocolError("FJ_FROM_THE_FUTURE", "rejected");
    expect(e.toLine()).toBe("FJ_FROM_THE_FUTURE: rejected");
    expect(e.remedy).toBeUndefined();
    expect(e.exitCode).toBe(5);
  });

  it("a CLI prints `CODE: message` as its one stderr line, and the remedy on a second only on a TTY", async () => {
    const failing = () => {
      const program = new Command("t");
      program.command("go").action(() => {
        throw fjError("FJ_DATA_NIFTI_MAGIC", "not a NIfTI-1 file", { file: "x.nii" });
      });
      return program;
    };
    const written: string[] = [];
    const write = process.stderr.write;
    const tty = process.stderr.isTTY;
    const exitCode = process.exitCode;
    process.stderr.write = ((chunk: string) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      process.stderr.isTTY = false;
      await runProgram(failing(), ["node", "t", "go"]);
      expect(written).toEqual(["FJ_DATA_NIFTI_MAGIC: x.nii: not a NIfTI-1 file\n"]);
      expect(process.exitCode).toBe(2);
      written.length = 0;
      process.stderr.isTTY = true;
      await runProgram(failing(), ["node", "t", "go"]);
      expect(written).toEqual([
        "FJ_DATA_NIFTI_MAGIC: x.nii: not a NIfTI-1 file\n",
        `  → ${ERRORS.FJ_DATA_NIFTI_MAGIC.remedy}\n`,
      ]);
    } finally {
      process.stderr.write = write;
      process.stderr.isTTY = tty;
      process.exitCode = exitCode;
    }
  });
});
