/**
 * The comparison step of an exchange (docs/anti-entropy.md): the initiator sends its branches for
 * the peer (merkleRequest); the responder answers agreed, busy, or with the leaves of the branches
 * that differ (merkleReply); the initiator compares again confirmDelayMs later, keeps the segments
 * that differed both times, names them to the peer (aeSegments) and starts the repair step.
 * Records every agreement seen, dated by the moment of this node's state that was compared.
 * Requires the injected options, the trees, the agreements, the repair sessions, and whether the
 * node stopped or switched anti-entropy off. Pure over the injected transport and clock.
 */
import { MessageType, type Message } from "../transport/message_types.ts";
import type { AntiEntropyOptions } from "./anti_entropy_options.ts";
import type { AntiEntropyCounters } from "./anti_entropy_stats.ts";
import { sessionIdleMs, type RepairSessions } from "./repair_session.ts";
import type { SegmentAgreements } from "./segment_agreements.ts";
import { SegmentTree } from "./segment_tree.ts";
import type { TreeUpkeep } from "./tree_upkeep.ts";

/** How long an exchange waits before it looks again at the segments it found different. */
export function confirmDelayMs(intervalMs: number): number {
  return Math.min(200, Math.max(1, Math.floor(intervalMs / 4)));
}

/** An exchange this node started and awaits the merkleReply of. */
interface OpenExchange {
  peer: number;
  sentMs: number;
  sentWallMs: number;
  candidates?: Candidates;
}

/**
 * The segments a first look found different, with both sides' leaves as that look saw them: the
 * four 32-bit halves of (mine, theirs) per segment.
 */
type Candidates = ReadonlyMap<number, readonly [number, number, number, number]>;

export interface TreeExchangeParts {
  readonly options: AntiEntropyOptions;
  readonly stats: AntiEntropyCounters;
  readonly trees: TreeUpkeep;
  readonly agreements: SegmentAgreements;
  readonly repairs: RepairSessions;
  /** Whether the node stopped its anti-entropy; whether anti-entropy is on. */
  readonly stopped: () => boolean;
  readonly enabled: () => boolean;
}

export class TreeExchange {
  readonly #options: AntiEntropyOptions;
  readonly #stats: AntiEntropyCounters;
  readonly #trees: TreeUpkeep;
  readonly #agreements: SegmentAgreements;
  readonly #repairs: RepairSessions;
  readonly #stopped: () => boolean;
  readonly #enabled: () => boolean;
  #nextExchange = 1;
  /** Exchanges this node started and awaits the merkleReply of: exchange → peer, sent at. */
  readonly #open = new Map<number, OpenExchange>();

  constructor(parts: TreeExchangeParts) {
    this.#options = parts.options;
    this.#stats = parts.stats;
    this.#trees = parts.trees;
    this.#agreements = parts.agreements;
    this.#repairs = parts.repairs;
    this.#stopped = parts.stopped;
    this.#enabled = parts.enabled;
  }

  clear(): void {
    this.#open.clear();
  }

  /** Drops the exchanges whose merkleReply has not come for sessionIdleMs. */
  dropIdle(nowMs: number): void {
    for (const [exchange, open] of this.#open) if (nowMs - open.sentMs > sessionIdleMs(this.#options.config().intervalMs)) this.#open.delete(exchange);
  }

  /**
   * Sends `peer` this node's branches for it. With `candidates` (the segments a first comparison
   * found different), only those still different and unchanged on both sides are repaired: a
   * difference that was a write still on its way to one replica is gone by the second look, and
   * a segment whose leaf moved on either side is taking writes, so its difference may be writes in
   * flight too; it waits for an exchange that finds it quiet.
   */
  compare(peer: number, candidates?: Candidates): void {
    const exchange = this.#nextExchange++;
    this.#open.set(exchange, { peer, sentMs: this.#options.clock.nowMs(), sentWallMs: this.#options.clock.wallMs(), ...(candidates ? { candidates } : {}) });
    const branches = this.#trees.tree(peer).branches();
    this.#stats.bytesSent += branches.length * 4;
    this.#options.transport.send(peer, { type: MessageType.merkleRequest, exchange, buckets: this.#trees.buckets, branches });
  }

  /** Responder: compare the initiator's branches with ours for it. */
  onBranches(from: number, message: Message): void {
    const exchange = message.exchange as number;
    if (this.#trees.building || this.#trees.buckets !== message.buckets || this.#repairs.size > 0) {
      this.#options.transport.send(from, { type: MessageType.merkleReply, exchange, busy: true });
      return;
    }
    const tree = this.#trees.tree(from);
    const differing = SegmentTree.differing(tree.branches(), message.branches as number[]);
    if (differing.length === 0) {
      // Our tree now equals the initiator's as it was when sent; it only moves forward since.
      this.#agreements.agree(from, "all", this.#options.clock.wallMs());
      this.#options.transport.send(from, { type: MessageType.merkleReply, exchange, agreed: true });
      return;
    }
    const leaves = differing.flatMap((branch) => tree.leavesOf(branch));
    this.#stats.bytesSent += (differing.length + leaves.length) * 4;
    this.#options.transport.send(from, { type: MessageType.merkleReply, exchange, branches: differing, leaves });
  }

  /** Initiator: find the differing segments and start the repair step. */
  onLeaves(from: number, message: Message): void {
    const exchange = message.exchange as number;
    const open = this.#open.get(exchange);
    if (open?.peer !== from) return;
    this.#open.delete(exchange);
    if (message.busy === true) {
      this.#stats.busy++;
      return;
    }
    if (this.#trees.building) return;
    // The peer compared against our branches as they were when the request left: an agreement
    // on them says nothing of what we took since, so it is dated then, not now.
    if (message.agreed === true) {
      this.#stats.agreed++;
      this.#agreements.agree(from, "all", open.sentWallMs);
      return;
    }
    const leaves = new Map<number, readonly [number, number, number, number]>();
    let differing = this.#sortLeaves(from, message, open.sentWallMs, leaves);
    if (differing.length === 0 || this.#repairs.size > 0) return;
    if (open.candidates === undefined) {
      // Look again in a moment: writes replicating right now make differences that vanish.
      const candidates = leaves;
      this.#options.clock.setTimer(confirmDelayMs(this.#options.config().intervalMs), () => {
        if (!this.#stopped() && this.#enabled() && !this.#trees.building && this.#repairs.size === 0 && this.#options.isUp(from)) this.compare(from, candidates);
      });
      return;
    }
    const before = open.candidates;
    differing = differing.filter((segment) => {
      const then = before.get(segment);
      const now = leaves.get(segment)!;
      return then !== undefined && then[0] === now[0] && then[1] === now[1] && then[2] === now[2] && then[3] === now[3];
    });
    if (differing.length === 0) return;
    this.#stats.segmentsDiffering += differing.length;
    this.#stats.bytesSent += differing.length * 4;
    this.#options.transport.send(from, { type: MessageType.aeSegments, exchange, buckets: this.#trees.buckets, segments: differing });
    this.#repairs.start(from, exchange, true, differing);
  }

  /**
   * Compares the peer's leaves in its merkleReply with ours, records the segments found equal as
   * agreed (those of branches it found equal as of `sentWallMs`, the others as of now), and
   * returns the segments that differ, putting both leaves of each in `leaves`.
   */
  #sortLeaves(from: number, message: Message, sentWallMs: number, leaves: Map<number, readonly [number, number, number, number]>): number[] {
    const tree = this.#trees.tree(from);
    const branches = message.branches as number[];
    const theirs = message.leaves as number[];
    // Their leaves come branch after branch, in the order of `branches`.
    const offsetOf = new Map<number, number>();
    let offset = 0;
    for (const branch of branches) {
      offsetOf.set(branch, offset);
      offset += tree.leafCountOf(branch) * 2;
    }
    const differing: number[] = [];
    const agreedWhenSent: number[] = [];
    const agreedNow: number[] = [];
    for (let branch = 0; branch < tree.branchCount; branch++) {
      const start = branch * tree.branchWidth;
      const base = offsetOf.get(branch);
      if (base === undefined) {
        // A branch the peer found equal to ours as sent.
        for (let leaf = 0; leaf < tree.leafCountOf(branch); leaf++) agreedWhenSent.push(start + leaf);
        continue;
      }
      for (let leaf = 0; leaf < tree.leafCountOf(branch); leaf++) {
        const mine = tree.leaf(start + leaf);
        const high = theirs[base + leaf * 2]!;
        const low = theirs[base + leaf * 2 + 1]!;
        if (mine.high === high && mine.low === low) agreedNow.push(start + leaf);
        else {
          differing.push(start + leaf);
          leaves.set(start + leaf, [mine.high, mine.low, high, low]);
        }
      }
    }
    this.#agreements.agree(from, agreedWhenSent, sentWallMs);
    this.#agreements.agree(from, agreedNow, this.#options.clock.wallMs());
    return differing;
  }
}
