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
  /** Never more than this (ms); also the wait before the first 64 samples. @default 250 */
  readonly ceilingMs?: number;
  /**
   * Samples per window: the percentile is recomputed when one fills. 1024 (about a tenth of a
   * second of a node's reads under load): a window of 256 followed bursts too closely and widened
   * 5% of the reads at 512 in flight, 1024 widens 1.4%. @default 1024
   */
  readonly window?: number;
}

const PERCENTILE = 0.99;
/** Samples after which a first estimate replaces the ceiling, before the first window filled. */
const FIRST_ESTIMATE_SAMPLES = 64;

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
    const window = options.window ?? 1024;
    if (!Number.isInteger(window) || window < 1) throw new RangeError(`round trip estimate: window is ${window}, must be a positive integer`);
    this.#window = new Float64Array(window);
    this.#waitMs = this.#ceilingMs;
  }

  /** One measured round trip, in ms (a sample that is not a number ≥ 0 is ignored). */
  add(sampleMs: number): void {
    if (!(sampleMs >= 0)) return;
    this.samples++;
    this.#window[this.#filled++] = sampleMs;
    // A fresh node would otherwise wait the ceiling for a slow replica until its first window filled.
    if (this.samples === FIRST_ESTIMATE_SAMPLES && this.#filled < this.#window.length) this.#estimate(this.#window.slice(0, this.#filled));
    if (this.#filled < this.#window.length) return;
    this.#estimate(this.#window);
    this.#filled = 0;
  }

  /** Sets the wait from the 99th percentile of `samples` (sorted in place). */
  #estimate(samples: Float64Array): void {
    samples.sort();
    const at = samples[Math.min(samples.length - 1, Math.floor(samples.length * PERCENTILE))]!;
    this.#waitMs = Math.min(this.#ceilingMs, Math.max(this.#floorMs, at));
  }

  /** The wait before a speculative retry, in ms. */
  get waitMs(): number {
    return this.#waitMs;
  }
}
