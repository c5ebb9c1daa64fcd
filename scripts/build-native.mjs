#!/usr/bin/env node
// Builds fedjoint's native kernels (native/src/*.cc: the `native` engine's kernels, OpenBLAS
// SGEMM). `npm ci` runs this through `prepare`; `npm run setup` runs it again.
//
// It needs a C++ toolchain and OpenBLAS's headers (Debian/Ubuntu: g++ libopenblas-dev). When they
// are missing and this runs as root on a machine with apt-get, it installs them (set
// FEDJOINT_NO_APT=1 to forbid that); otherwise it prints what to install in a framed warning and
// exits 0 — fedjoint then trains on tfjs's wasm kernels, several times slower and limited to a
// 4 GB heap, and says so in a warning at every start. FEDJOINT_REQUIRE_NATIVE=1 (CI) makes any
// failure fatal; FEDJOINT_NATIVE=0 skips the build.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const required = process.env.FEDJOINT_REQUIRE_NATIVE === "1";
// node-gyp itself needs python3 and make; the kernels need g++ and OpenBLAS's headers.
const PACKAGES = ["g++", "make", "python3", "libopenblas-dev"];

function banner(lines) {
  const width = Math.max(...lines.map((l) => l.length)) + 4;
  const rule = "!".repeat(width);
  process.stderr.write(`\n${rule}\n${lines.map((l) => `! ${l.padEnd(width - 4)} !`).join("\n")}\n${rule}\n\n`);
}

function fail(reason) {
  banner([
    "fedjoint: the native kernels were NOT built.",
    `Reason: ${reason}`,
    "Training falls back to tfjs's wasm kernels: several times slower, and the paper's",
    "256×256 network does not fit their 4 GB heap.",
    `Fix: install ${PACKAGES.join(" ")} (Debian/Ubuntu: sudo apt-get install -y ${PACKAGES.join(" ")}),`,
    "then run: npm run setup",
  ]);
  process.exit(required ? 1 : 0);
}

const cblasHeaders = [
  "/usr/include/cblas.h",
  "/usr/include/x86_64-linux-gnu/cblas.h",
  "/usr/include/aarch64-linux-gnu/cblas.h",
  "/usr/include/openblas/cblas.h",
];
const runs = (cmd) => spawnSync(cmd, ["--version"], { stdio: "ignore" }).status === 0;
const haveToolchain = () => runs("g++") && runs("make") && runs("python3") && cblasHeaders.some((h) => existsSync(h));

/** apt-get install of the build dependencies when we may (root, apt-get present, not forbidden). */
function installDependencies() {
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  const apt = spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status === 0;
  if (!root || !apt || process.env.FEDJOINT_NO_APT === "1") {
    const why = !apt ? "no apt-get" : !root ? "not root" : "FEDJOINT_NO_APT=1";
    return `${PACKAGES.join(" ")} missing and not installed automatically (${why})`;
  }
  process.stderr.write(`fedjoint: installing ${PACKAGES.join(" ")} for the native kernels (apt-get)…\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const update = spawnSync("apt-get", ["update", "-qq"], { stdio: ["ignore", "ignore", "inherit"], env });
  const install = spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...PACKAGES], {
    stdio: ["ignore", "ignore", "inherit"],
    env,
  });
  if (update.status !== 0 || install.status !== 0) return `apt-get install ${PACKAGES.join(" ")} failed`;
  return undefined;
}

if (process.env.FEDJOINT_NATIVE === "0") fail("FEDJOINT_NATIVE=0");
if (!haveToolchain()) {
  const problem = installDependencies();
  if (problem) fail(problem);
  if (!haveToolchain()) fail(`${PACKAGES.join(" ")} still missing after apt-get`);
}

const candidates = [
  process.env.npm_config_node_gyp,
  path.join(path.dirname(process.execPath), "../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"),
  "/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
  "/usr/local/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
].filter(Boolean);
const gyp = candidates.find((p) => existsSync(p));
if (!gyp) fail("node-gyp not found (it ships with npm)");

// Node's headers from the installation itself (Debian's nodejs, official tarballs, NodeSource), so
// node-gyp does not need to download them.
const args = [gyp, "rebuild", "--directory", path.join(root, "native")];
const prefix = path.resolve(path.dirname(process.execPath), "..");
if (process.env.npm_config_nodedir) args.push(`--nodedir=${process.env.npm_config_nodedir}`);
else if (existsSync(path.join(prefix, "include/node/node_api.h"))) args.push(`--nodedir=${prefix}`);
else if (existsSync("/usr/include/node/node_api.h")) args.push("--nodedir=/usr");
const run = spawnSync(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
if (run.status !== 0) {
  const errors = (run.stderr || "")
    .split("\n")
    .filter((l) => /error/i.test(l))
    .slice(0, 3)
    .join(" | ");
  fail(`node-gyp failed: ${errors}`);
}
process.stderr.write("fedjoint: native kernels built (native/build/Release/fedjoint_native.node, OpenBLAS)\n");
