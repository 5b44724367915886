/** Byte helpers shared by every layer. Keys order by unsigned byte comparison (memcmp). */

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false });

/** Strings up to this many UTF-16 units are encoded here when ASCII (TextEncoder's call costs more). */
const SHORT_TEXT_UNITS_MAX = 64;

export function utf8Encode(text: string): Uint8Array {
  const length = text.length;
  if (length > SHORT_TEXT_UNITS_MAX) return encoder.encode(text);
  // Keys, names and small values are mostly short ASCII: one byte per unit, the same bytes
  // TextEncoder gives. Anything else (including a lone surrogate) goes to TextEncoder.
  const bytes = new Uint8Array(length);
  for (let index = 0; index < length; index++) {
    const unit = text.charCodeAt(index);
    if (unit >= 0x80) return encoder.encode(text);
    bytes[index] = unit;
  }
  return bytes;
}

export function utf8Decode(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** memcmp order: negative if a < b, 0 if equal, positive if a > b. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const difference = a[i]! - b[i]!;
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Whether every UTF-16 code unit of `text` is below 0x80 (its UTF-8 is one byte per unit). */
export function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** Growable byte buffer for encoders. Owns its storage; `finish()` returns a view of the written bytes. */
export class ByteWriter {
  #buffer: Uint8Array;
  #view: DataView;
  #length = 0;

  constructor(initialCapacity = 4096) {
    this.#buffer = new Uint8Array(initialCapacity);
    this.#view = new DataView(this.#buffer.buffer);
  }

  get length(): number {
    return this.#length;
  }

  #reserve(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#buffer.length) return;
    let capacity = this.#buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = next;
    this.#view = new DataView(next.buffer);
  }

  u8(value: number): void {
    this.#reserve(1);
    this.#buffer[this.#length++] = value;
  }

  u16(value: number): void {
    this.#reserve(2);
    this.#view.setUint16(this.#length, value, true);
    this.#length += 2;
  }

  u32(value: number): void {
    this.#reserve(4);
    this.#view.setUint32(this.#length, value, true);
    this.#length += 4;
  }

  /** Unsigned integer up to 2^53 - 1, little-endian in 8 bytes. */
  u64(value: number): void {
    this.#reserve(8);
    this.#view.setBigUint64(this.#length, BigInt(value), true);
    this.#length += 8;
  }

  /** LEB128 varint for unsigned integers up to 2^53 - 1. */
  varint(value: number): void {
    this.#reserve(8);
    while (value >= 0x80) {
      this.#buffer[this.#length++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.#buffer[this.#length++] = value;
  }

  bytes(data: Uint8Array): void {
    this.#reserve(data.length);
    this.#buffer.set(data, this.#length);
    this.#length += data.length;
  }

  /**
   * Writes `text` one byte per UTF-16 code unit. REQUIRES: every code unit is below 0x80 (the
   * caller checked; see `isAscii`), so the bytes are also the text's UTF-8.
   */
  ascii(text: string): void {
    this.#reserve(text.length);
    const buffer = this.#buffer;
    let at = this.#length;
    for (let i = 0; i < text.length; i++) buffer[at++] = text.charCodeAt(i);
    this.#length = at;
  }

  /** Drops the bytes written after `length` (an earlier `length`), to undo a partial encoding. */
  truncate(length: number): void {
    if (!(Number.isSafeInteger(length) && length >= 0 && length <= this.#length)) {
      throw new RangeError(`truncate failed: length is ${length}, must be in 0..${this.#length}`);
    }
    this.#length = length;
  }

  /** Overwrites 4 bytes at an earlier offset (for lengths and checksums written after the body). */
  patchU32(offset: number, value: number): void {
    this.#view.setUint32(offset, value, true);
  }

  /** A view of the bytes written so far; valid until the next write. */
  view(): Uint8Array {
    return this.#buffer.subarray(0, this.#length);
  }

  /** A copy of the bytes written so far. */
  finish(): Uint8Array {
    return this.#buffer.slice(0, this.#length);
  }

  reset(): void {
    this.#length = 0;
  }
}

/** Sequential decoder over a byte view. Throws RangeError on reading past the end (callers map it to corruption). */
export class ByteReader {
  readonly bytes: Uint8Array;
  /** Made on the first fixed-width read: most readers (varints, byte views) never need one. */
  #dataView: DataView | undefined;
  offset: number;

  constructor(bytes: Uint8Array, offset = 0) {
    this.bytes = bytes;
    this.offset = offset;
  }

  get #view(): DataView {
    const bytes = this.bytes;
    return (this.#dataView ??= new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  #need(count: number): void {
    if (this.offset + count > this.bytes.length) {
      throw new RangeError(`read past end: need ${count} bytes at ${this.offset}, have ${this.bytes.length - this.offset}`);
    }
  }

  u8(): number {
    if (this.offset >= this.bytes.length) this.#need(1);
    return this.bytes[this.offset++]!;
  }

  u16(): number {
    this.#need(2);
    const value = this.#view.getUint16(this.offset, true);
    this.offset += 2;
    return value;
  }

  u32(): number {
    this.#need(4);
    const value = this.#view.getUint32(this.offset, true);
    this.offset += 4;
    return value;
  }

  u64(): number {
    this.#need(8);
    const value = this.#view.getBigUint64(this.offset, true);
    this.offset += 8;
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`u64 ${value} exceeds 2^53 - 1`);
    return Number(value);
  }

  varint(): number {
    const bytes = this.bytes;
    if (this.offset < bytes.length && bytes[this.offset]! < 0x80) return bytes[this.offset++]!; // one-byte fast path
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const byte = this.u8();
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 0x80;
    }
    throw new RangeError(`varint longer than 8 bytes at ${this.offset}`);
  }

  /** A view (no copy) of the next `count` bytes. */
  bytesView(count: number): Uint8Array {
    this.#need(count);
    const out = this.bytes.subarray(this.offset, this.offset + count);
    this.offset += count;
    return out;
  }
}
