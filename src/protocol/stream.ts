/**
 * Stream helpers: write a header then ≤ 1 MiB chunks with back-pressure, and read a
 * header-then-chunks stream back into tensors. Used by both the coordinator's service and the
 * site-client's transport, so the chunk logic lives in one place.
 */
import type { Readable, Writable } from "node:stream";
import { fjError } from "../errors.js";
import type { NamedTensor } from "../model/api.js";
import type { ChunkMsg, TensorSetHeaderMsg } from "./proto.js";
import { chunksOf, TensorSetReceiver } from "./tensors.js";

/**
 * Writes one message, waiting for 'drain' when the stream's buffer is full. With `signal`, a wait
 * for 'drain' ends (rejecting with the signal's reason) when the signal aborts — a reader that
 * stopped reading or went away cannot hold the writer forever.
 */
export async function writeMessage(stream: Writable, message: unknown, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  if (stream.write(message)) return;
  await new Promise<void>((resolve, reject) => {
    const done = () => {
      stream.off("drain", onDrain);
      stream.off("error", onError);
      signal?.removeEventListener("abort", onAbort);
    };
    const onDrain = () => {
      done();
      resolve();
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    const onAbort = () => {
      done();
      reject(signal?.reason);
    };
    stream.once("drain", onDrain);
    stream.once("error", onError);
    signal?.addEventListener("abort", onAbort);
  });
}

/**
 * Writes `wrap(header)` then `wrapChunk(chunk)` for each chunk of the payload. Returns the bytes
 * written (payload plus header size estimate).
 */
export async function writeTensorStream(
  stream: Writable,
  first: unknown,
  payload: Buffer,
  wrapChunk: (chunk: ChunkMsg) => unknown = (chunk) => ({ chunk }),
  signal?: AbortSignal,
): Promise<number> {
  await writeMessage(stream, first, signal);
  for (const chunk of chunksOf(payload)) await writeMessage(stream, wrapChunk(chunk), signal);
  return payload.length;
}

/** Server-side limits of one stream. */
export interface StreamLimits {
  /** Longest wait for the peer's next message (ms). */
  idleMs: number;
  /** Longest lifetime of the whole stream (ms). */
  totalMs: number;
}

/**
 * Makes `stream` fetch a message from its source only when `allow()` was called for it, until
 * `free()`. A Node Readable otherwise prefetches up to its high-water mark (16 objects: 16 MiB of
 * chunks for a gRPC stream) as soon as one message is read — so an upload whose header was read
 * but which waits for an upload slot would buffer megabytes outside the slot's bound. Once the
 * stream holds its slot, `free()` lets it prefetch again (throughput).
 */
export function readOnDemand(stream: Readable): { allow: () => void; free: () => void } {
  const fetch = stream._read.bind(stream);
  let credit = 0;
  let pending = false;
  stream._read = (size: number) => {
    if (credit > 0) {
      credit--;
      fetch(size);
    } else pending = true;
  };
  return {
    allow: () => {
      if (pending) {
        pending = false;
        fetch(1);
      } else credit = 1;
    },
    free: () => {
      stream._read = fetch;
      if (pending) {
        pending = false;
        fetch(1);
      }
    },
  };
}

/**
 * The messages of `source` as long as the peer keeps to the limits: waiting more than `idleMs` for
 * the next message throws FJ_PROTOCOL_IDLE, going past `totalMs` since `startedAt` throws
 * FJ_PROTOCOL_DEADLINE. The idle clock runs only while the consumer waits for a message (time the
 * consumer spends elsewhere, e.g. waiting for an upload slot, is not the peer's).
 */
export async function* guardedMessages<T>(
  source: AsyncIterable<T>,
  limits: StreamLimits,
  what: string,
  startedAt = Date.now(),
  /** Called before each wait for a message (readOnDemand's `allow`). */
  allow?: () => void,
): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  const deadline = startedAt + limits.totalMs;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) {
      throw fjError(
        "FJ_PROTOCOL_DEADLINE",
        `${what}: not finished within ${Math.round(limits.totalMs / 1000)} s`,
      );
    }
    const idle = limits.idleMs <= left;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            idle
              ? fjError(
                  "FJ_PROTOCOL_IDLE",
                  `${what}: nothing received for ${Math.round(limits.idleMs / 1000)} s (idle limit)`,
                )
              : fjError(
                  "FJ_PROTOCOL_DEADLINE",
                  `${what}: not finished within ${Math.round(limits.totalMs / 1000)} s`,
                ),
          ),
        Math.min(limits.idleMs, left),
      );
    });
    let r: IteratorResult<T>;
    try {
      allow?.();
      r = await Promise.race([it.next(), timeout]);
    } finally {
      clearTimeout(timer);
    }
    if (r.done) return;
    yield r.value;
  }
}

export interface ReceivedSet<H> {
  header: H;
  tensors: NamedTensor[];
  bytes: number;
}

/**
 * Reads a `{header}` message then `{chunk}` messages from an async iterable and returns the
 * verified tensors. `tensorsOf` extracts the TensorSetHeader from the stream's own header type.
 */
export async function readTensorStream<H>(
  source: AsyncIterable<{ header?: H | null; chunk?: ChunkMsg | null }>,
  what: string,
  tensorsOf: (header: H) => TensorSetHeaderMsg | null | undefined,
  onHeader?: (header: H) => void,
): Promise<ReceivedSet<H>> {
  let header: H | undefined;
  let rx: TensorSetReceiver | undefined;
  for await (const msg of source) {
    if (header === undefined) {
      if (!msg.header) throw fjError("FJ_PROTOCOL_HEADER", `${what}: the first message must be the header`);
      header = msg.header;
      onHeader?.(header);
      rx = new TensorSetReceiver(tensorsOf(header), what);
      continue;
    }
    if (msg.header) throw fjError("FJ_PROTOCOL_HEADER", `${what}: a second header in one stream`);
    rx!.add(msg.chunk);
  }
  if (header === undefined || rx === undefined)
    throw fjError("FJ_PROTOCOL_HEADER", `${what}: empty stream (no header)`);
  return { header, tensors: rx.finish(), bytes: rx.bytes };
}
