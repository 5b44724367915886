/**
 * Request bodies for the HTTP front, read up to a limit, and the close that follows a refusal.
 *
 * A body past its limit is refused with 413 (HttpError, `close`): a declared Content-Length at
 * once, before a byte of the body is read (a client that sent `Expect: 100-continue` then never
 * sends it), a chunked body as soon as it passes the limit. The answer carries
 * `Connection: close`; the front then closes the connection with a lingering close: it sends the
 * answer, shuts down its side, and keeps reading and discarding what the client still sends until
 * the client closes or `limits.httpLingerMs` passes. Closing at once would reset a connection
 * with unread data in it, and a client still sending its body would often see the reset instead
 * of the answer.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { concatBytes } from "../util/bytes.ts";
import { limits } from "../util/limits.ts";
import { HttpError } from "./http_status.ts";

/** Requests whose client waits for `100 Continue` before sending the body (the server's checkContinue event). */
const waitingForContinue = new WeakSet<IncomingMessage>();

export function markWaitingForContinue(request: IncomingMessage): void {
  waitingForContinue.add(request);
}

function tooLarge(action: string, detail: string): HttpError {
  return new HttpError({ status: 413, code: "LOOM_OUT_OF_RANGE", message: `${action} failed: ${detail}`, close: true });
}

/**
 * The request's whole body. Rejects with HttpError 413 when it is longer than `bytesMax` (see
 * the module comment); with the stream's error when the client goes away mid-body.
 */
export function readBody(request: IncomingMessage, response: ServerResponse, options: { action: string; bytesMax: number }): Promise<Uint8Array> {
  const { action, bytesMax } = options;
  const declared = request.headers["content-length"];
  if (declared !== undefined && /^[0-9]+$/.test(declared) && Number(declared) > bytesMax) {
    return Promise.reject(tooLarge(action, `body is ${declared} bytes, limit is ${bytesMax}`));
  }
  if (waitingForContinue.has(request)) response.writeContinue();
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let bytes = 0;
    const onData = (chunk: Uint8Array) => {
      bytes += chunk.length;
      if (bytes <= bytesMax) return void chunks.push(chunk);
      // Stop keeping the body; the lingering close discards the rest.
      request.off("data", onData);
      chunks.length = 0;
      reject(tooLarge(action, `body is longer than ${bytesMax} bytes, the limit`));
    };
    request.on("data", onData);
    request.once("end", () => resolve(concatBytes(chunks)));
    request.once("error", reject);
    request.once("close", () => {
      if (!request.complete) reject(new Error(`${action} failed: the client closed the connection before the body ended`));
    });
  });
}

/**
 * Makes the server's close of `socket`, after an answer with `Connection: close`, a lingering
 * close. The http server closes such a connection with `socket.destroySoon()` once the answer is
 * written; this replaces that method on this one socket.
 */
export function lingerOnClose(socket: Duplex): void {
  (socket as Duplex & { destroySoon?: () => void }).destroySoon = () => lingeringClose(socket);
}

/**
 * Ends the write side of `socket` (after what is queued on it), reads and discards until the
 * peer closes its side, then destroys it; destroys it regardless after `limits.httpLingerMs`.
 */
export function lingeringClose(socket: Duplex): void {
  if (socket.destroyed) return;
  socket.end();
  const timer = setTimeout(() => socket.destroy(), limits.httpLingerMs);
  socket.once("close", () => clearTimeout(timer));
  let finished = socket.writableFinished;
  let ended = socket.readableEnded;
  const destroyWhenDone = () => {
    if (finished && ended) socket.destroy();
  };
  socket.once("finish", () => {
    finished = true;
    destroyWhenDone();
  });
  socket.once("end", () => {
    ended = true;
    destroyWhenDone();
  });
  socket.resume();
  destroyWhenDone();
}
