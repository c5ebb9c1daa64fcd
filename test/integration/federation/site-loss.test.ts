/**
 * Acceptance: with minSites = 2, SIGKILL one site in the middle of a round: the round closes
 * after roundTimeout with the other two; the killed site restarts from its state directory and
 * rejoins at the next round.
 */
import { rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readCheckpoint, tensorsDigest } from "../../../src/model/checkpoint.js";
import {
  type Env,
  freePort,
  makeEnv,
  type Proc,
  readState,
  startCoordinator,
  startSite,
  studyConfig,
  writeConfig,
} from "./helpers.js";

describe("site loss and rejoin", () => {
  let env: Env;
  const procs: Proc[] = [];
  afterAll(async () => {
    for (const p of procs) p.kill("SIGKILL");
    if (env) await rm(env.work, { recursive: true, force: true });
  });

  it("closes the round with two sites after roundTimeout and takes the third back next round", async () => {
    env = await makeEnv();
    const timeoutS = 10;
    const config = await writeConfig(
      env,
      studyConfig({ rounds: 4, localSteps: 2, minSites: 2, roundTimeoutS: timeoutS }),
    );
    const port = await freePort();
    const coord = startCoordinator(env, config, port);
    procs.push(coord);
    await coord.waitFor((l) => l.msg === "coordinator listening", "listening");
    const ankle = startSite(env, "ankle", port);
    const knee = startSite(env, "knee", port);
    const shoulder = startSite(env, "shoulder", port);
    procs.push(ankle, knee, shoulder);
    // mid-round: shoulder has checkpointed round 0 and is training round 1
    await coord.waitFor((l) => l.msg === "round opened" && l.round === 1, "round 1");
    await shoulder.waitFor(
      (l) => l.msg === "round trained" && l.round === 0,
      "shoulder's round 0 checkpoint",
    );
    shoulder.kill("SIGKILL");
    await shoulder.exited;
    // what the killed site left on disk: its Γ_k (DSBN γ/β and statistics, heads) of its last push
    const left = await readCheckpoint(path.join(env.work, "sites", "shoulder", "gamma-fold0"));
    const leftDigest = tensorsDigest(left.tensors);
    expect(left.tensors.length).toBeGreaterThan(0);
    const closed = await coord.waitFor(
      (l) => l.msg === "round aggregated" && l.round === 1,
      "round 1 aggregated",
    );
    expect(closed.missing).toEqual(["shoulder"]);
    const again = startSite(env, "shoulder", port);
    procs.push(again);
    const exits = await Promise.all([coord.exited, ankle.exited, knee.exited, again.exited]);
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0, 0]);

    const st = await readState(env);
    expect(st.aggregations).toHaveLength(4);
    const r1 = st.aggregations[1];
    expect(r1.sites.sort()).toEqual(["ankle", "knee"]);
    expect(r1.durationMs).toBeGreaterThanOrEqual(timeoutS * 1000 - 50);
    // the restarted site is back from the next round on
    expect(st.aggregations[2].sites).toContain("shoulder");
    expect(st.aggregations[3].sites).toContain("shoulder");
    expect(st.ledger.some((e) => e.site === "shoulder" && e.round === 1)).toBe(false);
    expect(again.logLines().some((l) => l.msg === "joined study")).toBe(true);
    // it resumed its own Γ (DSBN, heads) from the state directory written after its round-0 push
    const resumed = again.logLines().find((l) => l.msg === "resumed Γ from the site state");
    expect(resumed?.round).toBe(0);
    // … bit for bit: the digest of the Γ_k the restarted trainer holds (read back from it after
    // loading) is the digest of the checkpoint the killed process left
    expect(resumed?.gammaSha256).toBe(leftDigest);
  });
});
