/**
 * Data-plane message types: an append-only table with explicit numbers. 0 is
 * reserved so that a zeroed or missing field is never a valid type. A number, once published, is
 * never reused or renumbered, even after its type is retired: add new types at the end of their
 * group. Numbers are grouped with room to grow (1-19 client requests and replication, 20-39
 * membership and hints, 40-59 anti-entropy and streaming, 60+ unassigned).
 *
 * A message is a plain structured-cloneable object `{ type, ...fields }`; fields may be numbers,
 * strings, booleans, arrays, plain objects and Uint8Array. PortTransport encodes the hot types
 * into a binary frame (frame_format.ts) and clones the rest; a type that gets a binary body must
 * keep its exact field set, or it silently falls back to cloning (counted in messagesCloned).
 */

export const MessageType = {
  /** 0 is reserved: never sent; a message with type 0 is malformed. */
  // Client requests and replication (1-19).
  requestPut: 1,
  requestGet: 2,
  replicate: 3,
  replicateAck: 4,
  read: 5,
  readReply: 6,
  repair: 7,
  response: 8,
  requestDelete: 9,
  // Membership and hinted handoff (20-39).
  gossip: 20,
  hint: 21,
  hintAck: 22,
  // Anti-entropy and streaming (40-59).
  merkleRequest: 40,
  merkleReply: 41,
  streamChunk: 42,
  streamAck: 43,
  aeSegments: 44,
  aeEntries: 45,
  aeHashes: 46,
  aePurged: 47,
  aeAck: 48,
} as const;

export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** A data-plane message. Fields other than `type` are defined by the protocol that owns the type. */
export interface Message {
  readonly type: MessageType;
  readonly [field: string]: unknown;
}

const knownTypes: ReadonlySet<number> = new Set(Object.values(MessageType));

/** Whether `value` is an object whose `type` is a known message type (a check at the trust edge). */
export function isMessage(value: unknown): value is Message {
  if (typeof value !== "object" || value === null) return false;
  const type = (value as { type?: unknown }).type;
  return typeof type === "number" && knownTypes.has(type);
}
