/**
 * Methods that federate nothing ("individual"): rounds still pace the sites and carry sample counts
 * and losses, but results hold no tensors and the global model stays empty.
 */
import { fjError } from "../errors.js";
import type { NamedTensor } from "../model/api.js";
import type { StudyConfig } from "../study/config.js";
import { defaultTrainInstructions, forEverySite } from "./instructions.js";
import type { RoundAggregator, SiteResult, Strategy } from "./strategy.js";

class Counter implements RoundAggregator {
  private readonly added: string[] = [];
  private samples = 0;
  get sites(): readonly string[] {
    return this.added;
  }
  get totalSamples(): number {
    return this.samples;
  }
  add(result: SiteResult): void {
    if (result.tensors.length > 0) {
      throw fjError("FJ_AGG_SCHEMA", `update of ${result.site}: this method federates no tensors`);
    }
    this.added.push(result.site);
    this.samples += result.samples;
  }
  result(): NamedTensor[] {
    return [];
  }
  snapshot(): Uint8Array[] {
    return [Buffer.from(JSON.stringify({ sites: this.added, samples: this.samples }), "utf8")];
  }
  static restore(buf: Buffer): Counter {
    const c = new Counter();
    const s = JSON.parse(buf.toString("utf8")) as { sites: string[]; samples: number };
    c.added.push(...s.sites);
    c.samples = s.samples;
    return c;
  }
}

export function localOnly(study: StudyConfig): Strategy {
  return {
    name: "local-only",
    initialize: () => ({ tensors: [], scalars: {} }),
    configureTrain: (ctx, sites) => forEverySite(sites, defaultTrainInstructions(study, ctx)),
    configureEvaluate: (ctx, sites) => forEverySite(sites, { round: ctx.rounds }),
    begin: () => new Counter(),
    restore: (_schema, snapshot) => Counter.restore(snapshot),
    aggregate: (_round, _current, state) => ({ model: [], state }),
  };
}
