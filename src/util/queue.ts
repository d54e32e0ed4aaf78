/**
 * The one async-iterator queue every stream in the collective package uses (shape of
 * nats.js `queued_iterator.ts`): producers `push`, one consumer iterates, `stop(err?)` is
 * idempotent and ends the iteration (rethrowing `err` to the consumer after the buffered
 * items are drained, or at once when `err` is given), and `onStop` hooks run exactly once.
 */
export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private head = 0;
  private waiter: ((r: IteratorResult<T>) => void) | null = null;
  private waiterReject: ((e: unknown) => void) | null = null;
  private done = false;
  private error: Error | undefined;
  private readonly stopHooks: Array<() => void> = [];

  /** Number of items pushed and not yet taken. */
  get length(): number {
    return this.items.length - this.head;
  }

  get stopped(): boolean {
    return this.done;
  }

  /** Adds an item; ignored after `stop`. */
  push(item: T): void {
    if (this.done) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      this.waiterReject = null;
      w({ value: item, done: false });
      return;
    }
    this.items.push(item);
  }

  /** Registers cleanup to run once when the queue stops (called at once if already stopped). */
  onStop(fn: () => void): void {
    if (this.done) fn();
    else this.stopHooks.push(fn);
  }

  /**
   * Ends the stream. Without `err`, buffered items are still delivered, then iteration ends;
   * with `err`, buffered items are dropped and the consumer's next read throws `err`.
   */
  stop(err?: Error): void {
    if (this.done) return;
    this.done = true;
    if (err) {
      this.error = err;
      this.items.length = 0;
      this.head = 0;
    }
    for (const fn of this.stopHooks.splice(0)) {
      try {
        fn();
      } catch {
        // cleanup hooks must not prevent the others from running
      }
    }
    if (this.waiter) {
      const w = this.waiter;
      const rej = this.waiterReject;
      this.waiter = null;
      this.waiterReject = null;
      if (this.error && rej) rej(this.error);
      else w({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.items.length) {
      const value = this.items[this.head] as T;
      this.items[this.head] = undefined as T;
      this.head++;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items.splice(0, this.head);
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.done) {
      if (this.error) return Promise.reject(this.error);
      return Promise.resolve({ value: undefined, done: true });
    }
    if (this.waiter) return Promise.reject(new Error('AsyncQueue supports one consumer at a time'));
    return new Promise<IteratorResult<T>>((resolve, reject) => {
      this.waiter = resolve;
      this.waiterReject = reject;
    });
  }

  /** A consumer leaving the loop early (break/throw) stops the queue. */
  return(): Promise<IteratorResult<T>> {
    this.stop();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
