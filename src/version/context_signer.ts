/**
 * What makes a causal context unforgeable and bound to its key: a tag over (key, the context's
 * bytes) computed with the cluster's secret. The codec (version_codec.ts) appends the tag when it
 * encodes a context and checks it before it parses one; the coordinator sessions and the main
 * thread reach the secret only through this interface, so a simulator can inject a signer made
 * from a seeded secret. See docs/versioning.md ("Why a context cannot be forged").
 */
import { assert } from "../util/assert.ts";
import { ByteWriter } from "../util/bytes.ts";
import { describe, LoomRangeError, LoomTypeError } from "../util/errors.ts";
import { sipHash24, sipHashBytes, sipHashKey, sipHashKeyBytes, type SipHashKey } from "../util/siphash.ts";

/** Bytes of a context's tag. */
export const contextTagBytes = sipHashBytes;
/** Bytes of a cluster's context secret (the SipHash key). */
export const contextSecretBytes = sipHashKeyBytes;

/**
 * Signs and checks context tags. Thread contract: a signer belongs to one thread (it reuses a
 * scratch buffer); each thread makes its own from the same secret.
 */
export interface ContextSigner {
  /** The tag of `body` (a context's bytes, without tag) for `key`: contextTagBytes new bytes, the caller's. */
  sign(key: Uint8Array, body: Uint8Array): Uint8Array;
  /** True when `tag` is exactly the tag of `body` for `key`. Reads `tag`; never throws for a wrong one. */
  verify(key: Uint8Array, body: Uint8Array, tag: Uint8Array): boolean;
}

/**
 * The signer of a cluster: SipHash-2-4 keyed with `secret` (contextSecretBytes random bytes) over
 * `keyLength:varint key body`. The length prefix makes the pair unambiguous: no other (key, body)
 * pair hashes the same bytes. Throws LoomTypeError or LoomRangeError on a wrong secret.
 */
export function createContextSigner(secret: Uint8Array): ContextSigner {
  if (!(secret instanceof Uint8Array)) throw new LoomTypeError(`create context signer failed: secret is ${describe(secret)}, must be a Uint8Array`);
  if (secret.length !== contextSecretBytes) {
    throw new LoomRangeError(`create context signer failed: secret is ${secret.length} bytes, must be ${contextSecretBytes}`);
  }
  return new SipHashContextSigner(secret);
}

class SipHashContextSigner implements ContextSigner {
  readonly #key: SipHashKey;
  readonly #message = new ByteWriter(256);
  readonly #expected = new Uint8Array(contextTagBytes);

  constructor(secret: Uint8Array) {
    this.#key = sipHashKey(secret);
  }

  sign(key: Uint8Array, body: Uint8Array): Uint8Array {
    return sipHash24(this.#key, this.#input(key, body));
  }

  verify(key: Uint8Array, body: Uint8Array, tag: Uint8Array): boolean {
    if (tag.length !== contextTagBytes) return false;
    const expected = sipHash24(this.#key, this.#input(key, body), this.#expected);
    // Every byte compared whatever the first difference: the time taken says nothing about the tag.
    let difference = 0;
    for (let index = 0; index < contextTagBytes; index++) difference |= expected[index]! ^ tag[index]!;
    return difference === 0;
  }

  /** The hashed bytes, as a view of the scratch writer valid until the next call. */
  #input(key: Uint8Array, body: Uint8Array): Uint8Array {
    assert(key instanceof Uint8Array && body instanceof Uint8Array, "a context is signed over bytes");
    const writer = this.#message;
    writer.reset();
    writer.varint(key.length);
    writer.bytes(key);
    writer.bytes(body);
    return writer.view();
  }
}
