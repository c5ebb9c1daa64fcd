/**
 * Public types of the dashboard: what the coordinator passes in (options, the embedding
 * snapshot callback) and what the browser reads (`/api/state`, `/api/embeddings`).
 */
import type { EventBus, StudyEvent } from "../events/events.js";
import type { Joint } from "../joints.js";
import type { Logger } from "../log.js";
import type { Phase } from "../study/methods.js";
import type { StudyMetrics } from "./metrics.js";

/**
 * The coordinator's embedding bank for one round, as the dashboard needs it: per scale
 * (1-based, s1…s9 = 4 encoder levels, bottleneck, 4 decoder levels), per site, the anonymised
 * vectors the sites uploaded. Vectors of one scale share one dimension; they need not be
 * normalised (the dashboard normalises). Nothing here identifies a slice or an exam.
 */
export interface EmbeddingSnapshot {
  fold: number;
  phase: Phase;
  round: number;
  scales: EmbeddingScale[];
}

export interface EmbeddingScale {
  /** 1-based scale index (1…9). */
  scale: number;
  /** Site id → vectors. */
  sites: Record<string, ReadonlyArray<ArrayLike<number>>>;
}

/** `GET /api/embeddings`: PCA projections (scatter) and cosine-similarity matrices. */
export interface EmbeddingView {
  available: boolean;
  /** Why nothing is shown (no callback, no embeddings yet, error). */
  reason?: string;
  fold?: number;
  phase?: Phase;
  round?: number;
  scatter: ScatterView[];
  cosine: CosineView[];
}

export interface ScatterView {
  scale: number;
  /** Fraction of the variance carried by PC1 and PC2. */
  explained: [number, number];
  points: { site: string; x: number; y: number }[];
}

export interface CosineView {
  scale: number;
  sites: string[];
  /**
   * matrix[i][j] = mean cosine similarity between vectors of sites[i] and sites[j] (i = j: distinct
   * pairs; all pairs up to 10⁵, else 10⁵ seeded random pairs: src/eval/cosine.ts); NaN without pairs.
   */
  matrix: number[][];
}

export interface DashboardTls {
  cert: string | Buffer;
  key: string | Buffer;
  /** With a CA, clients presenting a certificate signed by it are authorised without a token (mTLS). */
  ca?: string | Buffer;
}

export interface DashboardOptions {
  bus: EventBus;
  study: string;
  /** Interface to listen on: "127.0.0.1" / "::1" / "localhost" are loopback; "" or "0.0.0.0" are all interfaces. */
  host: string;
  /** TCP port (0 = any free port; the handle's url says which). */
  port: number;
  /** Required (or `tls.ca`) unless host is loopback: `Authorization: Bearer <token>` or `?token=<token>`. */
  token?: string;
  tls?: DashboardTls;
  /**
   * With `tls.ca`: the certificate CNs a client certificate must carry to open the dashboard
   * (the coordinator's operators); absent, any certificate the CA signed does.
   */
  operators?: readonly string[];
  /** Served at /metrics and fed from the dashboard's subscription; one is created when absent. */
  metrics?: StudyMetrics;
  /** The coordinator's embedding bank (latest round), for the scatter and cosine matrices. */
  embeddings?: () => Promise<EmbeddingSnapshot | null>;
  /** Scales shown as PCA scatter plots (default: first, middle and last available = s1, s5, s9 at depth 5). */
  scatterScales?: number[];
  logger?: Logger;
}

export interface DashboardHandle {
  /** Base URL (no token), e.g. http://127.0.0.1:8080/ */
  url: string;
  /** The current view model (what /api/state returns). */
  state(): DashboardState;
  close(): Promise<void>;
}

export type SiteStatus =
  | "joined"
  | "training"
  | "submitted"
  | "rejected"
  | "missed"
  | "waiting"
  | "evaluated"
  | "left"
  | "done";

export interface SiteView {
  site: string;
  joint: Joint;
  samples: number;
  backend: string;
  status: SiteStatus;
  joinedAt: string;
  leftReason?: string;
  accepted: number;
  rejected: number;
  bytes: number;
  vectors: number;
  /** Round key of the last accepted update, e.g. "f0 seg r3". */
  lastRound?: string;
  lastLoss?: Record<string, number>;
  lastRejection?: { round: string; code: string; reason: string };
}

export interface RoundView {
  key: string;
  fold: number;
  phase: Phase;
  round: number;
  sites: string[];
  openedAt: string;
  closedAt?: string;
  aggregatedAt?: string;
  durationMs?: number;
  aggregationMs?: number;
  missing: string[];
  accepted: string[];
  rejected: { site: string; code: string; reason: string }[];
  samples?: number;
  bytesIn?: number;
  bytesOut?: number;
}

export interface LossPoint {
  /** Round key. */
  key: string;
  site: string;
  /** Loss components of the round (means over its steps). */
  values: Record<string, number>;
  /** The site's validation Dice of the model it trained from (SEG rounds). */
  validationDice?: number;
}

export interface LooSummary {
  site: string;
  joint: Joint;
  folds: number[];
  metricNames: string[];
  /** label → metric → mean/std over folds (std = sample std, 0 with one fold). */
  rows: { label: string; values: Record<string, { mean: number; std: number; n: number }> }[];
}

export interface DashboardState {
  study: string;
  status: "waiting" | "running" | "done";
  config?: Record<string, unknown>;
  startedAt?: string;
  lastSeq: number;
  lastTime?: string;
  events: number;
  sites: SiteView[];
  rounds: RoundView[];
  losses: LossPoint[];
  loo: LooSummary[];
  embeddingsReceived: number;
  recent: StudyEvent[];
  done?: { folds: number; rounds: number; durationMs: number };
}
