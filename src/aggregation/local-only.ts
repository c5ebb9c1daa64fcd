/**
 * "individual" training: nothing is federated. Rounds still pace the sites and carry sample
 * counts and losses, but updates hold no tensors and the aggregate is empty.
 */
import { ProtocolError } from "../errors.js";
import type { NamedTensor } from "../model/api.js";
import type { ClientUpdate, RoundAggregator, Strategy, TensorSchema } from "./strategy.js";

class Counter implements RoundAggregator {
  private readonly added: string[] = [];
  private samples = 0;
  get sites(): readonly string[] {
    return this.added;
  }
  get totalWeight(): number {
    return this.added.length;
  }
  get totalSamples(): number {
    return this.samples;
  }
  add(update: ClientUpdate): void {
    if (update.tensors.length > 0) {
      throw new ProtocolError(
        "FJ_AGG_SCHEMA",
        `update of ${update.site}: individual training sends no tensors`,
      );
    }
    this.added.push(update.site);
    this.samples += update.samples;
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

export class LocalOnly implements Strategy {
  readonly name = "local-only";
  readonly transmitsModel = false;
  weight(): number {
    return 1;
  }
  begin(_schema: TensorSchema): RoundAggregator {
    return new Counter();
  }
  restore(_schema: TensorSchema, snapshot: Buffer): RoundAggregator {
    return Counter.restore(snapshot);
  }
}
