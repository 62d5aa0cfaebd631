import { expect } from 'chai';
import { intToIpv4, ipFromSocketAddress, ipv4ToHex, macToPxeName, parseAttrAssignment, parseBootAction, parseIpv4, parseMac, parseNodeName, parseSimpleName, parseUuid } from '../../protocol/node.js';
import { InvalidInputError } from '../../protocol/errors.js';

describe('protocol/node parsing', () => {
  it('normalises every common MAC spelling to lowercase colon form', () => {
    for (const m of ['52:54:00:AB:cd:01', '52-54-00-ab-CD-01', '5254.00ab.cd01', '525400ABCD01', '  52:54:00:ab:cd:01 ']) {
      expect(parseMac(m)).to.equal('52:54:00:ab:cd:01');
    }
  });

  it('rejects malformed MACs with a one-line message', () => {
    for (const m of ['', '52:54:00:ab:cd', '52:54:00:ab:cd:01:02', '52:54-00:ab:cd:01', 'zz:54:00:ab:cd:01', '52:54:00:ab:cd:1', 'x'.repeat(5000)]) {
      expect(() => parseMac(m), m.slice(0, 20)).to.throw(InvalidInputError, /malformed MAC/);
    }
    expect(() => parseMac('x'.repeat(5000)))
      .to.throw()
      .with.property('message')
      .that.has.length.below(200);
  });

  it('accepts strict dotted quads only', () => {
    expect(parseIpv4('10.18.1.2')).to.equal('10.18.1.2');
    expect(parseIpv4('0.0.0.0')).to.equal('0.0.0.0');
    for (const ip of ['10.18.1', '10.18.1.256', '010.1.1.1', '10.1.1.1.1', '1e1.1.1.1', '', ' . . . ', '::1']) {
      expect(() => parseIpv4(ip), ip).to.throw(InvalidInputError, /malformed IPv4/);
    }
  });

  it('strips the IPv4-mapped prefix from socket addresses', () => {
    expect(ipFromSocketAddress('::ffff:127.0.1.5')).to.equal('127.0.1.5');
    expect(ipFromSocketAddress('127.0.0.1')).to.equal('127.0.0.1');
    expect(ipFromSocketAddress('::1')).to.equal(undefined);
    expect(ipFromSocketAddress(undefined)).to.equal(undefined);
  });

  it('names IPs and MACs as PXELINUX does', () => {
    expect(ipv4ToHex(parseIpv4('10.18.1.2'))).to.equal('0A120102');
    expect(ipv4ToHex(parseIpv4('192.168.0.254'))).to.equal('C0A800FE');
    expect(ipv4ToHex(parseIpv4('0.0.0.1'))).to.equal('00000001');
    expect(macToPxeName(parseMac('00:21:9B:92:1D:33'))).to.equal('01-00-21-9b-92-1d-33');
  });

  it('round-trips IPs through integers', () => {
    expect(intToIpv4(0x0a120102)).to.equal('10.18.1.2');
    expect(() => intToIpv4(2 ** 32)).to.throw(InvalidInputError);
  });

  it('accepts DNS-label node names and rejects the rest', () => {
    expect(parseNodeName('compute-0-0')).to.equal('compute-0-0');
    for (const n of ['', 'Compute-0-0', '-a', 'a-', 'a_b', 'a.b', 'a/b', '../x', 'x'.repeat(64)]) {
      expect(() => parseNodeName(n), n).to.throw(InvalidInputError, /malformed node name/);
    }
  });

  it('rejects path tricks in simple names', () => {
    expect(parseSimpleName('centos-7.9_base')).to.equal('centos-7.9_base');
    for (const n of ['', '.hidden', 'a/b', 'a\\b', '..', 'a..b', 'a b']) {
      expect(() => parseSimpleName(n, 'image name'), n).to.throw(InvalidInputError, /image name/);
    }
  });

  it('parses boot actions, UUIDs and attributes', () => {
    expect(parseBootAction('INSTALL')).to.equal('install');
    expect(() => parseBootAction('reboot')).to.throw(InvalidInputError, /install\|os\|capture/);
    expect(parseUuid('4C4C4544-0038-3010-8030-B4C04F4A4E31')).to.equal('4c4c4544-0038-3010-8030-b4c04f4a4e31');
    expect(() => parseUuid('4c4c4544')).to.throw(InvalidInputError);
    expect(parseAttrAssignment('ipmi.host=10.2.0.1')).to.deep.equal(['ipmi.host', '10.2.0.1']);
    expect(parseAttrAssignment('k=a=b')).to.deep.equal(['k', 'a=b']);
    for (const a of ['=v', 'novalue', '1k=v', 'a..b=v']) expect(() => parseAttrAssignment(a), a).to.throw(InvalidInputError);
  });
});
