/**
 * The layers of kickswarm, checked on every CI run (`npm run lint`).
 * See docs/architecture.md for the picture these rules keep true.
 */
/** One forbidden import: modules matching `from` must not import modules matching `to`. */
const forbid = (name, comment, from, to) => ({ name, severity: 'error', comment, from, to });

module.exports = {
  forbidden: [
    forbid('no-cycles', 'An import cycle makes start-up order and layering unclear.', {}, { circular: true }),
    forbid('protocol-is-a-leaf', 'protocol/ holds wire formats and shared types; it imports nothing of ours above it.', { path: '^protocol/' }, { path: '^(server|node-installer|bench|test)/' }),
    forbid('server-not-installer', 'The frontend and the node installer share only protocol/.', { path: '^server/' }, { path: '^node-installer/' }),
    forbid('installer-not-server', 'The frontend and the node installer share only protocol/.', { path: '^node-installer/' }, { path: '^server/' }),
    forbid(
      'tftp-knows-no-pxe',
      'The TFTP server takes a handler(name, remote); it knows nothing of PXE, inventory or rendering.',
      { path: '^server/tftp/' },
      { path: '^server/(pxe|inventory|render|core|http|cli|cluster)/' },
    ),
    forbid('pxe-not-tftp', 'PXE config naming is independent of the transport that serves it.', { path: '^server/pxe/' }, { path: '^server/tftp/' }),
    forbid('core-not-transports', 'The decision is rendered by transports; it does not know them.', { path: '^server/core/' }, { path: '^server/(http|tftp|cli)/' }),
    forbid('cluster-not-cli', 'Orchestration is used by the CLI, not the other way round.', { path: '^server/cluster/' }, { path: '^server/cli/' }),
    forbid('only-main-wires-cli', 'Nothing below the CLI imports it, except the process entry points.', { path: '^server/', pathNot: '^server/(cli/|main\\.ts$)' }, { path: '^server/cli/' }),
    forbid('production-not-tests', 'Shipped code never imports test or bench code.', { path: '^(protocol|server|node-installer)/' }, { path: '^(test|bench)/' }),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules|packages)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
  },
};
