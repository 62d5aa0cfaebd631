import { expect } from 'chai';
import crypto from 'node:crypto';
import { InvalidInputError } from '../../protocol/errors.js';
import { parseKickstart, splitWords } from '../../protocol/kickstart.js';

const SHA = 'a'.repeat(64);
const GOOD = `# generated for compute-0-0
text
lang en_US.UTF-8
network --bootproto=dhcp --hostname=compute-0-0
rootpw --lock
frobnicate --now
zerombr

%packages
@core
  openssh-server
# comment
%end

%pre --interpreter=/bin/bash
echo pre
%end

%post --nochroot --erroronfail --log /tmp/post.log
echo "chroot off: $KICKSWARM_TARGET"
%post-like text is fine in a script body
%end

%post
echo in the target
%end

%addon org_kickswarm
image --name=centos-7 --sha256=${SHA} --method=multicast --target=/dev/sda --size=1048576
%end

%addon com_redhat_kdump --disable
%end
`;

describe('kickstart parser', () => {
  it('reads commands, packages, scripts and the kickswarm image directive', () => {
    const ks = parseKickstart(GOOD);
    expect(ks.commands.map((c) => c.name)).to.deep.equal(['text', 'lang', 'network', 'rootpw', 'zerombr']);
    expect(ks.commands[2]!.args).to.deep.equal(['--bootproto=dhcp', '--hostname=compute-0-0']);
    expect(ks.unknownCommands.map((c) => [c.name, c.line])).to.deep.equal([['frobnicate', 6]]);
    expect(ks.packages).to.deep.equal(['@core', 'openssh-server']);
    expect(ks.pre).to.have.length(1);
    expect(ks.pre[0]).to.include({ interpreter: '/bin/bash', nochroot: false, erroronfail: false, body: 'echo pre\n' });
    expect(ks.post.map((p) => [p.nochroot, p.erroronfail, p.log ?? null])).to.deep.equal([
      [true, true, '/tmp/post.log'],
      [false, false, null],
    ]);
    expect(ks.post[0]!.body).to.contain('%post-like text is fine');
    expect(ks.image).to.deep.include({ name: 'centos-7', sha256: SHA, method: 'multicast', target: '/dev/sda', size: 1048576 });
    expect(ks.addons).to.have.property('com_redhat_kdump');
  });

  it('defaults the method to torrent and accepts CRLF line ends', () => {
    const ks = parseKickstart('text\r\n%addon org_kickswarm\r\nimage --name=x --target=/tmp/t\r\n%end\r\n');
    expect(ks.image).to.deep.include({ name: 'x', method: 'torrent', target: '/tmp/t' });
    expect(ks.image?.sha256).to.equal(undefined);
    expect(ks.image?.verify).to.equal(undefined);
  });

  it("reads the image directive's --verify flag and refuses a value for it", () => {
    const ks = parseKickstart('%addon org_kickswarm\nimage --name=x --target=/dev/vda --verify\n%end\n');
    expect(ks.image).to.deep.include({ name: 'x', target: '/dev/vda', verify: true });
    expect(() => parseKickstart('%addon org_kickswarm\nimage --name=x --target=/dev/vda --verify=no\n%end\n')).to.throw(InvalidInputError, /line 2/);
  });

  it('splits words with quotes and escapes', () => {
    expect(splitWords(`rootpw --iscrypted '$6$a b' "x\\"y" a\\ b`, 1)).to.deep.equal(['rootpw', '--iscrypted', '$6$a b', 'x"y', 'a b']);
    expect(() => splitWords(`a 'b`, 7)).to.throw(InvalidInputError, /line 7: unterminated quote/);
  });

  const bad: [string, RegExp][] = [
    ['text\n%packages\n@core\n', /line 2: %packages has no %end/],
    ['%end\n', /line 1: %end without an open section/],
    ['%packages\n%post\n%end\n', /line 2: %post inside %packages/],
    ['%bogus\n%end\n', /line 1: unknown section/],
    ['%post --chroot\n%end\n', /line 1: unknown option --chroot/],
    ['%post --interpreter\n%end\n', /line 1: --interpreter needs a value/],
    ['%pre --nochroot\n%end\n', /line 1: %pre takes no --nochroot/],
    ['\n\n%addon org_kickswarm\nimage --name=../etc --target=/dev/sda\n%end\n', /line 4: image needs a valid --name/],
    ['%addon org_kickswarm\nimage --name=x --target=dev/sda\n%end\n', /line 2: image needs an absolute --target/],
    ['%addon org_kickswarm\nimage --name=x --target=/t --method=ftp\n%end\n', /line 2: image --method must be/],
    ['%addon org_kickswarm\nimage --name=x --target=/t --sha256=xyz\n%end\n', /line 2: image --sha256/],
    ['%addon org_kickswarm\nimage --name=x --target=/t --size=-1\n%end\n', /line 2: image --size/],
    ['%addon org_kickswarm\nimage --name=x --target=/t\nimage --name=y --target=/t\n%end\n', /line 3: only one image/],
    ['%addon org_kickswarm\nrm -rf /\n%end\n', /line 2: unknown org_kickswarm directive/],
    ['%addon\n%end\n', /line 1: %addon needs a name/],
    ['Text\n', /line 1: malformed command/],
    ['text\0\n', /NUL/],
  ];
  for (const [input, msg] of bad) {
    it(`rejects ${JSON.stringify(input.slice(0, 40))} naming the line`, () => {
      expect(() => parseKickstart(input)).to.throw(InvalidInputError, msg);
    });
  }

  it('survives random junk: either parses or throws InvalidInputError, never anything else', () => {
    const alphabet = ['%pre', '%post', '%end', '%packages', '%addon org_kickswarm', 'image --name=a --target=/x', '"', "'", '\\', '--', '=', ' ', '\n', 'text', '#', '%', 'x'];
    for (let round = 0; round < 2000; round++) {
      const n = crypto.randomInt(1, 40);
      let s = '';
      for (let k = 0; k < n; k++) s += alphabet[crypto.randomInt(alphabet.length)] + (crypto.randomInt(3) === 0 ? '\n' : ' ');
      try {
        parseKickstart(s);
      } catch (e) {
        expect(e, s).to.be.instanceOf(InvalidInputError);
      }
    }
  });

  it('refuses oversized input before parsing it', () => {
    expect(() => parseKickstart('#'.repeat(5 * 1024 * 1024))).to.throw(InvalidInputError, /larger than/);
  });
});
