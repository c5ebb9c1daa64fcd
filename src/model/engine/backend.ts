import { createRequire } from "node:module";
import os from "node:os";
import { EnvironmentError, InputError } from "../../errors.js";
import { type Logger, silentLogger } from "../../log.js";
import { NATIVE_BACKEND, prepareNativeBackend } from "./native/index.js";
import { tf } from "./tf.js";

export const BACKEND_CHOICES = ["auto", "tensorflow", "native", "wasm", "webgpu", "cpu"] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface EngineInfo {
  /** The tfjs backend name actually active (`tensorflow`, `native`, `wasm`, `webgpu`, `cpu`). */
  backend: string;
  /** Human-readable device and kernels, e.g. `native kernels x2 threads, OpenBLAS SkylakeX`. */
  device: string;
  /** The package that provided the backend. */
  provider: string;
}

const require = createRequire(import.meta.url);
let active: EngineInfo | undefined;

export function parseBackendChoice(value: string | undefined, field = "--backend"): BackendChoice {
  const v = (value ?? "auto").trim().toLowerCase();
  if ((BACKEND_CHOICES as readonly string[]).includes(v)) return v as BackendChoice;
  throw new InputError(
    "FJ_ENGINE_BACKEND",
    `${field} is '${value}', expected one of ${BACKEND_CHOICES.join("|")}`,
  );
}

function tryResolve(pkg: string): string | undefined {
  try {
    return require.resolve(pkg);
  } catch {
    return undefined;
  }
}

/** Loads libtensorflow bindings when installed (tfjs-node-gpu first). Returns the package or undefined. */
async function loadTensorflow(log: Logger): Promise<{ pkg: string; gpu: boolean } | undefined> {
  for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
    if (!tryResolve(pkg)) continue;
    try {
      await import(pkg);
      if (tf.findBackend("tensorflow")) return { pkg, gpu: pkg.endsWith("-gpu") };
      log.warn(
        { pkg },
        "package loaded but registered no 'tensorflow' backend (tfjs-core version mismatch?)",
      );
    } catch (err) {
      log.warn({ pkg, err: String(err) }, "could not load libtensorflow bindings");
    }
  }
  return undefined;
}

async function initWasm(threads: number): Promise<string> {
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  wasm.setThreadsCount(threads);
  if (!(await tf.setBackend("wasm")))
    throw new EnvironmentError("FJ_ENGINE_WASM", "the wasm backend failed to initialise");
  await tf.ready();
  const actual = wasm.getThreadsCount();
  const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
  return `wasm${simd ? "-simd" : ""} kernels x${actual} thread${actual === 1 ? "" : "s"}`;
}

/**
 * Selects and initialises the tfjs backend. `auto` = tensorflow when libtensorflow bindings are
 * installed, else native (ordinary-memory tensors, native kernels) when its addon is built, else
 * wasm — with a warning, since wasm is several times slower and its heap ends at 4 GB.
 * Idempotent: a second call with the same choice returns the active engine.
 */
export async function initEngine(
  choice: BackendChoice = parseBackendChoice(process.env.FEDJOINT_BACKEND),
  options: { log?: Logger; threads?: number } = {},
): Promise<EngineInfo> {
  const log = options.log ?? silentLogger;
  if (active && (choice === "auto" || active.backend === choice)) return active;
  const threads =
    options.threads ?? Math.max(1, Number(process.env.FEDJOINT_THREADS) || os.availableParallelism());
  tf.env().set("IS_TEST", false);

  let info: EngineInfo | undefined;
  if (choice === "tensorflow" || choice === "auto") {
    const loaded = await loadTensorflow(log);
    if (loaded) {
      await tf.setBackend("tensorflow");
      await tf.ready();
      info = {
        backend: "tensorflow",
        device: loaded.gpu ? "libtensorflow (CUDA GPU)" : "libtensorflow (CPU)",
        provider: loaded.pkg,
      };
    } else if (choice === "tensorflow") {
      throw new EnvironmentError(
        "FJ_ENGINE_TENSORFLOW",
        "--backend tensorflow needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node (npm install @tensorflow/tfjs-node-gpu@4.22.0)",
      );
    }
  }
  if (!info && (choice === "native" || choice === "auto")) {
    const native = prepareNativeBackend(threads);
    if (native.ready) {
      await tf.setBackend(NATIVE_BACKEND);
      info = { backend: NATIVE_BACKEND, device: native.kernels, provider: "fedjoint native/" };
    } else if (choice === "native") {
      throw new EnvironmentError(
        "FJ_ENGINE_NATIVE",
        `--backend native: the native kernels are ${native.reason}`,
      );
    } else {
      log.warn(
        { reason: native.reason },
        `native kernels ${native.reason}: training falls back to wasm kernels only (several times slower, 4 GB heap: the paper's 256×256 network does not fit)`,
      );
    }
  }
  if (!info && choice === "webgpu") {
    info = await initWebgpu();
  }
  if (!info && (choice === "wasm" || choice === "auto")) {
    const device = await initWasm(threads);
    info = { backend: "wasm", device, provider: "@tensorflow/tfjs-backend-wasm" };
  }
  if (!info && choice === "cpu") {
    await import("@tensorflow/tfjs-backend-cpu");
    await tf.setBackend("cpu");
    await tf.ready();
    info = {
      backend: "cpu",
      device: "pure JavaScript (slow; last resort)",
      provider: "@tensorflow/tfjs-backend-cpu",
    };
  }
  if (!info) throw new EnvironmentError("FJ_ENGINE_INIT", `backend '${choice}' could not be initialised`);
  active = info;
  log.info({ backend: info.backend, device: info.device, provider: info.provider }, "engine ready");
  return info;
}

async function initWebgpu(): Promise<EngineInfo> {
  const missing = ["@tensorflow/tfjs-backend-webgpu", "webgpu"].filter((p) => !tryResolve(p));
  if (missing.length > 0) {
    throw new EnvironmentError(
      "FJ_ENGINE_WEBGPU",
      `--backend webgpu needs ${missing.join(" and ")} (npm install @tensorflow/tfjs-backend-webgpu@4.22.0 webgpu)`,
    );
  }
  // Dawn's Node bindings expose navigator.gpu; the tfjs webgpu backend reads it from globalThis.
  const dawn = (await import("webgpu" as string)) as {
    create: (flags: string[]) => unknown;
    globals: object;
  };
  Object.assign(globalThis, dawn.globals);
  if (!("navigator" in globalThis) || !(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) {
    Object.defineProperty(globalThis, "navigator", { value: { gpu: dawn.create([]) }, configurable: true });
  }
  await import("@tensorflow/tfjs-backend-webgpu" as string);
  if (!(await tf.setBackend("webgpu")))
    throw new EnvironmentError("FJ_ENGINE_WEBGPU", "no WebGPU adapter found");
  await tf.ready();
  return { backend: "webgpu", device: "WebGPU (Dawn)", provider: "@tensorflow/tfjs-backend-webgpu" };
}

/** The engine chosen by `initEngine`, or undefined before it ran. */
export function activeEngine(): EngineInfo | undefined {
  return active;
}

/** Switches to an already-registered backend (used by tests that compare backends). */
export async function useBackend(name: "cpu" | "wasm" | "native"): Promise<void> {
  if (name === "cpu") await import("@tensorflow/tfjs-backend-cpu");
  else if (name === "wasm") await import("@tensorflow/tfjs-backend-wasm");
  else {
    const native = prepareNativeBackend(
      Math.max(1, Number(process.env.FEDJOINT_THREADS) || os.availableParallelism()),
    );
    if (!native.ready)
      throw new EnvironmentError("FJ_ENGINE_NATIVE", `the native kernels are ${native.reason}`);
  }
  await tf.setBackend(name);
  await tf.ready();
}
