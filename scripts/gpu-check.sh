#!/usr/bin/env bash
# One-step check of the WebGPU engine on a GPU machine: the train-step bench at the small and the
# paper shapes, then a short federated `simulate --backend webgpu`; one JSON object on stdout,
# progress on stderr, exit 0 only when every part ran. Budget: 5 minutes (GPU_CHECK_BUDGET_S).
#
# Offline by design (a GPU machine may have no internet): it runs nothing from a registry. It
# needs this tree with node_modules installed (`npm ci`, optional dependencies included: webgpu
# carries Dawn's binary) and dist/ built, and a Node ≥ 20 binary: `node` on PATH or FEDJOINT_NODE
# (a copied Node binary works; it needs glibc only). On the GPU: a Vulkan loader (libvulkan.so.1)
# and the vendor's Vulkan driver (NVIDIA: part of the driver package).
#
# Without a GPU, FEDJOINT_WEBGPU_ADAPTER=compatibility runs the same check on Dawn's OpenGL ES
# backend over Mesa llvmpipe, at the smallest shape only (a software rasteriser: correctness, not
# speed).
set -uo pipefail
cd "$(dirname "$0")/.."

budget=${GPU_CHECK_BUDGET_S:-300}
start=$(date +%s)
node=${FEDJOINT_NODE:-node}
adapter=${FEDJOINT_WEBGPU_ADAPTER:-default}
export FEDJOINT_WEBGPU_ADAPTER=$adapter FEDJOINT_LOG_JSON=1
out=$(mktemp -d "${TMPDIR:-/tmp}/fj-gpu-check-XXXXXX")
trap 'rm -rf "$out"' EXIT

fail() { # one JSON line on stdout, the reason on stderr, exit 1
  echo "gpu-check: $1" >&2
  printf '{"ok":false,"error":%s}\n' "$("$node" -e 'process.stdout.write(JSON.stringify(process.argv[1]))' "$1" 2>/dev/null || echo "\"$1\"")"
  exit 1
}

command -v "$node" >/dev/null 2>&1 || { echo "gpu-check: no node (set FEDJOINT_NODE=/path/to/node, Node >= 20)" >&2; echo '{"ok":false,"error":"no node"}'; exit 1; }
major=$("$node" -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || fail "Node $("$node" --version) found, >= 20 needed (FEDJOINT_NODE)"
[ -f dist/cli/fedjoint.js ] || fail "dist/cli/fedjoint.js is missing: build first (npm ci or npm run build, where a registry is reachable)"
[ -d node_modules/webgpu ] && [ -d node_modules/@tensorflow/tfjs-backend-webgpu ] ||
  fail "node_modules lacks webgpu / @tensorflow/tfjs-backend-webgpu (npm ci without --omit=optional)"

# Shapes: "base depth size batch domains" (the issue's rows); software adapters get the small one only.
# The federation: the demo's model (base 8, depth 3, 32×32), AE round then 2 SEG rounds.
if [ "$adapter" = compatibility ]; then
  shapes=("8 3 32 6 3")
  bench_steps=3 sim_sites=ankle,knee sim_steps=3
else
  shapes=("16 4 64 9 3" "32 5 128 6 1" "32 5 256 6 1" "32 5 256 18 3")
  bench_steps=5 sim_sites=ankle,knee,shoulder sim_steps=10
fi

simulate_s=${GPU_CHECK_SIMULATE_S:-150} # kept for the federation, whatever the bench takes
remaining() { echo $((budget - ($(date +%s) - start))); }

# run NAME CAP RESERVE CMD...: runs CMD for at most CAP seconds, and never into the last RESERVE
# seconds of the budget; stdout to $out/NAME.json, stderr (JSON logs) to $out/NAME.log, the exit
# status to $out/NAME.rc (124: out of time).
run() {
  local name=$1 cap=$2 reserve=$3
  shift 3
  local left
  left=$(($(remaining) - reserve))
  [ "$left" -lt "$cap" ] && cap=$left
  if [ "$cap" -le 5 ]; then
    echo 124 >"$out/$name.rc"
    return
  fi
  echo "gpu-check: $name (≤ ${cap}s)" >&2
  timeout --kill-after=5 "$cap" "$@" >"$out/$name.json" 2>"$out/$name.log"
  echo $? >"$out/$name.rc"
}

i=0
for shape in "${shapes[@]}"; do
  read -r base depth size batch domains <<<"$shape"
  run "bench$i" 120 "$simulate_s" "$node" dist/cli/fedjoint.js bench train-step --backend webgpu --base "$base" \
    --depth "$depth" --size "$size" --batch "$batch" --domains "$domains" --steps "$bench_steps" --warmup 2 --json
  i=$((i + 1))
done
run simulate "$simulate_s" 0 "$node" dist/cli/fedjoint.js simulate --backend webgpu --sites "$sim_sites" \
  --rounds 2 --ae-rounds 1 --steps "$sim_steps" --json

"$node" - "$out" "${#shapes[@]}" "$adapter" "$start" <<'EOF'
const fs = require("node:fs");
const path = require("node:path");
const { execFileSync } = require("node:child_process");
const [dir, count, adapter, start] = process.argv.slice(2);
const read = (f) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), "utf8") : "");
const lastJson = (text) => {
  const line = text.trim().split("\n").filter((l) => l.startsWith("{")).pop();
  try { return line ? JSON.parse(line) : null; } catch { return null; }
};
const logLines = (name) => read(`${name}.log`).split("\n").filter((l) => l.startsWith("{"))
  .map((l) => { try { return JSON.parse(l); } catch { return null; } }).filter(Boolean);
const lastError = (name) => read(`${name}.log`).trim().split("\n").filter((l) => /^FJ_|Error/.test(l)).pop() ?? null;
const part = (name) => {
  const rc = Number(read(`${name}.rc`) || 124);
  return { rc, timedOut: rc === 124 || rc === 137, result: lastJson(read(`${name}.json`)), error: rc === 0 ? null : lastError(name) };
};
const bench = [];
let engine = null;
for (let i = 0; i < Number(count); i++) {
  const p = part(`bench${i}`);
  engine ??= logLines(`bench${i}`).find((l) => l.msg === "engine ready")?.device ?? null;
  bench.push(p);
}
const sim = part("simulate");
const s = sim.result;
const simulate = {
  rc: sim.rc, timedOut: sim.timedOut, error: sim.error,
  ...(s ? {
    aggregations: s.aggregations, wallSeconds: s.wallSeconds,
    sites: Object.fromEntries(Object.entries(s.sites).map(([k, v]) => [k, {
      initialDice: v.initialDice, finalDice: v.finalDice, computeSeconds: v.computeSeconds }])),
  } : {}),
};
let gpu = null;
try {
  gpu = execFileSync("nvidia-smi", ["--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
    { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
} catch {}
let vulkanLoader = null;
try { vulkanLoader = /libvulkan\.so\.1/.test(execFileSync("ldconfig", ["-p"], { encoding: "utf8" })); } catch {}
const ok = bench.every((b) => b.rc === 0) && sim.rc === 0 && s !== null && s.aggregations === 3;
process.stdout.write(`${JSON.stringify({
  ok, adapter, engine, node: process.version, gpu, vulkanLoader,
  seconds: Math.round(Date.now() / 1000 - Number(start)),
  bench: bench.map((b) => (b.result ? { ...b.result, rc: b.rc } : { rc: b.rc, timedOut: b.timedOut, error: b.error })),
  simulate,
})}\n`);
process.exit(ok ? 0 : 1);
EOF
