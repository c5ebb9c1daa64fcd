import { beforeAll, describe, expect, it } from "vitest";
import { initEngine } from "../../../src/model/engine/backend.js";
import { PAPER_LABELS } from "../../../src/model/labels.js";
import { modelSummary } from "../../../src/model/summary.js";

describe("model summary (paper Table 1, §3.3)", () => {
  beforeAll(async () => {
    await initEngine("auto");
  });

  it("Att-UNet base 32 depth 5: 8,713,744 shared, domain-specific ≤ 3 %, 9 scales", () => {
    const s = modelSummary("att-unet", {
      base: 32,
      depth: 5,
      joints: ["ankle", "knee", "shoulder"],
      labels: PAPER_LABELS,
    });
    expect(s.sharedParams).toBe(8_713_744);
    expect(s.domainFraction).toBeLessThan(0.03);
    expect(s.domainParams.knee).toBe(s.domainParams.ankle! + 33); // one more class: 32 weights + 1 bias
    expect(s.scales).toEqual([32, 64, 128, 256, 512, 256, 128, 64, 32]);
  });

  it("auto-encoder base 32 depth 5 ≈ 7.9M shared (Table 1), same 9 scales", () => {
    const s = modelSummary("ae", {
      base: 32,
      depth: 5,
      joints: ["ankle", "knee", "shoulder"],
      labels: PAPER_LABELS,
    });
    expect(Math.abs(s.sharedParams - 7.9e6) / 7.9e6).toBeLessThan(0.02);
    expect(s.domainFraction).toBeLessThan(0.03);
    expect(s.scales).toHaveLength(9);
  });
});
