#!/usr/bin/env node
// Builds fedjoint's native kernels (native/src/*.cc: the `native` engine's kernels).
// `npm ci` runs this through `prepare`; `npm run setup` runs it again.
//
// It needs a C++ toolchain and OpenBLAS's headers (Debian/Ubuntu: g++ make python3
// libopenblas-dev), and uses oneDNN 2.x for the convolutions when its headers are there
// (libdnnl-dev; PyTorch's CPU convolutions, 1.5–5× faster than im2col + OpenBLAS). When they are
// missing and this runs as root on a machine with apt-get, it installs them (set
// FEDJOINT_NO_APT=1 to forbid that); otherwise it prints what to install in a framed warning and
// exits 0 — fedjoint then trains on tfjs's wasm kernels, several times slower and limited to a
// 4 GB heap, and says so in a warning at every start. FEDJOINT_REQUIRE_NATIVE=1 (CI) makes any
// failure fatal; FEDJOINT_NATIVE=0 skips the build.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const required = process.env.FEDJOINT_REQUIRE_NATIVE === "1";
// node-gyp itself needs python3 and make; the kernels need g++ and OpenBLAS's headers.
const PACKAGES = ["g++", "make", "python3", "libopenblas-dev"];

function banner(lines) {
  const width = Math.max(...lines.map((l) => l.length)) + 4;
  const rule = "!".repeat(width);
  process.stderr.write(
    `\n${rule}\n${lines.map((l) => `! ${l.padEnd(width - 4)} !`).join("\n")}\n${rule}\n\n`,
  );
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
// Optional: convolutions through oneDNN 2.x (Debian 12 / Ubuntu 22.04 package it).
const DNNL_PACKAGE = "libdnnl-dev";
const DNNL_VERSION_HEADER = "/usr/include/oneapi/dnnl/dnnl_version.h";
function dnnlMajor() {
  if (!existsSync(DNNL_VERSION_HEADER)) return undefined;
  const m = /#define DNNL_VERSION_MAJOR (\d+)/.exec(readFileSync(DNNL_VERSION_HEADER, "utf8"));
  return m ? Number(m[1]) : undefined;
}

const runs = (cmd) => spawnSync(cmd, ["--version"], { stdio: "ignore" }).status === 0;
const haveToolchain = () =>
  runs("g++") && runs("make") && runs("python3") && cblasHeaders.some((h) => existsSync(h));

/** Root on a machine with apt-get, and not forbidden by FEDJOINT_NO_APT=1. */
function mayUseApt() {
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const apt = spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status === 0;
  return isRoot && apt && process.env.FEDJOINT_NO_APT !== "1";
}

/** apt-get update + install; true on success. */
function aptInstall(packages) {
  process.stderr.write(`fedjoint: installing ${packages.join(" ")} for the native kernels (apt-get)…\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const quiet = { stdio: ["ignore", "ignore", "inherit"], env };
  if (spawnSync("apt-get", ["update", "-qq"], quiet).status !== 0) return false;
  return (
    spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...packages], quiet).status === 0
  );
}

if (process.env.FEDJOINT_NATIVE === "0") fail("FEDJOINT_NATIVE=0");
if (!haveToolchain()) {
  if (!mayUseApt()) {
    const apt = spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status === 0;
    const why = !apt ? "no apt-get" : process.getuid?.() !== 0 ? "not root" : "FEDJOINT_NO_APT=1";
    fail(`${PACKAGES.join(" ")} missing and not installed automatically (${why})`);
  }
  // oneDNN is optional: try it with the required packages, and without it if that fails.
  if (!aptInstall([...PACKAGES, DNNL_PACKAGE]) && !aptInstall(PACKAGES)) {
    fail(`apt-get install ${PACKAGES.join(" ")} failed`);
  }
  if (!haveToolchain()) fail(`${PACKAGES.join(" ")} still missing after apt-get`);
} else if (dnnlMajor() === undefined && mayUseApt()) {
  aptInstall([DNNL_PACKAGE]);
}
const dnnl = dnnlMajor() === 2;
if (!dnnl) {
  const found =
    dnnlMajor() === undefined
      ? `${DNNL_PACKAGE} not installed`
      : `oneDNN ${dnnlMajor()}.x found, these kernels need 2.x`;
  process.stderr.write(
    `fedjoint: ${found}: convolutions use im2col + OpenBLAS (slower; install ${DNNL_PACKAGE} 2.x, then npm run setup)\n`,
  );
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
const run = spawnSync(process.execPath, args, {
  stdio: ["ignore", "ignore", "pipe"],
  encoding: "utf8",
  env: { ...process.env, FEDJOINT_BUILD_DNNL: dnnl ? "1" : "0" },
});
if (run.status !== 0) {
  const errors = (run.stderr || "")
    .split("\n")
    .filter((l) => /error/i.test(l))
    .slice(0, 3)
    .join(" | ");
  fail(`node-gyp failed: ${errors}`);
}
process.stderr.write(
  `fedjoint: native kernels built (native/build/Release/fedjoint_native.node; convolutions: ${dnnl ? "oneDNN" : "im2col + OpenBLAS"})\n`,
);
