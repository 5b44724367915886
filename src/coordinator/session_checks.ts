/**
 * Argument checks shared by the coordinator sessions. Sessions are created from requests the
 * node worker has already validated at the public edge, so a failure here names the session
 * option that is wrong (a caller's bug or a bad configuration) and creates no session.
 */
import { describe, LoomRangeError, LoomTypeError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";

/** Throws LoomTypeError unless `value` is an integer, LoomRangeError unless it is in min..max. */
export function checkInteger(action: string, name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new LoomTypeError(`${action} failed: ${name} is ${describe(value)}, must be an integer`);
  }
  if (value < min || value > max) {
    throw new LoomRangeError(`${action} failed: ${name} is ${value}, must be in ${min}..${max}`);
  }
}

/**
 * A preference list is 1..nodesMax distinct node ids with `self` first (the coordinator is the
 * key's first live replica). Throws LoomTypeError or LoomRangeError otherwise.
 */
export function checkPreferenceList(action: string, preferenceList: readonly number[], self: number): void {
  if (!Array.isArray(preferenceList)) {
    throw new LoomTypeError(`${action} failed: preferenceList is ${describe(preferenceList)}, must be an array`);
  }
  checkInteger(action, "self", self, 0, limits.nodeIdMax);
  checkInteger(action, "preferenceList length", preferenceList.length, 1, limits.nodesMax);
  for (const [index, node] of preferenceList.entries()) {
    checkInteger(action, `preferenceList[${index}]`, node, 0, limits.nodeIdMax);
  }
  if (new Set(preferenceList).size !== preferenceList.length) {
    throw new LoomRangeError(`${action} failed: preferenceList ${JSON.stringify(preferenceList)} repeats a node`);
  }
  if (preferenceList[0] !== self) {
    throw new LoomRangeError(`${action} failed: self is ${self}, must be first in preferenceList ${JSON.stringify(preferenceList)}`);
  }
}

/** Largest timeout a session accepts (one hour): a longer one is a unit mistake. */
export const sessionTimeoutMsMax = 60 * 60 * 1000;

/** The options every session takes. */
export interface SessionBasics {
  readonly requestId: unknown;
  readonly key: unknown;
  readonly preferenceList: readonly number[];
  readonly self: number;
  readonly timeoutMs: unknown;
  readonly nowMs: unknown;
}

/**
 * Checks the options common to both sessions, and the quorum (`w` or `r`) against the
 * preference list. Throws LoomTypeError or LoomRangeError naming the option.
 */
export function checkSessionBasics(action: string, options: SessionBasics, quorum: { name: "w" | "r"; value: unknown }): void {
  checkPreferenceList(action, options.preferenceList, options.self);
  checkInteger(action, quorum.name, quorum.value, 1, options.preferenceList.length);
  checkInteger(action, "requestId", options.requestId, 0, Number.MAX_SAFE_INTEGER);
  checkInteger(action, "timeoutMs", options.timeoutMs, 1, sessionTimeoutMsMax);
  checkInteger(action, "nowMs", options.nowMs, 0, Number.MAX_SAFE_INTEGER - sessionTimeoutMsMax);
  if (!(options.key instanceof Uint8Array) || options.key.length === 0) {
    throw new LoomTypeError(`${action} failed: key is ${describe(options.key)}, must be a non-empty Uint8Array`);
  }
}

/** Throws LoomTypeError unless `signer` has sign and verify methods (a ContextSigner). */
export function checkSigner(action: string, signer: unknown): void {
  const candidate = signer as { sign?: unknown; verify?: unknown } | null | undefined;
  if (typeof candidate?.sign !== "function" || typeof candidate.verify !== "function") {
    throw new LoomTypeError(`${action} failed: signer is ${describe(signer)}, must be a ContextSigner`);
  }
}
