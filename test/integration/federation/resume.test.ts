/**
 * Acceptance: SIGKILL the coordinator during round 2 of 4 (after at least one update of that
 * round was accepted), restart it on the same state directory: the sites reconnect by
 * themselves and the study completes with exactly 4 aggregations, no update counted twice —
 * under a stateful strategy (FedAdam: server moments m, v and the step count persisted with the
 * study), whose final Θ equals that of the same study run without interruption.
 */
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { NamedTensor } from "../../../src/model/api.js";
import { unpackTensorSet } from "../../../src/protocol/tensors.js";
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

/** A stateful server optimiser: Adam moments over Θ (model updates, 2 local steps per round). */
const STUDY = studyConfig({ rounds: 4, localSteps: 2, strategy: { name: "fedadam", lr: 3e-3 } });

async function finalTheta(env: Env): Promise<NamedTensor[]> {
  const file = path.join(env.work, "coordinator", "model-0-seg-4.bin");
  return unpackTensorSet(await readFile(file), file);
}

describe("coordinator resume after SIGKILL", () => {
  let env: Env;
  let reference: Env;
  const procs: Proc[] = [];
  afterAll(async () => {
    for (const p of procs) p.kill("SIGKILL");
    for (const e of [env, reference]) if (e) await rm(e.work, { recursive: true, force: true });
  });

  it("completes with exactly 4 aggregations and a ledger without double counts", async () => {
    env = await makeEnv();
    const config = await writeConfig(env, STUDY);
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
    // the server state was persisted with the study and carried across the kill
    expect(st.strategy).toMatchObject({ fold: 0, phase: "seg", rounds: 4, scalars: { step: 4 } });
  });

  it("ends with the Θ of the same study run without interruption (server moments restored)", async () => {
    reference = await makeEnv();
    const config = await writeConfig(reference, STUDY);
    const port = await freePort();
    const coordinator = startCoordinator(reference, config, port);
    procs.push(coordinator);
    await coordinator.waitFor((l) => l.msg === "coordinator listening", "listening");
    const sites = SITES.map((s) => startSite(reference, s.name, port));
    procs.push(...sites);
    const exits = await Promise.all([coordinator.exited, ...sites.map((s) => s.exited)]);
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0, 0]);
    const [resumed, uninterrupted] = await Promise.all([finalTheta(env), finalTheta(reference)]);
    expect(resumed.map((t) => t.name)).toEqual(uninterrupted.map((t) => t.name));
    let max = 0;
    resumed.forEach((t, k) => {
      for (let i = 0; i < t.data.length; i++)
        max = Math.max(max, Math.abs(t.data[i] - uninterrupted[k].data[i]));
    });
    expect(max).toBeLessThanOrEqual(1e-6);
  });
});
