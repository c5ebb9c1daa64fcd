import pino, { type Logger } from "pino";

export type { Logger };

/**
 * Structured logs: one JSON object per event with stable field names (`site`, `fold`, `phase`,
 * `round`, `loss.ce`, …). Human formatting (pino-pretty) only when stderr is a TTY.
 * Logs go to stderr so that stdout stays free for `--json` results.
 */
export function createLogger(
  options: { name: string; level?: string; pretty?: boolean } = { name: "fedjoint" },
): Logger {
  const level = options.level ?? process.env.FEDJOINT_LOG_LEVEL ?? "info";
  const pretty = options.pretty ?? (process.stderr.isTTY === true && process.env.FEDJOINT_LOG_JSON !== "1");
  if (pretty) {
    return pino({
      name: options.name,
      level,
      transport: {
        target: "pino-pretty",
        options: { destination: 2, colorize: true, translateTime: "HH:MM:ss" },
      },
    });
  }
  return pino({ name: options.name, level }, pino.destination({ dest: 2, sync: true }));
}

/** A logger that drops everything (for tests and library use without a caller logger). */
export const silentLogger: Logger = pino({ level: "silent" });
