/**
 * Methods that federate nothing ("individual"): rounds still pace the sites and carry sample counts
 * and losses, but results hold no tensors and the global model stays empty.
 */
import { fjError } from "../errors.js";
import type { NamedTensor } from "../model/api.js";
import type { StudyConfig } from "../study/config.js";
import { evaluateInstructions, forEverySite, PLAIN_SITE_POLICY, trainInstructions } from "./instructions.js";
import type { RoundAggregator, SiteResult, Strategy, TensorSchema } from "./strategy.js";

class Counter implements RoundAggregator {
  readonly schema: TensorSchema = { tensors: [] };
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

/**
 * Each site trains Θ and Γ_k alone (model updates that are never sent, the site's Adam kept, no
 * personalisation: Γ_k already trains with its own Θ); only the study's validation cadence carries
 * over from its strategy block.
 */
export function localOnly(study: StudyConfig): Strategy {
  const policy = { ...PLAIN_SITE_POLICY, validateEvery: study.strategy.validateEvery };
  return {
    name: "local-only",
    initialize: () => ({ tensors: [], scalars: {} }),
    configureTrain: (ctx, sites) => forEverySite(sites, trainInstructions(study, ctx, sites, policy)),
    configureEvaluate: (ctx, sites) => forEverySite(sites, evaluateInstructions(study, ctx, policy)),
    begin: () => new Counter(),
    restore: (_schema, snapshot) => Counter.restore(snapshot),
    aggregate: (_round, _current, state) => ({ model: [], state }),
  };
}
