import { createRequire } from "node:module";
import os from "node:os";
import { fjError } from "../../errors.js";
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
  throw fjError("FJ_ENGINE_BACKEND", `${field} is '${value}', expected one of ${BACKEND_CHOICES.join("|")}`);
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
    throw fjError("FJ_ENGINE_WASM", "the wasm backend failed to initialise");
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
      throw fjError(
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
      throw fjError("FJ_ENGINE_NATIVE", `--backend native: the native kernels are ${native.reason}`);
    } else {
      log.warn(
        { reason: native.reason },
        `native kernels ${native.reason}: training falls back to wasm kernels only (several times slower, 4 GB heap: the paper's 256×256 network does not fit)`,
      );
    }
  }
  if (!info && choice === "webgpu") {
    info = await initWebgpu(log);
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
  if (!info) throw fjError("FJ_ENGINE_INIT", `backend '${choice}' could not be initialised`);
  active = info;
  log.info({ backend: info.backend, device: info.device, provider: info.provider }, "engine ready");
  return info;
}

/**
 * Which adapter Dawn is asked for (`FEDJOINT_WEBGPU_ADAPTER`):
 * - `default`: Dawn's native backend for the platform (Vulkan on Linux), core feature level,
 *   high-performance adapter — a real GPU.
 * - `compatibility`: Dawn's OpenGL ES backend at the compatibility feature level, with EGL's
 *   surfaceless platform; on a machine without a GPU that is Mesa llvmpipe (a software
 *   rasteriser): for correctness tests of the GPU path, not for speed.
 */
export const WEBGPU_ADAPTERS = ["default", "compatibility"] as const;
export type WebgpuAdapter = (typeof WEBGPU_ADAPTERS)[number];

export function parseWebgpuAdapter(
  value: string | undefined,
  field = "FEDJOINT_WEBGPU_ADAPTER",
): WebgpuAdapter {
  const v = (value ?? "default").trim().toLowerCase() || "default";
  if ((WEBGPU_ADAPTERS as readonly string[]).includes(v)) return v as WebgpuAdapter;
  throw fjError(
    "FJ_ENGINE_WEBGPU_ADAPTER",
    `${field} is '${value}', expected one of ${WEBGPU_ADAPTERS.join("|")}`,
  );
}

/*
 * The parts of Dawn's Node bindings (`webgpu`) and tfjs-backend-webgpu used here, typed locally:
 * both are optional dependencies, so the build must not need their type declarations.
 */
interface DawnAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}
interface DawnDevice {
  readonly lost: Promise<{ reason: string; message: string }>;
}
interface DawnAdapter {
  readonly info: DawnAdapterInfo;
  readonly limits: object;
  readonly features: ReadonlySet<string>;
  requestDevice(descriptor: {
    requiredLimits: Record<string, number>;
    requiredFeatures: string[];
  }): Promise<DawnDevice>;
}
interface DawnGpu {
  requestAdapter(options: {
    featureLevel?: "core" | "compatibility";
    powerPreference?: "high-performance" | "low-power";
  }): Promise<DawnAdapter | null>;
}
interface DawnModule {
  create(flags: string[]): DawnGpu;
  globals: object;
}
interface TfjsWebgpuModule {
  WebGPUBackend: new (device: DawnDevice, adapterInfo: DawnAdapterInfo) => tf.KernelBackend;
}

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|softpipe|swiftshader/i;

async function initWebgpu(log: Logger): Promise<EngineInfo> {
  const adapterMode = parseWebgpuAdapter(process.env.FEDJOINT_WEBGPU_ADAPTER);
  const missing = ["@tensorflow/tfjs-backend-webgpu", "webgpu"].filter((p) => !tryResolve(p));
  if (missing.length > 0) {
    throw fjError(
      "FJ_ENGINE_WEBGPU",
      `--backend webgpu needs ${missing.join(" and ")} (optional dependencies: npm ci without --omit=optional, or npm install @tensorflow/tfjs-backend-webgpu@4.22.0 webgpu@0.6.2)`,
    );
  }
  const compat = adapterMode === "compatibility";
  // Mesa reads EGL_PLATFORM when Dawn opens its EGL display; no window system in a server process.
  if (compat) process.env.EGL_PLATFORM ??= "surfaceless";
  // The tfjs package registers its own 'webgpu' factory on import when navigator.gpu exists; it
  // asks for a core adapter with default limits. It is imported before navigator.gpu is set and
  // given this factory instead: the adapter chosen here, every limit the adapter offers.
  const { WebGPUBackend } = (await import("@tensorflow/tfjs-backend-webgpu" as string)) as TfjsWebgpuModule;
  const dawn = (await import("webgpu" as string)) as DawnModule;
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create(compat ? ["backend=opengles"] : []);
  const adapter = await gpu.requestAdapter(
    compat ? { featureLevel: "compatibility" } : { powerPreference: "high-performance" },
  );
  if (!adapter) {
    throw fjError(
      "FJ_ENGINE_WEBGPU",
      compat
        ? "Dawn found no OpenGL ES adapter (FEDJOINT_WEBGPU_ADAPTER=compatibility needs EGL and Mesa: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1)"
        : "Dawn found no GPU adapter (a GPU with a Vulkan driver is needed: libvulkan1 and the vendor's ICD; without a GPU, FEDJOINT_WEBGPU_ADAPTER=compatibility runs on Mesa llvmpipe, for tests only)",
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const name in adapter.limits) {
    const value = (adapter.limits as unknown as Record<string, unknown>)[name];
    if (typeof value === "number") requiredLimits[name] = value;
  }
  const requiredFeatures = ["timestamp-query"].filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  device.lost.then((lost) => log.error({ reason: lost.reason, message: lost.message }, "WebGPU device lost"));
  // WebGPUBackend checks navigator.gpu when it is constructed; Dawn lives while `gpu` is reachable.
  if (!(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) {
    Object.defineProperty(globalThis, "navigator", { value: { gpu }, configurable: true, writable: true });
  }
  if (tf.findBackendFactory("webgpu")) tf.removeBackend("webgpu");
  tf.registerBackend("webgpu", () => new WebGPUBackend(device, adapter.info));
  if (!(await tf.setBackend("webgpu")))
    throw fjError("FJ_ENGINE_WEBGPU", "the webgpu backend failed to initialise");
  await tf.ready();
  const { vendor, device: chip, description } = adapter.info;
  const name = [vendor, chip, description].filter(Boolean).join(", ") || "unnamed adapter";
  if (!compat && SOFTWARE_ADAPTER.test(name)) {
    log.warn({ adapter: name }, "the WebGPU adapter is a software rasteriser: correct but slow");
  }
  return {
    backend: "webgpu",
    device: `WebGPU (Dawn ${compat ? "OpenGL ES, compatibility" : "native, core"}): ${name}`,
    provider: "@tensorflow/tfjs-backend-webgpu + webgpu (Dawn)",
  };
}

/** Switches to an already-registered backend (used by tests that compare backends). */
export async function useBackend(name: "cpu" | "wasm" | "native"): Promise<void> {
  if (name === "cpu") await import("@tensorflow/tfjs-backend-cpu");
  else if (name === "wasm") await import("@tensorflow/tfjs-backend-wasm");
  else {
    const native = prepareNativeBackend(
      Math.max(1, Number(process.env.FEDJOINT_THREADS) || os.availableParallelism()),
    );
    if (!native.ready) throw fjError("FJ_ENGINE_NATIVE", `the native kernels are ${native.reason}`);
  }
  await tf.setBackend(name);
  await tf.ready();
}
