/* global Buffer, process, setInterval, setTimeout */
// A DHCP client for tests: sends one DHCPDISCOVER (repeated each second) with
// the given client architecture (option 93), vendor class (60) and user class
// (77), and prints the first OFFER's boot file (BOOTP `file` field or option
// 67) and vendor class as JSON. Usage: node dhcp-probe.mjs '<json>'
// {mac, arch, vendorClass?, userClass?, timeoutMs?}. Run it inside a network
// namespace whose only link reaches the DHCP server.
import dgram from 'node:dgram';
import crypto from 'node:crypto';

const o = JSON.parse(process.argv[2]);
const xid = crypto.randomBytes(4);
const opt = (code, data) => Buffer.concat([Buffer.from([code, data.length]), data]);
const arch = Buffer.alloc(2);
arch.writeUInt16BE(o.arch, 0);
const pkt = Buffer.concat([
  Buffer.from([1, 1, 6, 0]),
  xid,
  Buffer.from([0, 0, 0x80, 0]),
  Buffer.alloc(16),
  Buffer.concat([Buffer.from(o.mac.split(':').map((h) => parseInt(h, 16))), Buffer.alloc(10)]),
  Buffer.alloc(192),
  Buffer.from([99, 130, 83, 99]),
  opt(53, Buffer.from([1])),
  opt(93, arch),
  opt(94, Buffer.from([1, 3, 16])),
  opt(97, Buffer.concat([Buffer.from([0]), crypto.randomBytes(16)])),
  ...(o.vendorClass ? [opt(60, Buffer.from(o.vendorClass))] : []),
  ...(o.userClass ? [opt(77, Buffer.from(o.userClass))] : []),
  opt(55, Buffer.from([1, 3, 6, 60, 66, 67, 175])),
  Buffer.from([255]),
]);
const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
const done = (r) => {
  process.stdout.write(`${JSON.stringify(r)}\n`);
  process.exit(0);
};
sock.on('message', (m) => {
  if (m.length < 240 || m[0] !== 2 || !m.subarray(4, 8).equals(xid)) return;
  const r = { file: m.toString('latin1', 108, 236).replace(/\0.*$/s, ''), bootfile: null, vendorClass: null, type: null };
  for (let i = 240; i < m.length && m[i] !== 255;) {
    if (m[i] === 0) {
      i++;
      continue;
    }
    const code = m[i],
      len = m[i + 1],
      v = m.subarray(i + 2, i + 2 + len);
    if (code === 53) r.type = v[0];
    if (code === 67) r.bootfile = v.toString('latin1').replace(/\0.*$/s, '');
    if (code === 60) r.vendorClass = v.toString('latin1');
    i += 2 + len;
  }
  if (r.type === 2) done(r);
});
sock.bind(68, () => {
  sock.setBroadcast(true);
  const send = () => sock.send(pkt, 67, '255.255.255.255');
  send();
  setInterval(send, 1000);
  setTimeout(() => done({ timeout: true }), o.timeoutMs ?? 8000);
});
