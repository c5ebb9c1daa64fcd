/**
 * The networks' variables as data: name, shape, initialiser and trainability of every variable of
 * the Att-UNet S and the multi-joint auto-encoder AE, in the order the nets create them, and their
 * seeded initial values. No tfjs: the coordinator computes from here the tensor schema it accepts
 * in each phase and the Θ_0 it serves in round 0, before any site has sent anything.
 *
 * The nets (./nets, ./layers) create exactly these variables; `SegmentationTrainer` checks that at
 * construction (FJ_MODEL_ARCHITECTURE), so this module and the layers cannot drift apart.
 *
 * Initial values are seeded per variable name (FNV-1a of seed and name → mulberry32): the same
 * variable has the same Θ_0 whichever subset of variables a process builds (one joint at a site,
 * every joint centrally, only Θ at the coordinator).
 */

import type { Joint } from "../joints.js";
import { hashSeed, mulberry32 } from "../random.js";
import type { NamedTensor } from "./api.js";

export type Initializer = "he" | "zeros" | "ones" | "glorot";

export interface VariableSpec {
  name: string;
  shape: number[];
  init: Initializer;
  /** False for running statistics (moving mean / variance). */
  trainable: boolean;
}

export interface NetSpec {
  /** Filters of the first level; level i has base·2^i. */
  base: number;
  /** Levels including the bottleneck. */
  depth: number;
  /** Output classes (background included) per joint: head widths, AE input/output widths. */
  classes: Readonly<Partial<Record<Joint, number>>>;
  /** The "shared" baseline: one batch norm, one union head (and AE input layer) for every domain. */
  sharedNorm: boolean;
}

/** Channels of each level. */
export function levelChannels(base: number, depth: number): number[] {
  return Array.from({ length: depth }, (_, i) => base * 2 ** i);
}

/** Channels of the 2·depth − 1 scales (the embeddings' dimensions): encoder levels, bottleneck, decoder levels. */
export function scaleDims(base: number, depth: number): number[] {
  const enc = levelChannels(base, depth);
  return [...enc, ...enc.slice(0, -1).reverse()];
}

/** Width of the union label space of the "shared" baseline: background + every joint's structures. */
export function unionClasses(classes: Readonly<Partial<Record<Joint, number>>>): number {
  return 1 + Object.values(classes).reduce<number>((a, c) => a + Math.max((c ?? 1) - 1, 0), 0);
}

/** Attention gate intermediate channels F_int = F/2. */
export function gateChannels(channels: number): number {
  return Math.max(Math.floor(channels / 2), 1);
}

const kernel = (name: string, shape: number[], init: Initializer = "he"): VariableSpec => ({
  name,
  shape,
  init,
  trainable: true,
});

/** Prefix of a domain-specific layer's variables: `shared/<path>` or `domain/<joint>/<path>`. */
export function domainPrefix(path: string, joint: Joint, shared: boolean): string {
  return shared ? `shared/${path}` : `domain/${joint}/${path}`;
}

/** DSBN of `channels` for these joints (one set when shared). */
function batchNorm(
  path: string,
  channels: number,
  shared: boolean,
  joints: readonly Joint[],
): VariableSpec[] {
  const owners = shared ? joints.slice(0, 1) : joints;
  return owners.flatMap((j) => {
    const p = domainPrefix(path, j, shared);
    const c = [channels];
    return [
      { name: `${p}/gamma`, shape: c, init: "ones", trainable: true },
      { name: `${p}/beta`, shape: c, init: "zeros", trainable: true },
      { name: `${p}/moving_mean`, shape: c, init: "zeros", trainable: false },
      { name: `${p}/moving_variance`, shape: c, init: "ones", trainable: false },
    ] satisfies VariableSpec[];
  });
}

/** 3×3 conv without bias (Θ) → DSBN (Γ_k) → ReLU. */
function convBnRelu(
  path: string,
  cin: number,
  cout: number,
  net: NetSpec,
  joints: readonly Joint[],
): { shared: VariableSpec[]; domain: VariableSpec[] } {
  return {
    shared: [kernel(`shared/${path}/kernel`, [3, 3, cin, cout])],
    domain: batchNorm(`${path}/bn`, cout, net.sharedNorm, joints),
  };
}

function doubleConv(path: string, cin: number, cout: number, net: NetSpec, joints: readonly Joint[]) {
  const a = convBnRelu(`${path}/conv1`, cin, cout, net, joints);
  const b = convBnRelu(`${path}/conv2`, cout, cout, net, joints);
  return { shared: [...a.shared, ...b.shared], domain: [...a.domain, ...b.domain] };
}

/** A 1×1 (head) or 3×3 (AE input) conv with bias, one per joint (or one union layer when shared). */
function domainConv(
  path: string,
  size: number,
  io: (joint: Joint) => [number, number],
  init: Initializer,
  shared: boolean,
  joints: readonly Joint[],
): VariableSpec[] {
  const owners = shared ? joints.slice(0, 1) : joints;
  return owners.flatMap((j) => {
    const p = domainPrefix(path, j, shared);
    const [cin, cout] = io(j);
    return [kernel(`${p}/kernel`, [size, size, cin, cout], init), kernel(`${p}/bias`, [cout], "zeros")];
  });
}

function classesOf(net: NetSpec, joint: Joint): number {
  const n = net.sharedNorm ? unionClasses(net.classes) : net.classes[joint];
  if (!n) throw new RangeError(`no label classes for joint ${joint}`);
  return n;
}

/**
 * Variables of the Att-UNet for `joints`: the shared kernels first (encoder, then per decoder level
 * up-conv, attention gate, decoder block), then the domain variables (DSBN of every block, heads).
 */
export function attUNetVariables(net: NetSpec, joints: readonly Joint[], inChannels = 1): VariableSpec[] {
  const ch = levelChannels(net.base, net.depth);
  const shared: VariableSpec[] = [];
  const domain: VariableSpec[] = [];
  const add = (b: { shared: VariableSpec[]; domain: VariableSpec[] }) => {
    shared.push(...b.shared);
    domain.push(...b.domain);
  };
  let cin = inChannels;
  ch.forEach((c, i) => {
    add(doubleConv(`enc${i}`, cin, c, net, joints));
    cin = c;
  });
  for (let l = net.depth - 2; l >= 0; l--) {
    add(convBnRelu(`up${l}`, ch[l + 1], ch[l], net, joints));
    const cint = gateChannels(ch[l]);
    add({
      shared: [
        kernel(`shared/gate${l}/wx`, [1, 1, ch[l], cint]),
        kernel(`shared/gate${l}/wg`, [1, 1, ch[l], cint]),
        kernel(`shared/gate${l}/psi`, [1, 1, cint, 1]),
      ],
      domain: [
        ...batchNorm(`gate${l}/bn`, cint, net.sharedNorm, joints),
        ...batchNorm(`gate${l}/bn_psi`, 1, net.sharedNorm, joints),
      ],
    });
    add(doubleConv(`dec${l}`, 2 * ch[l], ch[l], net, joints));
  }
  const head = domainConv("head", 1, (j) => [net.base, classesOf(net, j)], "glorot", net.sharedNorm, joints);
  return [...shared, ...domain, ...head];
}

/**
 * Variables of the multi-joint auto-encoder for `joints`: domain input layer (one-hot → base), the
 * shared encoder/decoder kernels, DSBN, domain output layer.
 */
export function autoEncoderVariables(net: NetSpec, joints: readonly Joint[]): VariableSpec[] {
  const ch = levelChannels(net.base, net.depth);
  const shared: VariableSpec[] = [];
  const domain: VariableSpec[] = [];
  const add = (b: { shared: VariableSpec[]; domain: VariableSpec[] }) => {
    shared.push(...b.shared);
    domain.push(...b.domain);
  };
  const input = domainConv("ae/input", 3, (j) => [classesOf(net, j), net.base], "he", net.sharedNorm, joints);
  let cin = net.base;
  ch.forEach((c, i) => {
    add(doubleConv(`ae/enc${i}`, cin, c, net, joints));
    cin = c;
  });
  for (let l = net.depth - 2; l >= 0; l--) {
    add(convBnRelu(`ae/up${l}`, ch[l + 1], ch[l], net, joints));
    add(doubleConv(`ae/dec${l}`, ch[l], ch[l], net, joints));
  }
  const head = domainConv(
    "ae/head",
    1,
    (j) => [net.base, classesOf(net, j)],
    "glorot",
    net.sharedNorm,
    joints,
  );
  return [...input, ...shared, ...domain, ...head];
}

export function isSharedName(name: string): boolean {
  return name.startsWith("shared/");
}

/** Seeded initial values of one variable (independent of which other variables exist). */
export function initialValues(
  spec: Pick<VariableSpec, "name" | "shape" | "init">,
  seed: number,
): Float32Array {
  const { shape, init } = spec;
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  if (init === "zeros") return out;
  if (init === "ones") return out.fill(1);
  const rand = mulberry32(hashSeed("fedjoint-init", seed, spec.name));
  // Fan-in of a conv kernel [KH, KW, Cin, Cout] is KH·KW·Cin.
  const fanIn = shape.length >= 2 ? shape.slice(0, -1).reduce((a, b) => a * b, 1) : shape[0];
  const fanOut =
    shape.length >= 2 ? shape.slice(0, -2).reduce((a, b) => a * b, 1) * shape[shape.length - 1] : shape[0];
  const limit = init === "he" ? Math.sqrt(6 / fanIn) : Math.sqrt(6 / (fanIn + fanOut));
  for (let i = 0; i < size; i++) out[i] = (rand() * 2 - 1) * limit;
  return out;
}

/** Initial values of a list of variables, as named tensors. */
export function initialTensors(specs: readonly VariableSpec[], seed: number): NamedTensor[] {
  return specs.map((s) => ({ name: s.name, shape: [...s.shape], data: initialValues(s, seed) }));
}
