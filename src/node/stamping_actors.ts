/**
 * Which actor and counter a node stamps a write with (docs/versioning.md): its own actor for what
 * its own store keeps, a fallback actor for what it keeps as a hint for a primary that is down,
 * and a counter above every counter it ever stamped (durably leased before a version leaves the
 * node). Retires an actor the moment it can no longer hold every version it stamped.
 *
 * Thread contract: the thread that owns the node's store. Pure over the injected lease and
 * the `recordActor` callback.
 */
import type { Version } from "../storage/version_set_format.ts";
import { BusyError } from "../util/errors.ts";
import { decodeVersion } from "../version/version_codec.ts";
import type { CounterLease } from "./counter_lease.ts";

export interface StampingActorsOptions {
  readonly nodeId: number;
  /** The actor this life stamps its own writes with (node_actor.ts). */
  readonly actor: number;
  /** Fresh actors for writes into its hints, the one to use first (node_actor.ts). */
  readonly fallbackActors: readonly number[];
  /** Durably records a replacement own actor before the node stamps with it. */
  readonly recordActor: ((actor: number) => void) | undefined;
  readonly lease: CounterLease;
  /** The store's highest sequence: counters start above it. */
  readonly storeSequence: number;
}

export class StampingActors {
  readonly #nodeId: number;
  #actor: number;
  /** Set when a replacement actor could not be recorded: the node stamps nothing more this life. */
  #actorRetired = false;
  /** The fallback actors left, the one in use first (retired ones are removed). */
  readonly #fallbackActors: number[];
  readonly #recordActor: ((actor: number) => void) | undefined;
  readonly #lease: CounterLease;
  /** Lowest counter a new dot may take: above every counter this node ever stamped. */
  #counterFloor: number;

  constructor(options: StampingActorsOptions) {
    this.#nodeId = options.nodeId;
    this.#actor = options.actor;
    this.#fallbackActors = [...options.fallbackActors];
    this.#recordActor = options.recordActor;
    this.#lease = options.lease;
    this.#counterFloor = Math.max(options.storeSequence + 1, options.lease.ceiling);
  }

  /** The actor this life of the node stamps its own writes with. */
  get own(): number {
    return this.#actor;
  }

  get counterFloor(): number {
    return this.#counterFloor;
  }

  /**
   * The actor for a write into the node's own store (`slotFor` undefined) or into its hints for
   * primary `slotFor`; undefined when none may stamp it.
   */
  actorFor(slotFor: number | undefined): number | undefined {
    if (slotFor === undefined) return this.#actorRetired ? undefined : this.#actor;
    return this.#fallbackActors[0];
  }

  /** The refusal (BusyError, not applied) of a write `actorFor` found no actor for. */
  refusal(slotFor: number | undefined, action: "put" | "delete"): BusyError {
    return new BusyError(
      slotFor === undefined
        ? `${action} failed: node ${this.#nodeId} could not record a fresh actor after a ring change; it stamps nothing until it restarts`
        : `${action} failed: node ${this.#nodeId} has no fresh actor left to stamp a write for a primary that is down (it gets new ones when it restarts); retry once a primary is back`,
      { outcome: "not-applied" },
    );
  }

  /** Leases `counter` durably before the version leaves this node (counter_lease.ts). Throws IoError. */
  cover(counter: number): void {
    this.#lease.cover(counter);
  }

  /** `counter` was stamped: the next dot takes a higher one. */
  stamped(counter: number): void {
    this.#counterFloor = Math.max(this.#counterFloor, counter + 1);
  }

  /**
   * A hint left the node: if the fallback actor in use stamped one of its versions, that actor can
   * no longer hold every version it stamped, so it stamps nothing more.
   */
  hintDropped(versions: readonly Version[]): void {
    const current = this.#fallbackActors[0];
    if (current !== undefined && versions.some((version) => decodeVersion(version.version).dot.actor === current)) this.#fallbackActors.shift();
  }

  /**
   * A cleanup after a ring change drops a key holding `versions`: if the node's own actor stamped
   * one of them, the node takes `freshActor` (recorded first); if that cannot be recorded, it
   * stamps nothing more this life.
   */
  keyDropped(versions: readonly Version[], retired: number, freshActor: number): void {
    if (this.#actor !== retired || this.#actorRetired) return;
    if (!versions.some((version) => decodeVersion(version.version).dot.actor === retired)) return;
    try {
      this.#recordActor?.(freshActor);
      this.#actor = freshActor;
    } catch {
      this.#actorRetired = true;
    }
  }
}
