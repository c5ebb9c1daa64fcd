/**
 * Attack 4 of issue 13: "errors on streaming replies never reach the caller". Every refused call
 * — server-streaming PullModel / PullEmbeddings / Watch included — now ends with a gRPC status
 * whose details start with its FJ_ code and whose `fj-code` trailer carries it. The attacker's
 * calls set no deadline: each one returns because the server answers, not because a clock ran
 * out. The honest sites finish meanwhile.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import {
  ATTACKER,
  type Bench,
  bench,
  drain,
  expectHonestFinish,
  fjCode,
  joinAsKnee,
  unary,
} from "./helpers.js";

type Streaming = (req: unknown) => grpc.ClientReadableStream<unknown>;
const stream = (client: grpc.Client, rpc: string, req: unknown) =>
  drain((client as unknown as Record<string, Streaming>)[rpc].call(client, req));

describe("attack 4: statuses on streaming replies", () => {
  let b: Bench | undefined;
  afterAll(async () => b?.close());

  it("ends every refused call with a status and its FJ_ code, at once", async () => {
    b = await bench();
    b.startHonest();
    for (const s of ["ankle", "shoulder"])
      await b.coordinator.waitFor((l) => l.msg === "site joined" && l.site === s, `${s} joined`);
    await joinAsKnee(b);
    const seg = (round: number, fold = 0) => ({ fold, phase: "seg", round });
    const cases: [string, grpc.Client, string, unknown, grpc.status, string, RegExp][] = [
      [
        "a round with no model",
        b.attacker,
        "PullModel",
        { site: ATTACKER, ref: seg(5) },
        grpc.status.NOT_FOUND,
        "FJ_COORD_NO_MODEL",
        /no model for fold 0 seg round 5 \(the coordinator holds round 0\)/,
      ],
      [
        "a fold that does not exist",
        b.attacker,
        "PullModel",
        { site: ATTACKER, ref: seg(0, 9) },
        grpc.status.NOT_FOUND,
        "FJ_COORD_NO_MODEL",
        /fold 9/,
      ],
      [
        "a bad phase",
        b.attacker,
        "PullModel",
        { site: ATTACKER, ref: { fold: 0, phase: "evil", round: 0 } },
        grpc.status.INVALID_ARGUMENT,
        "FJ_PROTOCOL_REF",
        /phase 'evil', this study has seg/,
      ],
      [
        "another site's model",
        b.attacker,
        "PullModel",
        { site: "ankle", ref: seg(0) },
        grpc.status.PERMISSION_DENIED,
        "FJ_AUTH_IMPERSONATION",
        /certificate CN=knee cannot act as site 'ankle' \(PullModel\)/,
      ],
      [
        "another site's bank",
        b.attacker,
        "PullEmbeddings",
        { site: "shoulder", ref: seg(0) },
        grpc.status.PERMISSION_DENIED,
        "FJ_AUTH_IMPERSONATION",
        /cannot act as site 'shoulder'/,
      ],
      [
        "a model for a CN that is no site",
        b.intruder,
        "PullModel",
        { site: "intruder", ref: seg(0) },
        grpc.status.PERMISSION_DENIED,
        "FJ_AUTH_UNKNOWN_SITE",
        /CN=intruder is not a site of study it/,
      ],
      [
        "the study's events as a site",
        b.attacker,
        "Watch",
        { replay: true },
        grpc.status.PERMISSION_DENIED,
        "FJ_AUTH_OPERATOR",
        /CN=knee may not watch study it: operators are operator/,
      ],
    ];
    for (const [what, client, rpc, req, code, fj, details] of cases) {
      const r = await stream(client, rpc, req);
      expect(r.messages, what).toBe(0);
      expect(r.code, what).toBe(code);
      expect(r.fjCode, what).toBe(fj);
      expect(r.details, what).toMatch(new RegExp(`^${fj}: `));
      expect(r.details, what).toMatch(details);
    }
    // unary calls too
    const join = await unary(b.intruder, "Join", { site: "intruder", joint: "knee", labels: [], exams: 4 });
    expect((join as grpc.ServiceError).code).toBe(grpc.status.PERMISSION_DENIED);
    expect(fjCode(join)).toBe("FJ_AUTH_UNKNOWN_SITE");
    const task = await unary(b.attacker, "NextTask", { site: "ankle" });
    expect(fjCode(task)).toBe("FJ_AUTH_IMPERSONATION");
    const evaluation = await unary(b.attacker, "ReportEvaluation", {
      site: ATTACKER,
      fold: 0,
      metricsJson: "{",
      meanDice: 0.5,
    });
    expect((evaluation as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(fjCode(evaluation)).toBe("FJ_PROTOCOL_EVALUATION");
    // the round-0 model itself still streams, with an OK status
    const ok = await stream(b.attacker, "PullModel", { site: ATTACKER, ref: seg(0) });
    expect(ok.code).toBe(grpc.status.OK);
    expect(ok.messages).toBeGreaterThan(1);

    const st = await expectHonestFinish(b);
    expect(st.ledger.map((e) => e.site).sort()).toEqual(["ankle", "shoulder"]);
  });
});
