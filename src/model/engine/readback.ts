import type { tf } from "./tf.js";

/**
 * Device → host reads one behind the computation. `push(t)` starts the asynchronous read of `t`
 * (`tensor.data()`: on a GPU backend a buffer copy and a map, on the CPU backends the values at
 * once), then waits only for the read pushed before it; so step k's values are read while step
 * k+1 is already queued, and no loop stalls on a synchronous `dataSync`. Values reach `consume` in
 * push order; each pushed tensor is disposed once read. An error thrown by `consume` surfaces at
 * the next `push` or at `drain`. Call `drain` after the loop (also when it ends by an error, to
 * dispose what is still in flight).
 */
export class ReadBehind<C> {
  private pending: Promise<void> = Promise.resolve();

  constructor(private readonly consume: (values: tf.TypedArray, context: C) => void) {}

  /** Starts reading `t` (taken over: disposed once read) and resolves when the previous read is consumed. */
  push(t: tf.Tensor, context: C): Promise<void> {
    const read = t.data();
    // Marked handled here: when an earlier consume failed, this read is never consumed.
    read.catch(() => undefined);
    const previous = this.pending;
    this.pending = previous
      .then(() => read)
      .then((values) => this.consume(values as tf.TypedArray, context))
      .finally(() => t.dispose());
    this.pending.catch(() => undefined);
    return previous;
  }

  /** Waits for every pushed read; rethrows the first error of a consume or a read. */
  async drain(): Promise<void> {
    const last = this.pending;
    this.pending = Promise.resolve();
    await last;
  }
}
