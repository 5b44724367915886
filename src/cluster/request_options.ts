/**
 * Validation of the options a caller passes with one request (`put`, `delete`, `get`), checked
 * the way `configure()` checks settings: unknown names, wrong types and values out of range are
 * refused with a typed error naming the option, before anything is sent. Pure.
 */
import { LoomRangeError, LoomTypeError, describe } from "../util/errors.ts";

/** Longest per-request timeout, in ms (ten minutes). */
export const requestTimeoutMsMax = 600_000;

export interface ResolvedRequest {
  /** W for a write, R for a read. */
  readonly quorum: number;
  /** pw for a write, pr for a read: answers that must come from primaries; 0 for none. */
  readonly primaryQuorum: number;
  readonly timeoutMs: number;
  /** The causal context a write carries ("" for a blind write, and always for a read). */
  readonly context: string;
}

const writeOptionNames = new Set(["w", "pw", "timeoutMs", "context"]);
const readOptionNames = new Set(["r", "pr", "timeoutMs"]);

/**
 * The request's W or R, timeout and context, defaults filled in from the cluster's settings.
 * `undefined` options, or an option set to undefined, take the default. Throws LoomTypeError or
 * LoomRangeError quoting the option.
 */
export function resolveRequestOptions(
  action: "put" | "delete" | "get",
  options: unknown,
  defaults: { readonly n: number; readonly w: number; readonly r: number; readonly requestTimeoutMs: number },
): ResolvedRequest {
  if (options === undefined) {
    return { quorum: action === "get" ? defaults.r : defaults.w, primaryQuorum: 0, timeoutMs: defaults.requestTimeoutMs, context: "" };
  }
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new LoomTypeError(`${action} failed: options must be an object, got ${describe(options)}`);
  }
  const write = action !== "get";
  const known = write ? writeOptionNames : readOptionNames;
  for (const name of Object.keys(options)) {
    if (!known.has(name)) {
      throw new LoomTypeError(`${action} failed: unknown option ${JSON.stringify(name)}; ${action} takes ${[...known].join(", ")}`);
    }
  }
  const given = options as { w?: unknown; r?: unknown; pw?: unknown; pr?: unknown; timeoutMs?: unknown; context?: unknown };
  const quorumName = write ? "w" : "r";
  const quorum = integerOption(action, quorumName, given[quorumName], write ? defaults.w : defaults.r, 1, defaults.n, "n");
  const primaryName = write ? "pw" : "pr";
  const primaryQuorum = integerOption(action, primaryName, given[primaryName], 0, 0, defaults.n, "n");
  const timeoutMs = integerOption(action, "timeoutMs", given.timeoutMs, defaults.requestTimeoutMs, 1, requestTimeoutMsMax);
  let context = "";
  if (write && given.context !== undefined) {
    if (typeof given.context !== "string") throw new LoomTypeError(`${action} failed: context must be a string, got ${describe(given.context)}`);
    context = given.context;
  }
  return { quorum, primaryQuorum, timeoutMs, context };
}

function integerOption(action: string, name: string, value: unknown, fallback: number, min: number, max: number, maxName?: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new LoomTypeError(`${action} failed: ${name} must be an integer, got ${describe(value)}`);
  }
  if (value < min || value > max) {
    throw new LoomRangeError(`${action} failed: ${name} is ${value}, must be between ${min} and ${maxName ? `${maxName} (${max})` : max}`);
  }
  return value;
}
