/** A study's summary from its persisted state: rounds, traffic, compute, evaluations. */
import type { Phase } from "../study/methods.js";
import type { StudyState } from "./study.js";

export interface RoundSummary {
  fold: number;
  phase: Phase;
  round: number;
  sites: string[];
  missing: string[];
  /** Round open → aggregate persisted, seconds. */
  wallSeconds: number;
  /** Per site: local compute seconds reported with its update (train + embeddings + validation). */
  computeSeconds: Record<string, number>;
  /** Per site: payload bytes site → coordinator (update, embeddings) and back (model, bank). */
  bytes: Record<string, { sent: number; received: number }>;
  /** Per site: validation mean Dice of the round's starting model (SEG rounds). */
  valDiceBefore: Record<string, number>;
}

export interface StudySummary {
  study: string;
  method: string;
  status: string;
  aggregations: number;
  rounds: RoundSummary[];
  /** Per site and fold: validation Dice (mean and per label) and the test exam's 3D Dice per label. */
  evaluations: {
    site: string;
    fold: number;
    meanDice: number;
    dice: Record<string, number>;
    testDice: Record<string, number>;
  }[];
  /** results.json in the state directory (eval format, for `fedjoint report`), when done. */
  results: string | null;
  wallSeconds: number | null;
}

export function summarize(st: StudyState, resultsFile: string | null = null): StudySummary {
  const rounds: RoundSummary[] = st.aggregations.map((a) => {
    const key = `${a.fold}/${a.phase}/${a.round}`;
    const entries = st.ledger.filter((e) => e.fold === a.fold && e.phase === a.phase && e.round === a.round);
    const computeSeconds: Record<string, number> = {};
    const valDiceBefore: Record<string, number> = {};
    for (const e of entries) {
      if (e.metrics.compute_ms !== undefined) computeSeconds[e.site] = e.metrics.compute_ms / 1000;
      if (e.metrics.val_dice_before !== undefined) valDiceBefore[e.site] = e.metrics.val_dice_before;
    }
    const bytes: Record<string, { sent: number; received: number }> = {};
    for (const [site, t] of Object.entries(st.traffic[key] ?? {}))
      bytes[site] = { sent: t.sent, received: t.received };
    return {
      fold: a.fold,
      phase: a.phase,
      round: a.round,
      sites: a.sites,
      missing: a.missing,
      wallSeconds: a.durationMs / 1000,
      computeSeconds,
      bytes,
      valDiceBefore,
    };
  });
  const evaluations = st.evaluations.map((e) => ({
    site: e.site,
    fold: e.fold,
    meanDice: e.meanDice,
    dice: Object.fromEntries(Object.entries(e.validation).map(([label, m]) => [label, m.dice])),
    testDice: Object.fromEntries(Object.entries(e.test.labels).map(([label, m]) => [label, m.dice])),
  }));
  const wall =
    st.startedAt && st.finishedAt ? (Date.parse(st.finishedAt) - Date.parse(st.startedAt)) / 1000 : null;
  return {
    study: st.config.study,
    method: st.config.method,
    status: st.status,
    aggregations: st.aggregations.length,
    rounds,
    evaluations,
    results: st.status === "done" ? resultsFile : null,
    wallSeconds: wall,
  };
}
