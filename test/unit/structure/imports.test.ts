/**
 * Data flows one way (DESIGN §5): the coordinator process never loads tfjs (it aggregates named
 * Float32Arrays and computes its tensor schema from src/study), and neither the dashboard nor the
 * site-client imports from src/coordinator. Method names are branched on in src/study/methods.ts
 * only (MethodSpec); everything else asks it.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const SRC = path.join(ROOT, "src");
let tmp: string;

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out;
}

/** Relative import targets of a source file, resolved to src paths. */
function importsOf(file: string, text: string): string[] {
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)].map((m) => m[1]);
  return specs.map((s) => path.resolve(path.dirname(file), s.replace(/\.js$/, ".ts")));
}

describe("module boundaries", () => {
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "fj-imports-"));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it("loading the coordinator CLI loads no @tensorflow/* module", async () => {
    const log = path.join(tmp, "imports.log");
    await writeFile(
      path.join(tmp, "hooks.mjs"),
      `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, r.url + "\\n");
  return r;
}
`,
    );
    await writeFile(
      path.join(tmp, "register.mjs"),
      `import { register } from "node:module";\nregister("./hooks.mjs", import.meta.url);\n`,
    );
    const r = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "--import",
        path.join(tmp, "register.mjs"),
        path.join(SRC, "cli/coordinator.ts"),
        "--help",
      ],
      { cwd: ROOT, encoding: "utf8", timeout: 60_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const loaded = (await readFile(log, "utf8")).trim().split("\n");
    // the hook saw the coordinator's own modules, so it did observe the graph
    expect(loaded.some((u) => u.endsWith("/src/coordinator/study.ts"))).toBe(true);
    expect(loaded.some((u) => u.endsWith("/src/aggregation/strategies/index.ts"))).toBe(true);
    expect(loaded.filter((u) => /@tensorflow/.test(u))).toEqual([]);
    expect(loaded.filter((u) => /\/src\/model\/(engine|trainer|nets|layers|losses)/.test(u))).toEqual([]);
  });

  it("neither the dashboard nor the site-client imports from src/coordinator", async () => {
    const offenders: string[] = [];
    for (const area of [
      "dashboard",
      "site-client",
      "study",
      "aggregation",
      "events",
      "model",
      "data",
      "eval",
    ]) {
      for (const file of await sources(path.join(SRC, area))) {
        for (const target of importsOf(file, await readFile(file, "utf8"))) {
          if (target.startsWith(path.join(SRC, "coordinator") + path.sep))
            offenders.push(`${path.relative(ROOT, file)} → ${path.relative(ROOT, target)}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });

  it("no module outside MethodSpec compares a method name", async () => {
    const offenders: string[] = [];
    // a comparison with a method's name ("shared" is also a partition scope: only against `method`)
    const name = String.raw`["'\`](individual|dsl|dsl\+ssc|dsl\+msc|dsl\+mjap|dsl\+msc\+mjap)["'\`]`;
    const methodCompare = new RegExp(
      String.raw`[!=]==?\s*${name}|${name}\s*[!=]==?|\bmethod\s*[!=]==?\s*["'\`]shared|\bmethod\.(startsWith|endsWith|includes)\(|["'\`]\+(mjap|msc|ssc)["'\`]`,
    );
    for (const file of await sources(SRC)) {
      if (file === path.join(SRC, "study", "methods.ts")) continue;
      const lines = (await readFile(file, "utf8")).split("\n");
      lines.forEach((line, i) => {
        if (methodCompare.test(line)) offenders.push(`${path.relative(ROOT, file)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });
});
