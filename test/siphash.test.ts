import { test } from "uvu";
import * as assert from "uvu/assert";
import { LoomRangeError, LoomTypeError } from "../src/util/errors.ts";
import { sipHash24, sipHashKey } from "../src/util/siphash.ts";
import { rejectsWithCode } from "./support/assertions.ts";

/**
 * The reference outputs of SipHash-2-4 (64-bit) from the paper's implementation (vectors.h,
 * vectors_sip64): key 00 01 .. 0f, message 00 01 .. (n - 1) for n = 0..63, output bytes in order.
 */
const referenceVectors = [
  "310e0edd47db6f72", "fd67dc93c539f874", "5a4fa9d909806c0d", "2d7efbd796666785",
  "b7877127e09427cf", "8da699cd64557618", "cee3fe586e46c9cb", "37d1018bf50002ab",
  "6224939a79f5f593", "b0e4a90bdf82009e", "f3b9dd94c5bb5d7a", "a7ad6b22462fb3f4",
  "fbe50e86bc8f1e75", "903d84c02756ea14", "eef27a8e90ca23f7", "e545be4961ca29a1",
  "db9bc2577fcc2a3f", "9447be2cf5e99a69", "9cd38d96f0b3c14b", "bd6179a71dc96dbb",
  "98eea21af25cd6be", "c7673b2eb0cbf2d0", "883ea3e395675393", "c8ce5ccd8c030ca8",
  "94af49f6c650adb8", "eab8858ade92e1bc", "f315bb5bb835d817", "adcf6b0763612e2f",
  "a5c91da7acaa4dde", "716595876650a2a6", "28ef495c53a387ad", "42c341d8fa92d832",
  "ce7cf2722f512771", "e37859f94623f3a7", "381205bb1ab0e012", "ae97a10fd434e015",
  "b4a31508beff4d31", "81396229f0907902", "4d0cf49ee5d4dcca", "5c73336a76d8bf9a",
  "d0a704536ba93e0e", "925958fcd6420cad", "a915c29bc8067318", "952b79f3bc0aa6d4",
  "f21df2e41d4535f9", "87577519048f53a9", "10a56cf5dfcd9adb", "eb75095ccd986cd0",
  "51a9cb9ecba312e6", "96afadfc2ce666c7", "72fe52975a4364ee", "5a1645b276d592a1",
  "b274cb8ebf87870a", "6f9bb4203de7b381", "eaecb2a30b22a87f", "9924a43cc1315724",
  "bd838d3aafbf8db7", "0b1a2a3265d51aea", "135079a3231ce660", "932b2846e4d70666",
  "e1915f5cb1eca46c", "f325965ca16d629f", "575ff28e60381be5", "724506eb4c328a95",
];

const hex = (bytes: Uint8Array): string => [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
const sequence = (length: number): Uint8Array => Uint8Array.from({ length }, (_, index) => index);

test("SipHash-2-4 gives the reference outputs for messages of 0 to 63 bytes", () => {
  const key = sipHashKey(sequence(16));
  for (let length = 0; length < referenceVectors.length; length++) {
    assert.is(hex(sipHash24(key, sequence(length))), referenceVectors[length], `message of ${length} bytes`);
  }
});

test("SipHash-2-4 gives the paper's worked example: 15 bytes hash to a129ca6149be45e5", () => {
  const out = sipHash24(sipHashKey(sequence(16)), sequence(15));
  const value = new DataView(out.buffer).getBigUint64(0, true);
  assert.is(value.toString(16), "a129ca6149be45e5");
});

test("SipHash-2-4 writes into a caller's buffer at an offset and depends on every key byte", () => {
  const out = new Uint8Array(12);
  sipHash24(sipHashKey(sequence(16)), sequence(8), out, 4);
  assert.is(hex(out.subarray(4)), referenceVectors[8]);
  assert.equal([...out.subarray(0, 4)], [0, 0, 0, 0]);
  for (let index = 0; index < 16; index++) {
    const key = sequence(16);
    key[index]! ^= 0x01;
    assert.is.not(hex(sipHash24(sipHashKey(key), sequence(8))), referenceVectors[8], `key byte ${index}`);
  }
});

test("a SipHash key must be 16 bytes", async () => {
  await rejectsWithCode(() => sipHashKey(new Uint8Array(15)), "LOOM_OUT_OF_RANGE");
  await rejectsWithCode(() => sipHashKey("0123456789abcdef" as never), "LOOM_INVALID_ARGUMENT");
});

test.run();
