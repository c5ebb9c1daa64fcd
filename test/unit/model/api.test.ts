/**
 * The partition of a variable by its name (src/model/api.ts): `shared/…` is Θ, `domain/<joint>/…`
 * is that joint's Γ_k, and anything else is no variable of the network.
 */
import { describe, expect, it } from "vitest";
import { isShared, scopeOf } from "../../../src/model/api.js";

describe("variable scopes", () => {
  it("shared/… is shared, domain/<joint>/… is that joint's, for every joint", () => {
    expect(scopeOf("shared/enc0/conv1/kernel")).toBe("shared");
    expect(scopeOf("domain/ankle/head/bias")).toEqual({ domain: "ankle" });
    expect(scopeOf("domain/knee/enc0/bn1/gamma")).toEqual({ domain: "knee" });
    expect(scopeOf("domain/shoulder/x")).toEqual({ domain: "shoulder" });
    expect(isShared("shared/x")).toBe(true);
    expect(isShared("domain/knee/x")).toBe(false);
    expect(isShared("xshared/x")).toBe(false);
    expect(isShared("embedding/scale0")).toBe(false);
  });

  it("refuses any other name, an unknown joint and a prefix that is not at the start", () => {
    for (const name of [
      "domain/hip/x",
      "domain/knee",
      "x/domain/knee/y",
      "sharedx",
      "",
      "Shared/x",
      "domain//x",
    ])
      expect(() => scopeOf(name), name).toThrow(
        `variable '${name}' is neither shared/… nor domain/<joint>/…`,
      );
  });
});
