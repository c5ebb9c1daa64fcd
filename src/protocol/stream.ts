/**
 * Stream helpers: write a header then ≤ 1 MiB chunks with back-pressure, and read a
 * header-then-chunks stream back into tensors. Used by both the coordinator's service and the
 * site-client's transport, so the chunk logic lives in one place.
 */
import type { Writable } from "node:stream";
import { fjError } from "../errors.js";
import type { NamedTensor } from "../model/api.js";
import type { ChunkMsg, TensorSetHeaderMsg } from "./proto.js";
import { chunksOf, TensorSetReceiver } from "./tensors.js";

/** Writes one message, waiting for 'drain' when the stream's buffer is full. */
export async function writeMessage(stream: Writable, message: unknown): Promise<void> {
  if (stream.write(message)) return;
  await new Promise<void>((resolve, reject) => {
    const onDrain = () => {
      stream.off("error", onError);
      resolve();
    };
    const onError = (err: Error) => {
      stream.off("drain", onDrain);
      reject(err);
    };
    stream.once("drain", onDrain);
    stream.once("error", onError);
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
): Promise<number> {
  await writeMessage(stream, first);
  for (const chunk of chunksOf(payload)) await writeMessage(stream, wrapChunk(chunk));
  return payload.length;
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
