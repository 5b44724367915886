/**
 * What each peer was seen to agree on: per peer, in the life (generation) gossip gave it then, the
 * latest wall time of this node's state that the peer's tree matched, segment by segment. Exchanges
 * record agreements; the tombstone purge reads them. A peer's new life, or a new bucket count,
 * starts its record afresh. Requires the peer generations and the current bucket count. Pure.
 */

interface Agreement {
  readonly generation: number;
  readonly times: Float64Array;
}

export class SegmentAgreements {
  readonly #generationOf: (node: number) => number;
  readonly #buckets: () => number;
  readonly #agreements = new Map<number, Agreement>();

  constructor(generationOf: (node: number) => number, buckets: () => number) {
    this.#generationOf = generationOf;
    this.#buckets = buckets;
  }

  /**
   * Records that `peer` held what this node holds in `segments` as of `atMs` (wall time): the
   * moment of this node's state that was compared. Times only rise.
   */
  agree(peer: number, segments: Iterable<number> | "all", atMs: number): void {
    const generation = this.#generationOf(peer);
    let agreement = this.#agreements.get(peer);
    if (!agreement || agreement.generation !== generation || agreement.times.length !== this.#buckets()) {
      this.#agreements.set(peer, (agreement = { generation, times: new Float64Array(this.#buckets()) }));
    }
    const times = agreement.times;
    if (segments === "all") for (let segment = 0; segment < times.length; segment++) times[segment] = Math.max(times[segment]!, atMs);
    else for (const segment of segments) times[segment] = Math.max(times[segment]!, atMs);
  }

  /** Whether `peer`, in its current life, agreed on `segment` as of a time after `sinceMs`. */
  agreedSince(peer: number, segment: number, sinceMs: number): boolean {
    const agreement = this.#agreements.get(peer);
    if (!agreement || agreement.generation !== this.#generationOf(peer)) return false;
    return agreement.times.length === this.#buckets() && agreement.times[segment]! > sinceMs;
  }

  /** The time of `peer`'s agreement on `segment`; only after agreedSince said there is one. */
  agreedAt(peer: number, segment: number): number {
    return this.#agreements.get(peer)!.times[segment]!;
  }

  clear(): void {
    this.#agreements.clear();
  }
}
