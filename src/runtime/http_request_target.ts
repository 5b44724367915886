/**
 * What an HTTP request names, read from its request target exactly as the client sent it: the
 * route, the key (or node id) in the path, and the request options in the query string. Pure.
 *
 * The path is never normalised: `/items/x/../y` names the key `x/../y`, not `y`. The key is
 * everything after `/items/` (or `/replicas/`), slashes included, percent-decoded exactly once
 * into bytes: `%FF` is the byte 0xFF, `%2F` a slash, `%252F` the three bytes `%2F`. Keys are raw
 * bytes, as in Riak and S3; a key written as a string through the API is its UTF-8 bytes, so
 * `/items/caf%C3%A9` and `cluster.get("café")` name the same key. A `%` that does not start two
 * hex digits is refused (LoomTypeError). The query string is never part of the key.
 */
import { utf8Encode } from "../util/bytes.ts";
import { LoomTypeError, describe } from "../util/errors.ts";

/** The request target split at its first `?`. An absolute-form target loses its scheme and host. */
export interface RequestTarget {
  /** As sent, still percent-encoded. */
  readonly path: string;
  /** What follows the first `?`, still encoded ("" when there is none). */
  readonly query: string;
}

export type RouteName = "items" | "replicas" | "stats" | "ring" | "config" | "nodes" | "node" | "compact";

export interface Route {
  readonly name: RouteName;
  /** The path pattern, for messages: `/items/:key`. */
  readonly pattern: string;
  /** The methods the route answers, for the Allow header of a 405. */
  readonly allow: readonly string[];
  /** The raw (still encoded) key or node id of `/items/:key`, `/replicas/:key`, `/nodes/:id`; "" otherwise. */
  readonly parameter: string;
}

const READ = ["GET", "HEAD"] as const;

export function splitTarget(target: string): RequestTarget {
  const absolute = /^[a-z][a-z0-9+.-]*:\/\/[^/?]*/i.exec(target);
  const origin = absolute ? target.slice(absolute[0].length) || "/" : target;
  const mark = origin.indexOf("?");
  return mark < 0 ? { path: origin, query: "" } : { path: origin.slice(0, mark), query: origin.slice(mark + 1) };
}

/** The route `path` names, or undefined when it names none (404). */
export function matchRoute(path: string): Route | undefined {
  if (path.startsWith("/items/")) {
    return { name: "items", pattern: "/items/:key", allow: [...READ, "PUT", "DELETE"], parameter: path.slice("/items/".length) };
  }
  if (path.startsWith("/replicas/")) {
    return { name: "replicas", pattern: "/replicas/:key", allow: READ, parameter: path.slice("/replicas/".length) };
  }
  const node = /^\/nodes\/([^/]+)$/.exec(path);
  if (node) return { name: "node", pattern: "/nodes/:id", allow: ["DELETE"], parameter: node[1]! };
  switch (path) {
    case "/stats":
      return { name: "stats", pattern: path, allow: READ, parameter: "" };
    case "/ring":
      return { name: "ring", pattern: path, allow: READ, parameter: "" };
    case "/config":
      return { name: "config", pattern: path, allow: ["PATCH"], parameter: "" };
    case "/nodes":
      return { name: "nodes", pattern: path, allow: ["POST"], parameter: "" };
    case "/compact":
      return { name: "compact", pattern: path, allow: ["POST"], parameter: "" };
    default:
      return undefined;
  }
}

/**
 * The bytes `encoded` stands for: every `%XY` becomes the byte 0xXY, every other character its
 * UTF-8 bytes (request targets are ASCII; other characters are taken as the client meant them).
 * Throws LoomTypeError naming `what` and the offset of a `%` not followed by two hex digits.
 */
export function percentDecode(action: string, what: string, encoded: string): Uint8Array {
  const bytes = new Uint8Array(encoded.length * 3);
  let length = 0;
  for (let index = 0; index < encoded.length; index++) {
    const unit = encoded.charCodeAt(index);
    if (unit === 0x25 /* % */) {
      const high = hexValue(encoded.charCodeAt(index + 1));
      const low = hexValue(encoded.charCodeAt(index + 2));
      if (high < 0 || low < 0) {
        const escape = JSON.stringify(encoded.slice(index, index + 3));
        throw new LoomTypeError(`${action} failed: ${what} has a malformed percent-escape ${escape} at offset ${index}`);
      }
      bytes[length++] = (high << 4) | low;
      index += 2;
    } else if (unit < 0x80) {
      bytes[length++] = unit;
    } else {
      const character = String.fromCodePoint(encoded.codePointAt(index)!);
      const utf8 = utf8Encode(character);
      bytes.set(utf8, length);
      length += utf8.length;
      index += character.length - 1;
    }
  }
  return bytes.slice(0, length);
}

function hexValue(unit: number): number {
  if (unit >= 0x30 && unit <= 0x39) return unit - 0x30;
  if (unit >= 0x41 && unit <= 0x46) return unit - 0x41 + 10;
  if (unit >= 0x61 && unit <= 0x66) return unit - 0x61 + 10;
  return -1;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** `encoded` percent-decoded as UTF-8 text (`+` stays `+`). Throws LoomTypeError when it is not UTF-8. */
export function percentDecodeText(action: string, what: string, encoded: string): string {
  try {
    return strictUtf8.decode(percentDecode(action, what, encoded));
  } catch (error) {
    if (error instanceof LoomTypeError) throw error;
    throw new LoomTypeError(`${action} failed: ${what} ${describe(encoded)} is not UTF-8 once percent-decoded`);
  }
}

/**
 * The query string's parameters, in order (application/x-www-form-urlencoded: `+` is a space).
 * Throws LoomTypeError for a malformed escape, text that is not UTF-8, or a name given twice.
 */
export function parseQuery(action: string, query: string): Map<string, string> {
  const parameters = new Map<string, string>();
  if (query === "") return parameters;
  for (const piece of query.split("&")) {
    if (piece === "") continue;
    const equals = piece.indexOf("=");
    const rawName = equals < 0 ? piece : piece.slice(0, equals);
    const rawValue = equals < 0 ? "" : piece.slice(equals + 1);
    const name = percentDecodeText(action, "a query parameter name", rawName.replaceAll("+", " "));
    const value = percentDecodeText(action, `query parameter ${JSON.stringify(name)}`, rawValue.replaceAll("+", " "));
    if (parameters.has(name)) throw new LoomTypeError(`${action} failed: query parameter ${JSON.stringify(name)} is given twice`);
    parameters.set(name, value);
  }
  return parameters;
}

/** Query parameters the item routes parse as integers: the API's request options. */
const integerOptionNames = new Set(["w", "r", "pw", "pr", "timeoutMs"]);

/**
 * The request options of an item request from its query parameters. `w`, `r`, `pw`, `pr` and `timeoutMs`
 * must be decimal integers (else LoomTypeError, worded as the API words it); every other name is
 * passed on as its text, so that the API refuses an option it does not take (`r` on a put, an
 * unknown name) with its own message. `context` is refused: it travels in X-Loom-Context.
 */
export function requestOptions(action: "put" | "delete" | "get", parameters: ReadonlyMap<string, string>): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const [name, value] of parameters) {
    if (name === "context") throw new LoomTypeError(`${action} failed: the context goes in the X-Loom-Context header, not the query`);
    if (!integerOptionNames.has(name)) {
      options[name] = value;
      continue;
    }
    if (!/^-?[0-9]+$/.test(value)) throw new LoomTypeError(`${action} failed: ${name} must be an integer, got ${describe(value)}`);
    options[name] = Number(value);
  }
  return options;
}

/**
 * Refuses every query parameter of a route that takes none but `names`, naming the first
 * unknown one. `names` lists what the route takes, for the message.
 */
export function refuseUnknownParameters(action: string, parameters: ReadonlyMap<string, string>, names: readonly string[]): void {
  for (const name of parameters.keys()) {
    if (names.includes(name)) continue;
    const takes = names.length === 0 ? "takes no query parameters" : `takes ${names.join(", ")}`;
    throw new LoomTypeError(`${action} failed: unknown query parameter ${JSON.stringify(name)}; ${action} ${takes}`);
  }
}
