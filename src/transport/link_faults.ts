/**
 * Faults on the links between nodes, as one plain description that every transport reads the
 * same way: the worker threads' FaultyTransport and the simulated network. The main thread (the
 * client) is never cut off: faults apply between nodes only.
 *
 * - `groups`: a partition. Two nodes in different groups cannot exchange messages, in either
 *   direction; a message already on its way when the partition starts is dropped on arrival.
 *   Nodes not named in any group form one more group together. `null`: no partition.
 * - `dropRate`: the probability that a message between two connected nodes is lost.
 * - `delayMs` / `jitterMs`: every message between nodes is held `delayMs` plus a uniform draw in
 *   [0, jitterMs] ms before it leaves; messages of one pair stay in order (a message never
 *   overtakes an earlier one of its pair).
 *
 * Pure: the decisions take the Prng they draw from.
 */
import type { Prng } from "../io/prng.ts";
import { describe, LoomRangeError, LoomTypeError } from "../util/errors.ts";

export interface LinkFaults {
  readonly groups: readonly (readonly number[])[] | null;
  readonly dropRate: number;
  readonly delayMs: number;
  readonly jitterMs: number;
}

export const noLinkFaults: LinkFaults = { groups: null, dropRate: 0, delayMs: 0, jitterMs: 0 };

/** Longest injected delay or jitter, in ms. */
export const linkDelayMsMax = 60_000;

/** Whether `from` and `to` (two nodes) can exchange messages under `faults`. */
export function linked(faults: LinkFaults, from: number, to: number): boolean {
  const groups = faults.groups;
  if (groups === null || from === to) return true;
  return groupOf(groups, from) === groupOf(groups, to);
}

function groupOf(groups: readonly (readonly number[])[], node: number): number {
  for (let index = 0; index < groups.length; index++) if (groups[index]!.includes(node)) return index;
  return -1; // the nodes named nowhere, together
}

/** The fate of one message sent from one node to another: lost, or delayed by `delayMs`. */
export function drawLinkFate(faults: LinkFaults, prng: Prng): { readonly lost: boolean; readonly delayMs: number } {
  if (faults.dropRate > 0 && prng.chance(faults.dropRate)) return { lost: true, delayMs: 0 };
  const jitter = faults.jitterMs > 0 ? prng.nextInt(faults.jitterMs + 1) : 0;
  return { lost: false, delayMs: faults.delayMs + jitter };
}

/**
 * Validates partition groups against the cluster's nodes: arrays of distinct known node ids, no
 * node in two groups, at least one group. Returns them sorted, as given otherwise.
 */
export function checkPartitionGroups(action: string, groups: readonly unknown[], nodes: readonly number[]): number[][] {
  if (groups.length === 0) throw new LoomTypeError(`${action} failed: give at least one group of nodes, e.g. partition([0, 1], [2, 3, 4])`);
  const seen = new Set<number>();
  return groups.map((group, index) => {
    if (!Array.isArray(group)) throw new LoomTypeError(`${action} failed: group ${index} must be an array of node ids, got ${describe(group)}`);
    return group.map((node: unknown) => {
      if (typeof node !== "number" || !Number.isInteger(node)) throw new LoomTypeError(`${action} failed: node must be an integer id, got ${describe(node)}`);
      if (!nodes.includes(node)) throw new LoomRangeError(`${action} failed: no node ${node}, nodes are ${nodes.join(", ")}`);
      if (seen.has(node)) throw new LoomRangeError(`${action} failed: node ${node} is in two groups`);
      seen.add(node);
      return node;
    }).sort((a, b) => a - b);
  });
}

export function checkDropRate(action: string, rate: unknown): number {
  if (typeof rate !== "number" || !Number.isFinite(rate)) throw new LoomTypeError(`${action} failed: rate must be a number, got ${describe(rate)}`);
  if (rate < 0 || rate > 1) throw new LoomRangeError(`${action} failed: rate is ${rate}, must be between 0 and 1`);
  return rate;
}

export function checkDelay(action: string, name: string, ms: unknown): number {
  if (typeof ms !== "number" || !Number.isInteger(ms)) throw new LoomTypeError(`${action} failed: ${name} must be an integer, got ${describe(ms)}`);
  if (ms < 0 || ms > linkDelayMsMax) throw new LoomRangeError(`${action} failed: ${name} is ${ms}, must be between 0 and ${linkDelayMsMax}`);
  return ms;
}
