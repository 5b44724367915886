/**
 * Validation of what callers hand the store. Public methods validate with these; everything below
 * assumes valid input. Each failure is a typed error quoting the offending value; nothing is written.
 */
import { utf8Encode } from "../util/bytes.ts";
import { LoomRangeError, LoomTypeError, describe } from "../util/errors.ts";
import { limits } from "../util/limits.ts";
import type { Version } from "./version_set_format.ts";

export type KeyInput = string | Uint8Array;
export type ValueInput = string | Uint8Array;

export interface VersionInput {
  readonly version: Uint8Array;
  /** The value (a string is stored as UTF-8), or null for a tombstone. */
  readonly value: ValueInput | null;
}

/**
 * The index of the first lone surrogate in `text`, or -1 when it is well-formed UTF-16. Such a
 * string has no UTF-8 form: encoding replaces every lone surrogate with U+FFFD, so '\uD800' and
 * '\uDBFF' would become the same key.
 */
export function loneSurrogateIndex(text: string): number {
  if ((text as { isWellFormed?: () => boolean }).isWellFormed?.() === true) return -1;
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    const next = text.charCodeAt(index + 1);
    if (unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      index++;
      continue;
    }
    return index;
  }
  return -1;
}

function encodeText(action: string, what: string, text: string): Uint8Array {
  const index = loneSurrogateIndex(text);
  if (index >= 0) {
    throw new LoomTypeError(`${action} failed: ${what} is not well-formed UTF-16 (a lone surrogate at index ${index}); it has no UTF-8 form`);
  }
  return utf8Encode(text);
}

/** `key` as bytes, checked: non-empty, at most `bytesMax` (the cluster's limit unless given). */
export function toKeyBytes(action: string, key: unknown, bytesMax: number = limits.keyBytesMax): Uint8Array {
  let bytes: Uint8Array;
  if (typeof key === "string") bytes = encodeText(action, "key", key);
  else if (key instanceof Uint8Array) bytes = key;
  else throw new LoomTypeError(`${action} failed: key must be a string or a Uint8Array, got ${describe(key)}`);
  if (bytes.length === 0) throw new LoomRangeError(`${action} failed: key is empty`);
  if (bytes.length > bytesMax) {
    throw new LoomRangeError(`${action} failed: key is ${bytes.length} bytes, limit is ${bytesMax}`);
  }
  return bytes;
}

export function toValueBytes(action: string, value: unknown): Uint8Array {
  let bytes: Uint8Array;
  if (typeof value === "string") bytes = encodeText(action, "value", value);
  else if (value instanceof Uint8Array) bytes = value;
  else throw new LoomTypeError(`${action} failed: value must be a string or a Uint8Array, got ${describe(value)}`);
  if (bytes.length > limits.valueBytesMax) {
    throw new LoomRangeError(`${action} failed: value is ${bytes.length} bytes, limit is ${limits.valueBytesMax}`);
  }
  return bytes;
}

export function toVersions(action: string, versions: unknown): Version[] {
  if (!Array.isArray(versions)) {
    throw new LoomTypeError(`${action} failed: versions must be an array, got ${describe(versions)}`);
  }
  if (versions.length > limits.versionsPerRecordMax) {
    throw new LoomRangeError(`${action} failed: ${versions.length} versions, limit is ${limits.versionsPerRecordMax}`);
  }
  return versions.map((entry: unknown, index) => {
    if (typeof entry !== "object" || entry === null) {
      throw new LoomTypeError(`${action} failed: version ${index} must be an object, got ${describe(entry)}`);
    }
    const { version, value } = entry as { version?: unknown; value?: unknown };
    if (!(version instanceof Uint8Array)) {
      throw new LoomTypeError(`${action} failed: version ${index} must carry a Uint8Array version, got ${describe(version)}`);
    }
    if (version.length > limits.versionBytesMax) {
      throw new LoomRangeError(`${action} failed: version ${index} is ${version.length} bytes, limit is ${limits.versionBytesMax}`);
    }
    if (value === undefined) throw new LoomTypeError(`${action} failed: version ${index} has no value (use null for a tombstone)`);
    return { version, value: value === null ? null : toValueBytes(action, value) };
  });
}
