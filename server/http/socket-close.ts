/**
 * Calls back when a connection closes, with one `close` listener per socket
 * however many requests on it wait (pipelined requests may queue dozens).
 */
import type { Socket } from 'node:net';

const waiting = new WeakMap<Socket, Set<() => void>>();

/** Calls `fn` once when `socket` closes (at once if it already has); the result unregisters it. */
export function onSocketClose(socket: Socket, fn: () => void): () => void {
  if (socket.destroyed) {
    fn();
    return () => undefined;
  }
  let set = waiting.get(socket);
  if (!set) {
    const fns = new Set<() => void>();
    set = fns;
    waiting.set(socket, fns);
    socket.once('close', () => {
      waiting.delete(socket);
      for (const f of fns) f();
      fns.clear();
    });
  }
  set.add(fn);
  const s = set;
  return () => void s.delete(fn);
}
