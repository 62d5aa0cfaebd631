import { expect } from 'chai';
import { classifySample, parsePerfLine, perfShares } from '../../bench/lib/perf-shares.js';

describe('bench/perf-shares', () => {
  it('classifies samples by symbol and object', () => {
    expect(classifySample('tcp_v4_rcv', '[kernel.kallsyms]')).to.equal('kernel: network');
    expect(classifySample('handle_softirqs', '[kernel.kallsyms]')).to.equal('kernel: network');
    expect(classifySample('clear_page_erms', '[kernel.kallsyms]')).to.equal('kernel: scheduling, memory, other');
    expect(classifySample('v8::internal::compiler::GraphReducer::ReduceTop', 'node')).to.equal('V8 compiler and parser');
    expect(classifySample('v8::internal::ConcurrentMarking::RunMajor', 'node')).to.equal('V8 collector');
    expect(classifySample('sha1_block_data_order_shaext', 'node')).to.equal('SHA-1 / SHA-256');
    expect(classifySample('Builtins_LoadIC', 'node')).to.equal('JavaScript, V8 builtins and runtime');
    expect(classifySample('JS:*trySelectWire file:///x.mjs:1:2', 'perf-4242.map')).to.equal('JavaScript, V8 builtins and runtime');
    expect(classifySample('_int_malloc', 'libc.so.6')).to.equal('libc, Node.js, libuv');
    expect(classifySample('node::StringBytes::Write', 'node')).to.equal('libc, Node.js, libuv');
    expect(classifySample('inflate_fast', 'libz.so.1')).to.equal('other');
  });

  it('counts only the given processes, and refuses lines it cannot read', () => {
    const lines = [
      '  101/101           13bc61c Builtins_LoadIC (/usr/bin/node)',
      '  101/105  ffffffff813aeb13 tcp_ack ([kernel.kallsyms])',
      '  101/101      7f37838560 JS:*f file:///a.mjs:1:1 (/tmp/perf-101.map)',
      '  202/202           13bc61c Builtins_LoadIC (/usr/bin/node)',
      'not a sample line',
      '',
    ];
    expect(parsePerfLine(lines[1]!)).to.deep.equal({ pid: 101, sym: 'tcp_ack', dso: '[kernel.kallsyms]' });
    expect(parsePerfLine('not a sample line')).to.equal(undefined);
    const r = perfShares(lines, new Set([101]));
    expect(r.samples).to.equal(3);
    const share = Object.fromEntries(r.classes.map((c) => [c.class, c.samples]));
    expect(share['JavaScript, V8 builtins and runtime']).to.equal(2);
    expect(share['kernel: network']).to.equal(1);
    expect(r.classes.reduce((a, c) => a + c.share, 0)).to.be.closeTo(100, 0.2);
  });
});
