/**
 * Test helper: a real `nats-server -js` (Debian package) on a free loopback port with its store
 * in a temp dir. A missing binary is a failure with a one-line reason, never a skip.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface NatsServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startNatsServer(): Promise<NatsServer> {
  const probe = spawnSync("nats-server", ["--version"], { encoding: "utf8" });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(
      `nats-server is required for this test (Debian package nats-server; CI=${process.env.CI ?? "unset"}): ${probe.error?.message ?? probe.stderr}`,
    );
  }
  const store = mkdtempSync(join(tmpdir(), "fedjoint-nats-"));
  const port = await freePort();
  const child: ChildProcess = spawn(
    "nats-server",
    ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", store],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let log = "";
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      log += chunk.toString();
      if (log.includes("Server is ready")) resolve();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) =>
      reject(new Error(`nats-server exited with ${code} before it was ready:\n${log}`)),
    );
    child.once("error", reject);
  });
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(store, { recursive: true, force: true });
    },
  };
}
