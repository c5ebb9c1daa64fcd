/**
 * Wire tap for audits and the privacy test: when FEDJOINT_WIRE_TAP names a file, every message
 * header that carries tensors (names, shapes, dtypes and every other field, never the payload)
 * is appended to it as one JSON line `{pid, direction, rpc, header}`, in both directions.
 */
import { appendFileSync } from "node:fs";

export function wireTap(direction: "sent" | "received", rpc: string, header: unknown): void {
  const file = process.env.FEDJOINT_WIRE_TAP;
  if (!file) return;
  appendFileSync(file, `${JSON.stringify({ pid: process.pid, direction, rpc, header })}\n`);
}
