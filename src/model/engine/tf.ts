/**
 * The one import of tfjs in the project. `@tensorflow/tfjs` (not tfjs-core alone) because its
 * Node bundle registers every gradient and chained op; tfjs-node and the wasm backend attach to
 * the same global engine. Production mode: no per-op debug checks, no console banners.
 */
import { env } from "@tensorflow/tfjs";

env().set("PROD", true);

export * as tf from "@tensorflow/tfjs";
