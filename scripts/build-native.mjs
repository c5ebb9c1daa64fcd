#!/usr/bin/env node
// Builds the optional native convolution kernels (native/conv.cc, OpenBLAS) for the wasm engine.
// Needs a C++ toolchain and libopenblas-dev (Debian: apt-get install -y g++ libopenblas-dev).
// Without them fedjoint still works on wasm's own kernels, only slower: this script then prints
// what to install and exits 0, unless FEDJOINT_REQUIRE_NATIVE=1.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const required = process.env.FEDJOINT_REQUIRE_NATIVE === "1";

function fail(message) {
  const line = `fedjoint: native convolution kernels not built (${message}); training uses wasm kernels only. ` +
    "Install g++ and libopenblas-dev, then run `npm run build:native`.";
  process.stderr.write(`${line}\n`);
  process.exit(required ? 1 : 0);
}

if (process.env.FEDJOINT_NATIVE === "0") fail("FEDJOINT_NATIVE=0");
const headers = ["/usr/include/cblas.h", "/usr/include/x86_64-linux-gnu/cblas.h", "/usr/include/aarch64-linux-gnu/cblas.h", "/usr/include/openblas/cblas.h"];
if (!headers.some((h) => existsSync(h))) fail("cblas.h not found");

const candidates = [
  process.env.npm_config_node_gyp,
  path.join(path.dirname(process.execPath), "../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"),
  "/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
  "/usr/local/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
].filter(Boolean);
const gyp = candidates.find((p) => existsSync(p));
if (!gyp) fail("node-gyp not found");

const args = [gyp, "rebuild", "--directory", path.join(root, "native")];
if (process.env.npm_config_nodedir) args.push(`--nodedir=${process.env.npm_config_nodedir}`);
else if (existsSync("/usr/include/node/node_api.h")) args.push("--nodedir=/usr");
const run = spawnSync(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
if (run.status !== 0) fail(`node-gyp failed: ${(run.stderr || "").split("\n").filter((l) => /error/i.test(l)).slice(0, 3).join(" | ")}`);
process.stderr.write("fedjoint: native convolution kernels built (OpenBLAS)\n");
