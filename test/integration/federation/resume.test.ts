/**
 * Acceptance: SIGKILL the coordinator during round 2 of 4 (after at least one update of that
 * round was accepted), restart it on the same state directory: the sites reconnect by
 * themselves and the study completes with exactly 4 aggregations, no update counted twice.
 */
import { rm } from "node:fs/promises";
import { afterAll, describe, expect, it } from "vitest";
import {
  type Env,
  freePort,
  makeEnv,
  type Proc,
  readState,
  SITES,
  startCoordinator,
  startSite,
  studyConfig,
  writeConfig,
} from "./helpers.js";

describe("coordinator resume after SIGKILL", () => {
  let env: Env;
  const procs: Proc[] = [];
  afterAll(async () => {
    for (const p of procs) p.kill("SIGKILL");
    if (env) await rm(env.work, { recursive: true, force: true });
  });

  it("completes with exactly 4 aggregations and a ledger without double counts", async () => {
    env = await makeEnv();
    const config = await writeConfig(env, studyConfig({ rounds: 4, localSteps: 2 }));
    const port = await freePort();
    const first = startCoordinator(env, config, port);
    procs.push(first);
    await first.waitFor((l) => l.msg === "coordinator listening", "listening");
    const sites = SITES.map((s) => startSite(env, s.name, port));
    procs.push(...sites);
    // Make "during round 2" deterministic: freeze knee and shoulder as round 2 opens, let ankle's
    // round-2 update be accepted, then SIGKILL the coordinator with that update in its ledger.
    await first.waitFor((l) => l.msg === "round opened" && l.round === 2, "round 2");
    const [, knee, shoulder] = sites;
    knee.child.kill("SIGSTOP");
    shoulder.child.kill("SIGSTOP");
    await first.waitFor(
      (l) => l.msg === "update accepted" && l.round === 2 && l.site === "ankle",
      "ankle's round-2 update",
    );
    first.kill("SIGKILL");
    const killed = await first.exited;
    expect(killed.signal).toBe("SIGKILL");
    const mid = await readState(env);
    expect(mid.aggregations).toHaveLength(2);
    expect(mid.ledger.filter((e) => e.round === 2).map((e) => e.site)).toEqual(["ankle"]);
    knee.child.kill("SIGCONT");
    shoulder.child.kill("SIGCONT");

    const second = startCoordinator(env, config, port);
    procs.push(second);
    const resumed = await second.waitFor((l) => l.msg === "resumed study from state directory", "resume");
    expect(resumed.round).toBe(2);
    const exits = await Promise.all([second.exited, ...sites.map((s) => s.exited)]);
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0, 0]);

    const st = await readState(env);
    expect(st.status).toBe("done");
    expect(st.aggregations.map((a) => a.round)).toEqual([0, 1, 2, 3]);
    const keys = st.ledger.map((e) => `${e.site}/${e.fold}/${e.phase}/${e.round}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys).toHaveLength(12);
    for (const a of st.aggregations) {
      expect(a.sites.sort()).toEqual(["ankle", "knee", "shoulder"]);
      const counted = st.ledger.filter((e) => e.round === a.round).reduce((n, e) => n + e.samples, 0);
      expect(a.samples).toBe(counted);
    }
    const summary = second.json<{ aggregations: number }>();
    expect(summary.aggregations).toBe(4);
  });
});
