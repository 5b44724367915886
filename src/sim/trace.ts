/**
 * A run's trace, kept as a running 64-bit hash (two FNV-1a lanes over 32-bit words): every message
 * delivered (time, from, to, type) and every client operation's outcome feeds it, so two runs of
 * one seed that did the same things in the same order have the same hash, and a run that diverged
 * anywhere has another. Pure.
 */
export class Trace {
  #low = 0x811c9dc5;
  #high = 0x01000193 ^ 0x5bd1e995;
  #events = 0;

  /** Feeds integers (times in virtual ms, node ids, message types, counters). */
  record(...values: number[]): void {
    this.#events++;
    for (const value of values) {
      const word = Number.isInteger(value) ? value | 0 : Math.round(value * 1000) | 0;
      this.#low = Math.imul(this.#low ^ word, 0x01000193) >>> 0;
      this.#high = Math.imul(this.#high ^ ((word >>> 16) | (word << 16)), 0x01000193) >>> 0;
    }
  }

  /** Feeds a string (a value written, an outcome). */
  recordText(text: string): void {
    const words: number[] = [];
    for (let index = 0; index < text.length; index++) words.push(text.charCodeAt(index));
    this.record(text.length, ...words);
  }

  get events(): number {
    return this.#events;
  }

  /** 16 hex digits. */
  hash(): string {
    return this.#high.toString(16).padStart(8, "0") + this.#low.toString(16).padStart(8, "0");
  }
}
