/**
 * Preloaded into the frontend by `bench/pxe-storm.ts --frontend-rcvbuf N`
 * (experiment only): every UDP socket of the process asks for an N-byte
 * receive buffer (SO_RCVBUF) as soon as it is bound. The kernel caps the
 * request at net.core.rmem_max. N comes from KICKSWARM_BENCH_UDP_RCVBUF.
 */
import dgram from 'node:dgram';

const bytes = Number(process.env.KICKSWARM_BENCH_UDP_RCVBUF);
if (Number.isInteger(bytes) && bytes > 0) {
  const bind = dgram.Socket.prototype.bind;
  dgram.Socket.prototype.bind = function (this: dgram.Socket, ...args: unknown[]) {
    this.once('listening', () => {
      try {
        this.setRecvBufferSize(bytes);
      } catch (e) {
        process.stderr.write(`udp-rcvbuf-preload: ${(e as Error).message}\n`);
      }
    });
    return (bind as (...a: unknown[]) => dgram.Socket).apply(this, args);
  } as typeof dgram.Socket.prototype.bind;
}
