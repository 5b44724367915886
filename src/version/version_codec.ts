/**
 * Binary forms of the version clock (the opaque blob the storage engine keeps beside each value)
 * and of the causal context (the opaque string clients carry from a read to their next write).
 * Both are canonical: a decoder accepts only the exact bytes the encoder produces, so equal blobs
 * mean equal clocks. Grammar and a worked example: docs/versioning.md.
 *
 *   version := format:u8(=1) dotActor:varint dotCounter:varint dotTimestampMs:varint
 *              pastCount:varint pastEntry{pastCount}
 *   pastEntry := actorDelta:varint counter:varint timestampDelta:zigzag
 *   context := body tag:u8[8]
 *   body := format:u8(=2) count:varint [newestTimestampMs:varint] contextEntry{count}
 *   contextEntry := (actorDelta << 1 | frontier):varint counter:varint ageMs:varint
 *   tag := SipHash-2-4(cluster secret, keyLength:varint key body), little-endian
 *
 * actorDelta is the first actor itself, then the gap to the previous actor (at least 1).
 * timestampDelta is the entry's timestamp minus the dot's; ageMs is newestTimestampMs minus the
 * entry's timestamp. The context string is the bytes in unpadded base64url. A context is bound to
 * its key and cluster by the tag (context_signer.ts); decoding checks the tag before it parses.
 */
import { ByteReader, ByteWriter, equalBytes } from "../util/bytes.ts";
import { assert } from "../util/assert.ts";
import { describe, LoomRangeError, LoomTypeError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";
import { contextTagBytes, type ContextSigner } from "./context_signer.ts";
import {
  actorMax,
  type CausalContext,
  clockEntriesMax,
  type ClockEntry,
  type ContextEntry,
  counterMax,
  type DottedVersionVector,
  timestampMsMax,
} from "./dotted_version_vector.ts";

export const versionFormat = 1;
/** Format 2: signed contexts. Format 1 (before them) had no tag and is refused with that reason. */
export const contextFormat = 2;
const unsignedContextFormat = 1;

/** Largest varint each field can take: actor 3 bytes, counter 8, timestamp or delta 7. */
const entryBytesMax = 3 + 8 + 7;
/** The largest version blob the grammar allows (format, dot, count, entries). */
export const versionEncodedBytesMax = 1 + entryBytesMax + 1 + clockEntriesMax * entryBytesMax;
/** The largest context in bytes (body and tag) and in base64url characters. */
export const contextEncodedBytesMax = 1 + 1 + 7 + clockEntriesMax * entryBytesMax + contextTagBytes;
export const contextCharactersMax = Math.ceil((contextEncodedBytesMax * 4) / 3);

assert(versionEncodedBytesMax <= limits.versionBytesMax, "the largest version clock must fit in a version blob");
assert(clockEntriesMax < 128, "an entry count must fit in one varint byte");

// ---- version blob --------------------------------------------------------------------------

/** Encodes a clock into a version blob. Throws LoomTypeError or LoomRangeError on an invalid clock. */
export function encodeVersion(clock: DottedVersionVector): Uint8Array {
  checkClock("encode version failed", clock, LoomRangeError);
  return writeVersion(clock).slice();
}

/**
 * Decodes a version blob. Throws LoomRangeError (a RangeError: callers reading from disk report it
 * as corruption) when the blob is not a canonical version of this format.
 */
export function decodeVersion(blob: Uint8Array): DottedVersionVector {
  if (!(blob instanceof Uint8Array)) throw new LoomTypeError(`decode version failed: blob is ${describe(blob)}`);
  if (blob.length > limits.versionBytesMax) {
    throw new LoomRangeError(`decode version failed: blob is ${blob.length} bytes, limit is ${limits.versionBytesMax}`);
  }
  const clock = parse("decode version failed", blob, LoomRangeError, readVersion);
  checkClock("decode version failed", clock, LoomRangeError);
  checkCanonical("decode version failed", blob, writeVersion(clock), LoomRangeError);
  return clock;
}

/** One scratch writer per thread for both encoders: they run to completion without yielding. */
const scratch = new ByteWriter(256);

/** The encoding of `clock` as a view of the scratch writer, valid until the next write. */
function writeVersion(clock: DottedVersionVector): Uint8Array {
  const writer = scratch;
  writer.reset();
  writer.u8(versionFormat);
  writer.varint(clock.dot.actor);
  writer.varint(clock.dot.counter);
  writer.varint(clock.dot.timestampMs);
  writer.varint(clock.past.length);
  let previousActor = 0;
  for (let index = 0; index < clock.past.length; index++) {
    const entry = clock.past[index]!;
    writer.varint(index === 0 ? entry.actor : entry.actor - previousActor);
    writer.varint(entry.counter);
    writer.varint(zigzag(entry.timestampMs - clock.dot.timestampMs));
    previousActor = entry.actor;
  }
  return writer.view();
}

function readVersion(reader: ByteReader, fail: (detail: string) => never): DottedVersionVector {
  const format = reader.u8();
  if (format !== versionFormat) fail(`format is ${format}, expected ${versionFormat}`);
  const dot = { actor: reader.varint(), counter: reader.varint(), timestampMs: reader.varint() };
  const count = reader.varint();
  if (count > clockEntriesMax) fail(`past has ${count} entries, limit is ${clockEntriesMax}`);
  const past: ClockEntry[] = [];
  let previousActor = 0;
  for (let index = 0; index < count; index++) {
    const actorDelta = reader.varint();
    if (index > 0 && actorDelta === 0) fail(`past entry ${index} repeats actor ${previousActor}`);
    const actor = index === 0 ? actorDelta : previousActor + actorDelta;
    const counter = reader.varint();
    const timestampMs = dot.timestampMs + unzigzag(reader.varint());
    past.push({ actor, counter, timestampMs });
    previousActor = actor;
  }
  return { dot, past };
}

// ---- causal context ------------------------------------------------------------------------

const decodeContextFailed = "decode context failed";

/** Every refusal of decodeContext: LoomTypeError, "decode context failed: bad context: <detail>". */
function badContext(detail: string): never {
  throw new LoomTypeError(`${decodeContextFailed}: bad context: ${detail}`);
}

/** What a context is bound to: the key it was read or written for, and the cluster's signer. */
export interface ContextBinding {
  /** The key's bytes (UTF-8 for a string key). */
  readonly key: Uint8Array;
  readonly signer: ContextSigner;
}

/**
 * Encodes a context for `binding.key` as an opaque base64url string carrying its tag. Throws
 * LoomTypeError or LoomRangeError on an invalid context.
 */
export function encodeContext(context: CausalContext, binding: ContextBinding): string {
  checkContext("encode context failed", context, LoomRangeError);
  const body = writeContext(context); // a view of the scratch writer: signed before it grows
  const tag = binding.signer.sign(binding.key, body);
  scratch.bytes(tag);
  return toBase64Url(scratch.view());
}

/**
 * Decodes a context a client sent back with a write of `binding.key`. Throws LoomTypeError (code
 * LOOM_INVALID_ARGUMENT, message "decode context failed: bad context: ...") unless `text` is a
 * string this cluster's encodeContext produced for this key: a made-up, altered, truncated or
 * foreign (other key, other cluster, format 1) context is refused before any field is read.
 */
export function decodeContext(text: unknown, binding: ContextBinding): CausalContext {
  if (typeof text !== "string") badContext(`it is ${describe(text)}, must be a string`);
  if (text.length > contextCharactersMax) badContext(`it is ${text.length} characters, limit is ${contextCharactersMax}`);
  const bytes = fromBase64Url(text);
  const format = bytes[0];
  if (format === unsignedContextFormat) badContext("context format 1 predates signed contexts: read the key again");
  if (format !== contextFormat) badContext(`format is ${format ?? "missing"}, expected ${contextFormat}`);
  if (bytes.length < 2 + contextTagBytes) badContext(`it is ${bytes.length} bytes, too short to hold a tag`);
  const body = bytes.subarray(0, bytes.length - contextTagBytes);
  if (!binding.signer.verify(binding.key, body, bytes.subarray(body.length))) {
    badContext("its tag does not match (altered, made up, or read from another key or cluster): read the key again");
  }
  const prefix = `${decodeContextFailed}: bad context`;
  const context = parse(prefix, body, LoomTypeError, readContext);
  checkContext(prefix, context, LoomTypeError);
  checkCanonical(prefix, body, writeContext(context), LoomTypeError);
  return context;
}

/** The encoding of `context` as a view of the scratch writer, valid until the next write. */
function writeContext(context: CausalContext): Uint8Array {
  const writer = scratch;
  writer.reset();
  writer.u8(contextFormat);
  writer.varint(context.entries.length);
  if (context.entries.length === 0) return writer.view();
  const newest = Math.max(...context.entries.map((entry) => entry.timestampMs));
  writer.varint(newest);
  let previousActor = 0;
  for (const [index, entry] of context.entries.entries()) {
    const actorDelta = index === 0 ? entry.actor : entry.actor - previousActor;
    writer.varint(actorDelta * 2 + (entry.frontier ? 1 : 0));
    writer.varint(entry.counter);
    writer.varint(newest - entry.timestampMs);
    previousActor = entry.actor;
  }
  return writer.view();
}

function readContext(reader: ByteReader, fail: (detail: string) => never): CausalContext {
  const format = reader.u8();
  if (format !== contextFormat) fail(`format is ${format}, expected ${contextFormat}`);
  const count = reader.varint();
  if (count > clockEntriesMax) fail(`context has ${count} entries, limit is ${clockEntriesMax}`);
  if (count === 0) return { entries: [] };
  const newest = reader.varint();
  const entries: ContextEntry[] = [];
  let previousActor = 0;
  for (let index = 0; index < count; index++) {
    const actorAndFrontier = reader.varint();
    const actorDelta = Math.floor(actorAndFrontier / 2);
    if (index > 0 && actorDelta === 0) fail(`entry ${index} repeats actor ${previousActor}`);
    const actor = index === 0 ? actorDelta : previousActor + actorDelta;
    const counter = reader.varint();
    const timestampMs = newest - reader.varint();
    entries.push({ actor, counter, timestampMs, frontier: actorAndFrontier % 2 === 1 });
    previousActor = actor;
  }
  return { entries };
}

// ---- validation ----------------------------------------------------------------------------

type ErrorType = new (message: string) => Error;

/** Runs `read` over all of `bytes`, turning a short read or trailing bytes into `error`. */
function parse<T>(
  prefix: string,
  bytes: Uint8Array,
  error: ErrorType,
  read: (reader: ByteReader, fail: (detail: string) => never) => T,
): T {
  const fail = (detail: string): never => {
    throw new error(`${prefix}: ${detail}`);
  };
  const reader = new ByteReader(bytes);
  let value: T;
  try {
    value = read(reader, fail);
  } catch (caught) {
    if (caught instanceof error) throw caught;
    if (caught instanceof RangeError) fail(`truncated or malformed (${caught.message})`);
    throw caught;
  }
  if (reader.remaining !== 0) fail(`${reader.remaining} trailing bytes`);
  return value;
}

function checkCanonical(prefix: string, bytes: Uint8Array, canonical: Uint8Array, error: ErrorType): void {
  if (!equalBytes(bytes, canonical)) throw new error(`${prefix}: not in canonical form (a varint is longer than needed)`);
}

function checkClock(prefix: string, clock: DottedVersionVector, error: ErrorType): void {
  if (typeof clock !== "object" || clock === null || typeof clock.dot !== "object" || !Array.isArray(clock.past)) {
    throw new LoomTypeError(`${prefix}: clock is ${describe(clock)}, must be { dot, past }`);
  }
  checkEntry(prefix, "dot", clock.dot, error);
  checkEntries(prefix, "past", clock.past, error);
  const ownCounter = clock.past.find((entry) => entry.actor === clock.dot.actor)?.counter ?? 0;
  if (ownCounter >= clock.dot.counter) {
    throw new error(
      `${prefix}: past reaches counter ${ownCounter} of actor ${clock.dot.actor}, at or beyond the dot's ${clock.dot.counter}`,
    );
  }
}

function checkContext(prefix: string, context: CausalContext, error: ErrorType): void {
  if (typeof context !== "object" || context === null || !Array.isArray(context.entries)) {
    throw new LoomTypeError(`${prefix}: context is ${describe(context)}, must be { entries }`);
  }
  checkEntries(prefix, "context", context.entries, error);
  for (const entry of context.entries) {
    if (typeof entry.frontier !== "boolean") throw new LoomTypeError(`${prefix}: context entry frontier must be a boolean`);
  }
}

function checkEntries(prefix: string, name: string, entries: readonly ClockEntry[], error: ErrorType): void {
  if (entries.length > clockEntriesMax) {
    throw new error(`${prefix}: ${name} has ${entries.length} entries, limit is ${clockEntriesMax}`);
  }
  let previousActor = -1;
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index]!;
    checkEntry(prefix, name, entry, error, index);
    if (entry.actor <= previousActor) {
      throw new error(`${prefix}: ${name} entry ${index} has actor ${entry.actor} after actor ${previousActor}`);
    }
    previousActor = entry.actor;
  }
}

function entryName(name: string, index: number | undefined): string {
  return index === undefined ? name : `${name} entry ${index}`;
}

/** Each checked field of a clock entry with its bounds; one table, so a check allocates nothing. */
const entryFields: readonly (readonly [keyof ClockEntry, number, number])[] = [
  ["actor", 0, actorMax],
  ["counter", 1, counterMax],
  ["timestampMs", 0, timestampMsMax],
];

/** `index` names a past or context entry in messages (the entry `name` itself when undefined). */
function checkEntry(prefix: string, name: string, entry: ClockEntry, error: ErrorType, index?: number): void {
  for (let fieldIndex = 0; fieldIndex < entryFields.length; fieldIndex++) {
    const [field, min, max] = entryFields[fieldIndex]!;
    const value: unknown = entry?.[field];
    if (typeof value !== "number" || !Number.isInteger(value)) {
      throw new LoomTypeError(`${prefix}: ${entryName(name, index)} ${field} is ${describe(value)}, must be an integer`);
    }
    if (value < min || value > max) {
      throw new error(`${prefix}: ${entryName(name, index)} ${field} is ${value}, must be in ${min}..${max}`);
    }
  }
}

// ---- small encodings -------------------------------------------------------------------------

/** Signed to unsigned: 0, -1, 1, -2 → 0, 1, 2, 3. REQUIRES: |value| < 2^52. */
function zigzag(value: number): number {
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

function unzigzag(value: number): number {
  return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
}

const base64UrlAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const base64UrlValues = new Map([...base64UrlAlphabet].map((character, index) => [character, index]));

/** Unpadded base64url (RFC 4648 section 5). */
function toBase64Url(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const chunk = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const characters = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let j = 0; j < characters; j++) text += base64UrlAlphabet[(chunk >> (18 - 6 * j)) & 63];
  }
  return text;
}

/** Strict inverse of toBase64Url: rejects padding, foreign characters and nonzero spare bits (bad context). */
function fromBase64Url(text: string): Uint8Array {
  if (text.length % 4 === 1) badContext(`${text.length} characters is not a base64url length`);
  const bytes = new Uint8Array(Math.floor((text.length * 6) / 8));
  let accumulator = 0;
  let bits = 0;
  let offset = 0;
  for (const [index, character] of [...text].entries()) {
    const value = base64UrlValues.get(character);
    if (value === undefined) badContext(`character ${JSON.stringify(character)} at ${index} is not base64url`);
    accumulator = ((accumulator << 6) | value!) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes[offset++] = (accumulator >> bits) & 0xff;
    }
  }
  if ((accumulator & ((1 << bits) - 1)) !== 0) badContext("spare bits at the end are not zero");
  return bytes;
}
