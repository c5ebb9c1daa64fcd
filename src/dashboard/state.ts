/**
 * The dashboard's view model, folded from the study events (pure, incremental: `apply` is
 * O(1) amortised per event). Events already seen (seq ≤ last seq) are ignored, so a replay
 * followed by live delivery can overlap safely.
 */
import type { StudyEvent } from "../events/events.js";
import type { DashboardState, LooSummary, RoundView, SiteView } from "./types.js";

const RECENT = 25;

export function roundKey(r: { fold: number; phase: string; round: number }): string {
  return `f${r.fold} ${r.phase} r${r.round}`;
}

export class DashboardStateBuilder {
  private readonly sites = new Map<string, SiteView>();
  private readonly rounds = new Map<string, RoundView>();
  private readonly losses: DashboardState["losses"] = [];
  /** site → fold → label → metric → value */
  private readonly evaluations = new Map<
    string,
    { joint: SiteView["joint"]; folds: Map<number, Record<string, Record<string, number>>> }
  >();
  private readonly recent: StudyEvent[] = [];
  private status: DashboardState["status"] = "waiting";
  private config: Record<string, unknown> | undefined;
  private startedAt: string | undefined;
  private lastSeq = 0;
  private lastTime: string | undefined;
  private count = 0;
  private embeddingsReceived = 0;
  private done: DashboardState["done"];

  constructor(readonly study: string) {}

  /** Applies one event; returns false when it was ignored (other study, or already seen). */
  apply(e: StudyEvent): boolean {
    if (e.study !== this.study || e.seq <= this.lastSeq) return false;
    this.lastSeq = e.seq;
    this.lastTime = e.time;
    this.count += 1;
    this.recent.push(e);
    if (this.recent.length > RECENT) this.recent.shift();
    switch (e.kind) {
      case "study.started":
        this.status = "running";
        this.config = e.config;
        this.startedAt = e.time;
        break;
      case "site.joined": {
        const prev = this.sites.get(e.site);
        this.sites.set(e.site, {
          site: e.site,
          joint: e.joint,
          samples: e.samples,
          backend: e.backend,
          status: "joined",
          joinedAt: e.time,
          accepted: prev?.accepted ?? 0,
          rejected: prev?.rejected ?? 0,
          bytes: prev?.bytes ?? 0,
          vectors: prev?.vectors ?? 0,
          lastRound: prev?.lastRound,
          lastLoss: prev?.lastLoss,
          lastRejection: prev?.lastRejection,
        });
        if (this.status === "waiting") this.status = "running";
        break;
      }
      case "site.left": {
        const s = this.sites.get(e.site);
        if (s !== undefined) {
          s.status = "left";
          s.leftReason = e.reason;
        }
        break;
      }
      case "round.opened": {
        const key = roundKey(e);
        this.rounds.set(key, {
          key,
          fold: e.fold,
          phase: e.phase,
          round: e.round,
          sites: [...e.sites],
          openedAt: e.time,
          missing: [],
          accepted: [],
          rejected: [],
        });
        for (const site of e.sites) this.setStatus(site, "training");
        if (this.status === "waiting") this.status = "running";
        break;
      }
      case "update.accepted": {
        const key = roundKey(e);
        this.round(e, key).accepted.push(e.site);
        const s = this.sites.get(e.site);
        if (s !== undefined) {
          s.accepted += 1;
          s.bytes += e.bytes;
          s.lastRound = key;
          s.lastLoss = { ...e.loss };
          if (s.status !== "left") s.status = "submitted";
        }
        this.losses.push({
          key,
          site: e.site,
          values: { ...e.loss },
          ...(e.validationDice === undefined ? {} : { validationDice: e.validationDice }),
        });
        break;
      }
      case "update.rejected": {
        const key = roundKey(e);
        this.round(e, key).rejected.push({ site: e.site, code: e.code, reason: e.reason });
        const s = this.sites.get(e.site);
        if (s !== undefined) {
          s.rejected += 1;
          s.lastRejection = { round: key, code: e.code, reason: e.reason };
          if (s.status !== "left") s.status = "rejected";
        }
        break;
      }
      case "round.closed": {
        const r = this.round(e, roundKey(e));
        r.closedAt = e.time;
        r.durationMs = e.durationMs;
        r.missing = [...e.missing];
        for (const site of e.missing) this.setStatus(site, "missed");
        for (const site of e.sites) this.setStatus(site, "waiting");
        break;
      }
      case "round.aggregated": {
        const r = this.round(e, roundKey(e));
        r.aggregatedAt = e.time;
        r.aggregationMs = e.durationMs;
        r.samples = e.samples;
        r.bytesIn = e.bytesIn;
        r.bytesOut = e.bytesOut;
        break;
      }
      case "embeddings.received": {
        this.embeddingsReceived += 1;
        const s = this.sites.get(e.site);
        if (s !== undefined) s.vectors += e.vectors;
        break;
      }
      case "evaluation.reported": {
        let entry = this.evaluations.get(e.site);
        if (entry === undefined) {
          entry = { joint: e.joint, folds: new Map() };
          this.evaluations.set(e.site, entry);
        }
        entry.folds.set(e.fold, e.metrics);
        this.setStatus(e.site, "evaluated");
        break;
      }
      case "study.done":
        this.status = "done";
        this.done = { folds: e.folds, rounds: e.rounds, durationMs: e.durationMs };
        for (const s of this.sites.values()) if (s.status !== "left") s.status = "done";
        break;
    }
    return true;
  }

  snapshot(): DashboardState {
    const state: DashboardState = {
      study: this.study,
      status: this.status,
      lastSeq: this.lastSeq,
      events: this.count,
      sites: [...this.sites.values()].map((s) => ({ ...s })),
      rounds: [...this.rounds.values()].map((r) => ({ ...r })),
      losses: this.losses.slice(),
      loo: this.looSummary(),
      embeddingsReceived: this.embeddingsReceived,
      recent: this.recent.slice().reverse(),
    };
    if (this.config !== undefined) state.config = this.config;
    if (this.startedAt !== undefined) state.startedAt = this.startedAt;
    if (this.lastTime !== undefined) state.lastTime = this.lastTime;
    if (this.done !== undefined) state.done = this.done;
    return state;
  }

  private setStatus(site: string, status: SiteView["status"]): void {
    const s = this.sites.get(site);
    if (s !== undefined && s.status !== "left") s.status = status;
  }

  /** The round an event refers to (created if its round.opened was never seen, e.g. a trimmed log). */
  private round(
    e: { fold: number; phase: RoundView["phase"]; round: number; time: string },
    key: string,
  ): RoundView {
    let r = this.rounds.get(key);
    if (r === undefined) {
      r = {
        key,
        fold: e.fold,
        phase: e.phase,
        round: e.round,
        sites: [],
        openedAt: e.time,
        missing: [],
        accepted: [],
        rejected: [],
      };
      this.rounds.set(key, r);
    }
    return r;
  }

  private looSummary(): LooSummary[] {
    const out: LooSummary[] = [];
    for (const [site, entry] of this.evaluations) {
      const labels = new Map<string, Map<string, number[]>>();
      const metricNames = new Set<string>();
      for (const metrics of entry.folds.values()) {
        for (const [label, values] of Object.entries(metrics)) {
          let byMetric = labels.get(label);
          if (byMetric === undefined) {
            byMetric = new Map();
            labels.set(label, byMetric);
          }
          for (const [metric, v] of Object.entries(values)) {
            metricNames.add(metric);
            let list = byMetric.get(metric);
            if (list === undefined) {
              list = [];
              byMetric.set(metric, list);
            }
            if (Number.isFinite(v)) list.push(v);
          }
        }
      }
      out.push({
        site,
        joint: entry.joint,
        folds: [...entry.folds.keys()].sort((a, b) => a - b),
        metricNames: [...metricNames],
        rows: [...labels].map(([label, byMetric]) => ({
          label,
          values: Object.fromEntries([...byMetric].map(([metric, list]) => [metric, meanStd(list)])),
        })),
      });
    }
    return out;
  }
}

export function meanStd(values: number[]): { mean: number; std: number; n: number } {
  const n = values.length;
  if (n === 0) return { mean: Number.NaN, std: Number.NaN, n };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, std: 0, n };
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  return { mean, std: Math.sqrt(variance), n };
}

/** Folds a whole list of events (tests, tools). */
export function reduceEvents(study: string, events: Iterable<StudyEvent>): DashboardState {
  const b = new DashboardStateBuilder(study);
  for (const e of events) b.apply(e);
  return b.snapshot();
}
