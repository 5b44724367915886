/**
 * Binary forms of the version clock (the opaque blob the storage engine keeps beside each value)
 * and of the causal context (the opaque string clients carry from a read to their next write).
 * Both are canonical: a decoder accepts only the exact bytes the encoder produces, so equal blobs
 * mean equal clocks. Grammar and a worked example: docs/versioning.md.
 *
 *   version := format:u8(=1) dotActor:varint dotCounter:varint dotTimestampMs:varint
 *              pastCount:varint pastEntry{pastCount}
 *   pastEntry := actorDelta:varint counter:varint timestampDelta:zigzag
 *   context := format:u8(=1) count:varint [newestTimestampMs:varint] contextEntry{count}
 *   contextEntry := (actorDelta << 1 | frontier):varint counter:varint ageMs:varint
 *
 * actorDelta is the first actor itself, then the gap to the previous actor (at least 1).
 * timestampDelta is the entry's timestamp minus the dot's; ageMs is newestTimestampMs minus the
 * entry's timestamp. The context string is the bytes in unpadded base64url.
 */
import { ByteReader, ByteWriter, equalBytes } from "../util/bytes.ts";
import { assert } from "../util/assert.ts";
import { describe, LoomRangeError, LoomTypeError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";
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
export const contextFormat = 1;

/** Largest varint each field can take: actor 3 bytes, counter 8, timestamp or delta 7. */
const entryBytesMax = 3 + 8 + 7;
/** The largest version blob the grammar allows (format, dot, count, entries). */
export const versionEncodedBytesMax = 1 + entryBytesMax + 1 + clockEntriesMax * entryBytesMax;
/** The largest context in bytes and in base64url characters. */
export const contextEncodedBytesMax = 1 + 1 + 7 + clockEntriesMax * entryBytesMax;
export const contextCharactersMax = Math.ceil((contextEncodedBytesMax * 4) / 3);

assert(versionEncodedBytesMax <= limits.versionBytesMax, "the largest version clock must fit in a version blob");
assert(clockEntriesMax < 128, "an entry count must fit in one varint byte");

// ---- version blob --------------------------------------------------------------------------

/** Encodes a clock into a version blob. Throws LoomTypeError or LoomRangeError on an invalid clock. */
export function encodeVersion(clock: DottedVersionVector): Uint8Array {
  checkClock("encode version", clock, LoomRangeError);
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
  const clock = parse("decode version", blob, LoomRangeError, readVersion);
  checkClock("decode version", clock, LoomRangeError);
  checkCanonical("decode version", blob, writeVersion(clock), LoomRangeError);
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

/** Encodes a context as an opaque base64url string. Throws LoomTypeError or LoomRangeError on an invalid one. */
export function encodeContext(context: CausalContext): string {
  checkContext("encode context", context, LoomRangeError);
  return toBase64Url(writeContext(context)); // reads the view before anything else writes
}

/**
 * Decodes a context a client sent back. Throws LoomTypeError (code LOOM_INVALID_ARGUMENT) when
 * `text` is not a string this module produced.
 */
export function decodeContext(text: unknown): CausalContext {
  const action = "decode context";
  if (typeof text !== "string") throw new LoomTypeError(`${action} failed: context is ${describe(text)}, must be a string`);
  if (text.length > contextCharactersMax) {
    throw new LoomTypeError(`${action} failed: context is ${text.length} characters, limit is ${contextCharactersMax}`);
  }
  const bytes = fromBase64Url(text);
  const context = parse(action, bytes, LoomTypeError, readContext);
  checkContext(action, context, LoomTypeError);
  checkCanonical(action, bytes, writeContext(context), LoomTypeError);
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
  action: string,
  bytes: Uint8Array,
  error: ErrorType,
  read: (reader: ByteReader, fail: (detail: string) => never) => T,
): T {
  const fail = (detail: string): never => {
    throw new error(`${action} failed: ${detail}`);
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

function checkCanonical(action: string, bytes: Uint8Array, canonical: Uint8Array, error: ErrorType): void {
  if (!equalBytes(bytes, canonical)) throw new error(`${action} failed: not in canonical form (a varint is longer than needed)`);
}

function checkClock(action: string, clock: DottedVersionVector, error: ErrorType): void {
  if (typeof clock !== "object" || clock === null || typeof clock.dot !== "object" || !Array.isArray(clock.past)) {
    throw new LoomTypeError(`${action} failed: clock is ${describe(clock)}, must be { dot, past }`);
  }
  checkEntry(action, "dot", clock.dot, error);
  checkEntries(action, "past", clock.past, error);
  const ownCounter = clock.past.find((entry) => entry.actor === clock.dot.actor)?.counter ?? 0;
  if (ownCounter >= clock.dot.counter) {
    throw new error(
      `${action} failed: past reaches counter ${ownCounter} of actor ${clock.dot.actor}, at or beyond the dot's ${clock.dot.counter}`,
    );
  }
}

function checkContext(action: string, context: CausalContext, error: ErrorType): void {
  if (typeof context !== "object" || context === null || !Array.isArray(context.entries)) {
    throw new LoomTypeError(`${action} failed: context is ${describe(context)}, must be { entries }`);
  }
  checkEntries(action, "context", context.entries, error);
  for (const entry of context.entries) {
    if (typeof entry.frontier !== "boolean") throw new LoomTypeError(`${action} failed: context entry frontier must be a boolean`);
  }
}

function checkEntries(action: string, name: string, entries: readonly ClockEntry[], error: ErrorType): void {
  if (entries.length > clockEntriesMax) {
    throw new error(`${action} failed: ${name} has ${entries.length} entries, limit is ${clockEntriesMax}`);
  }
  let previousActor = -1;
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index]!;
    checkEntry(action, name, entry, error, index);
    if (entry.actor <= previousActor) {
      throw new error(`${action} failed: ${name} entry ${index} has actor ${entry.actor} after actor ${previousActor}`);
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
function checkEntry(action: string, name: string, entry: ClockEntry, error: ErrorType, index?: number): void {
  for (let index = 0; index < entryFields.length; index++) {
    const [field, min, max] = entryFields[index]!;
    const value: unknown = entry?.[field];
    if (typeof value !== "number" || !Number.isInteger(value)) {
      throw new LoomTypeError(`${action} failed: ${entryName(name, index)} ${field} is ${describe(value)}, must be an integer`);
    }
    if (value < min || value > max) {
      throw new error(`${action} failed: ${entryName(name, index)} ${field} is ${value}, must be in ${min}..${max}`);
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

/** Strict inverse of toBase64Url: rejects padding, foreign characters and nonzero spare bits. */
function fromBase64Url(text: string): Uint8Array {
  const fail = (detail: string): never => {
    throw new LoomTypeError(`decode context failed: ${detail}`);
  };
  if (text.length % 4 === 1) fail(`${text.length} characters is not a base64url length`);
  const bytes = new Uint8Array(Math.floor((text.length * 6) / 8));
  let accumulator = 0;
  let bits = 0;
  let offset = 0;
  for (const [index, character] of [...text].entries()) {
    const value = base64UrlValues.get(character);
    if (value === undefined) fail(`character ${JSON.stringify(character)} at ${index} is not base64url`);
    accumulator = ((accumulator << 6) | value!) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes[offset++] = (accumulator >> bits) & 0xff;
    }
  }
  if ((accumulator & ((1 << bits) - 1)) !== 0) fail("spare bits at the end are not zero");
  return bytes;
}
