import { test } from "uvu";
import * as assert from "uvu/assert";
import { ByteReader, ByteWriter, compareBytes, utf8Encode } from "../src/util/bytes.ts";
import { crc32c, maskCrc, unmaskCrc } from "../src/util/crc32c.ts";

test("byte comparison orders keys as unsigned bytes, shorter prefix first", () => {
  assert.ok(compareBytes(utf8Encode("a"), utf8Encode("b")) < 0);
  assert.ok(compareBytes(utf8Encode("ab"), utf8Encode("a")) > 0);
  assert.ok(compareBytes(new Uint8Array([0x80]), new Uint8Array([0x7f])) > 0);
  assert.is(compareBytes(utf8Encode("same"), utf8Encode("same")), 0);
});

test("varints, fixed integers and byte runs round-trip through writer and reader", () => {
  const writer = new ByteWriter(4);
  const numbers = [0, 1, 127, 128, 300, 2 ** 31, 2 ** 53 - 1];
  for (const n of numbers) writer.varint(n);
  writer.u32(0xdeadbeef);
  writer.u64(2 ** 52 + 5);
  writer.bytes(utf8Encode("tail"));
  const reader = new ByteReader(writer.finish());
  for (const n of numbers) assert.is(reader.varint(), n);
  assert.is(reader.u32(), 0xdeadbeef);
  assert.is(reader.u64(), 2 ** 52 + 5);
  assert.equal([...reader.bytesView(4)], [...utf8Encode("tail")]);
  assert.throws(() => reader.u8(), /read past end/);
});

test("crc32c matches the standard check value and masking is reversible", () => {
  assert.is(crc32c(utf8Encode("123456789")), 0xe3069283);
  const crc = crc32c(utf8Encode("loomkv"));
  assert.is.not(maskCrc(crc), crc);
  assert.is(unmaskCrc(maskCrc(crc)), crc);
  // Continuing a checksum equals checksumming the concatenation.
  assert.is(crc32c(utf8Encode("6789"), crc32c(utf8Encode("12345"))), 0xe3069283);
});

test.run();
