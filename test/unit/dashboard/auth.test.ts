import { describe, expect, it } from "vitest";
import { isLoopback, parseDashboardAddress, tokenMatches } from "../../../src/dashboard/auth.js";
import { InputError } from "../../../src/errors.js";

describe("dashboard address and access", () => {
  it("parses --dashboard values", () => {
    expect(parseDashboardAddress(":8080")).toEqual({ host: "", port: 8080 });
    expect(parseDashboardAddress("8080")).toEqual({ host: "", port: 8080 });
    expect(parseDashboardAddress("127.0.0.1:0")).toEqual({ host: "127.0.0.1", port: 0 });
    expect(parseDashboardAddress("[::1]:9000")).toEqual({ host: "::1", port: 9000 });
    expect(() => parseDashboardAddress("host")).toThrow(InputError);
    expect(() => parseDashboardAddress(":70000")).toThrow(
      /--dashboard ":70000": port must be an integer 0–65535/,
    );
    expect(() => parseDashboardAddress("a:b:1")).toThrow(/expected \[HOST\]:PORT/);
  });
  it("knows loopback hosts and compares tokens", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"]) expect(isLoopback(h)).toBe(true);
    for (const h of ["", "0.0.0.0", "::", "10.0.0.5", "coord.example"]) expect(isLoopback(h)).toBe(false);
    expect(tokenMatches("secret-token-0123456789", "secret-token-0123456789")).toBe(true);
    expect(tokenMatches("secret-token-012345678", "secret-token-0123456789")).toBe(false);
    expect(tokenMatches(undefined, "x")).toBe(false);
  });
});
