/**
 * How long a coordinator waits for the replicas a read asked before it asks the others too (its
 * speculative retry): the 99th percentile of the last round trips of the reads this node asked of
 * other replicas, as Cassandra's default `speculative_retry = 99p` does. About one read in a
 * hundred asks one replica more in steady traffic; under load the round trips grow and the wait
 * with them; when a replica stops answering (down, or paused) a read waits about that percentile
 * for it, not its whole timeout. (A mean-plus-deviations estimate, TCP's, fired for one read in
 * five at 512 in flight here: round trips under load are far from normal.)
 *
 * Cost: one array store per sample, a sort of the window once per window of samples. Pure:
 * samples and times come from the caller.
 */
export interface RoundTripEstimateOptions {
  /** Never less than this (ms). @default 1 */
  readonly floorMs?: number;
  /** Never more than this (ms); also the wait before the first window filled. @default 250 */
  readonly ceilingMs?: number;
  /** Samples per window: the percentile is recomputed when one fills. @default 256 */
  readonly window?: number;
}

const PERCENTILE = 0.99;

export class RoundTripEstimate {
  readonly #floorMs: number;
  readonly #ceilingMs: number;
  readonly #window: Float64Array;
  #filled = 0;
  #waitMs: number;
  samples = 0;

  constructor(options: RoundTripEstimateOptions = {}) {
    this.#floorMs = options.floorMs ?? 1;
    this.#ceilingMs = options.ceilingMs ?? 250;
    this.#window = new Float64Array(options.window ?? 256);
    this.#waitMs = this.#ceilingMs;
  }

  /** One measured round trip, in ms (a sample that is not a number ≥ 0 is ignored). */
  add(sampleMs: number): void {
    if (!(sampleMs >= 0)) return;
    this.samples++;
    this.#window[this.#filled++] = sampleMs;
    if (this.#filled < this.#window.length) return;
    this.#window.sort();
    const at = this.#window[Math.min(this.#window.length - 1, Math.floor(this.#window.length * PERCENTILE))]!;
    this.#waitMs = Math.min(this.#ceilingMs, Math.max(this.#floorMs, at));
    this.#filled = 0;
  }

  /** The wait before a speculative retry, in ms. */
  get waitMs(): number {
    return this.#waitMs;
  }
}
