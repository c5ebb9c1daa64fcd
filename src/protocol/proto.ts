/**
 * Loads proto/federation.proto (the one wire contract) with @grpc/proto-loader and exposes the
 * service definition plus hand-written TypeScript shapes of its messages (camelCase, as
 * proto-loader delivers them with the options below). Nothing outside src/protocol, the
 * coordinator's service and the site-client's transport touches these message types.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fjError } from "../errors.js";

export const MAX_CHUNK_BYTES = 1024 * 1024;
/** gRPC message limit: one chunk plus framing, with room for headers. */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

export interface TensorSpecMsg {
  name: string;
  shape: number[];
  dtype: string;
}
export interface TensorSetHeaderMsg {
  tensors: TensorSpecMsg[];
  bytes: number;
  sha256: string;
}
export interface ChunkMsg {
  offset: number;
  data: Buffer;
}
export interface TensorStreamMsg {
  header?: TensorSetHeaderMsg | null;
  chunk?: ChunkMsg | null;
  part?: "header" | "chunk";
}
export interface RoundRefMsg {
  fold: number;
  phase: string;
  round: number;
}
export interface JoinRequestMsg {
  site: string;
  joint: string;
  labels: string[];
  exams: number;
  backend: string;
  version: string;
}
export interface JoinReplyMsg {
  study: string;
  configJson: string;
}
export interface TaskRequestMsg {
  site: string;
}
export type TaskKind = "train" | "evaluate" | "wait" | "done";
export interface TrainInstructionsMsg {
  steps: number;
  lr: number;
  embed: boolean;
}
export interface TaskMsg {
  kind: TaskKind;
  ref: RoundRefMsg | null;
  hasModel: boolean;
  hasBank: boolean;
  aeRounds: number;
  train: TrainInstructionsMsg | null;
}
export interface ModelRequestMsg {
  site: string;
  ref: RoundRefMsg | null;
}
export interface UpdateHeaderMsg {
  site: string;
  ref: RoundRefMsg | null;
  samples: number;
  loss: Record<string, number>;
  metrics: Record<string, number>;
  tensors: TensorSetHeaderMsg | null;
}
export interface UpdateStreamMsg {
  header?: UpdateHeaderMsg | null;
  chunk?: ChunkMsg | null;
  part?: "header" | "chunk";
}
export interface EmbeddingHeaderMsg {
  site: string;
  ref: RoundRefMsg | null;
  tensors: TensorSetHeaderMsg | null;
  mix: number;
  noise: number;
}
export interface EmbeddingStreamMsg {
  header?: EmbeddingHeaderMsg | null;
  chunk?: ChunkMsg | null;
  part?: "header" | "chunk";
}
export interface EmbeddingRequestMsg {
  site: string;
  ref: RoundRefMsg | null;
}
export interface EvaluationMsg {
  site: string;
  fold: number;
  metricsJson: string;
  meanDice: number;
}
export type AckStatus = "accepted" | "duplicate" | "rejected";
export interface AckMsg {
  status: AckStatus;
  code: string;
  reason: string;
}
export interface WatchRequestMsg {
  replay: boolean;
}
export interface StudyEventMsg {
  seq: number;
  kind: string;
  json: string;
}

/** Locates proto/federation.proto from src/protocol or dist/protocol (package root ../../proto). */
export function protoPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    path.resolve(here, "../../proto/federation.proto"),
    path.resolve(here, "../proto/federation.proto"),
  ];
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw fjError(
      "FJ_PROTOCOL_PROTO_MISSING",
      `proto/federation.proto not found (looked at ${candidates.join(", ")}); reinstall the package`,
    );
  }
  return found;
}

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

let cached: grpc.ServiceClientConstructor | undefined;

/** The Federation service constructor (client) whose `.service` is the server definition. */
export function federationService(): grpc.ServiceClientConstructor {
  if (cached) return cached;
  const def = protoLoader.loadSync(protoPath(), LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    fedjoint: { v1: { Federation: grpc.ServiceClientConstructor } };
  };
  cached = pkg.fedjoint.v1.Federation;
  return cached;
}

export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
  "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
  "grpc.keepalive_time_ms": 20_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
};
