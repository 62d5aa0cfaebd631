import { expect } from 'chai';
import { parseIpv4, parseMac } from '../../protocol/node.js';
import { classifyPxeConfigName, pxeLookupOrder } from '../../server/pxe/names.js';

describe('pxelinux.cfg names', () => {
  const mac = parseMac('52:54:00:ab:cd:ef');
  const ip = parseIpv4('10.18.1.2');
  const uuid = '4c4c4544-0038-3010-8030-b4c04f4a4e31';

  it('lists PXELINUX lookup order: uuid, 01-mac, 8-digit hex IP, its 7..1 digit prefixes, default', () => {
    expect(pxeLookupOrder({ mac, ip, uuid })).to.deep.equal([uuid, '01-52-54-00-ab-cd-ef', '0A120102', '0A12010', '0A1201', '0A120', '0A12', '0A1', '0A', '0', 'default']);
  });

  it('leaves the UUID out when the firmware has none and lowercases one given in uppercase', () => {
    expect(pxeLookupOrder({ mac, ip })[0]).to.equal('01-52-54-00-ab-cd-ef');
    expect(pxeLookupOrder({ mac, ip, uuid: uuid.toUpperCase() })[0]).to.equal(uuid);
  });

  it('turns 10.18.1.2 into 0A120102 and back', () => {
    expect(classifyPxeConfigName('0A120102')).to.deep.equal({ kind: 'ip', name: '0A120102', ip: '10.18.1.2' });
    expect(classifyPxeConfigName('FFFFFFFF')).to.deep.include({ kind: 'ip', ip: '255.255.255.255' });
    expect(classifyPxeConfigName('00000000')).to.deep.include({ kind: 'ip', ip: '0.0.0.0' });
  });

  it('classifies every name of a lookup order as the kind PXELINUX meant', () => {
    const kinds = pxeLookupOrder({ mac, ip, uuid }).map((n) => classifyPxeConfigName(n).kind);
    expect(kinds).to.deep.equal(['uuid', 'mac', 'ip', 'ipPrefix', 'ipPrefix', 'ipPrefix', 'ipPrefix', 'ipPrefix', 'ipPrefix', 'ipPrefix', 'default']);
  });

  it('classifies hex prefixes of 1..7 digits with their length', () => {
    expect(classifyPxeConfigName('0A12010')).to.deep.equal({ kind: 'ipPrefix', name: '0A12010', digits: 7 });
    expect(classifyPxeConfigName('C')).to.deep.equal({ kind: 'ipPrefix', name: 'C', digits: 1 });
  });

  it('accepts an uppercase MAC name and normalises it to lowercase', () => {
    expect(classifyPxeConfigName('01-52-54-00-AB-CD-EF')).to.deep.equal({ kind: 'mac', name: '01-52-54-00-ab-cd-ef', mac });
  });

  it('accepts an uppercase UUID and normalises it to lowercase', () => {
    expect(classifyPxeConfigName(uuid.toUpperCase())).to.deep.equal({ kind: 'uuid', name: uuid, uuid });
  });

  it('recognises default only in lowercase', () => {
    expect(classifyPxeConfigName('default')).to.deep.equal({ kind: 'default', name: 'default' });
    expect(classifyPxeConfigName('DEFAULT').kind).to.equal('invalid');
  });

  for (const junk of [
    '',
    'foo',
    '0a120102',
    '0A1201020',
    '0A12010G',
    '01-52-54-00-ab-cd',
    '01-52-54-00-ab-cd-ef-01',
    '02-52-54-00-ab-cd-ef',
    '01:52:54:00:ab:cd:ef',
    '525400abcdef',
    '4c4c4544-0038-3010-8030-b4c04f4a4e3',
    '../default',
    'sub/default',
    'default ',
    ' default',
    'default\0',
    'x'.repeat(5000),
  ]) {
    it(`rejects ${JSON.stringify(junk.slice(0, 40))} as invalid with a reason`, () => {
      const c = classifyPxeConfigName(junk);
      expect(c.kind).to.equal('invalid');
      if (c.kind === 'invalid') {
        expect(c.reason).to.be.a('string').and.not.empty;
        expect(c.name.length).to.be.at.most(128);
      }
    });
  }
});
