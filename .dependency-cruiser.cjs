/**
 * The layers of kickswarm, checked on every CI run (`npm run lint`).
 * See docs/architecture.md for the picture these rules keep true.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'An import cycle makes start-up order and layering unclear.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'protocol-is-a-leaf',
      severity: 'error',
      comment: 'protocol/ holds wire formats and shared types; it imports nothing of ours above it.',
      from: { path: '^protocol/' },
      to: { path: '^(server|node-installer|bench|test)/' },
    },
    {
      name: 'server-not-installer',
      severity: 'error',
      comment: 'The frontend and the node installer share only protocol/.',
      from: { path: '^server/' },
      to: { path: '^node-installer/' },
    },
    {
      name: 'installer-not-server',
      severity: 'error',
      comment: 'The frontend and the node installer share only protocol/.',
      from: { path: '^node-installer/' },
      to: { path: '^server/' },
    },
    {
      name: 'tftp-knows-no-pxe',
      severity: 'error',
      comment: 'The TFTP server takes a handler(name, remote); it knows nothing of PXE, inventory or rendering.',
      from: { path: '^server/tftp/' },
      to: { path: '^server/(pxe|inventory|render|core|http|cli|cluster)/' },
    },
    {
      name: 'pxe-not-tftp',
      severity: 'error',
      comment: 'PXE config naming is independent of the transport that serves it.',
      from: { path: '^server/pxe/' },
      to: { path: '^server/tftp/' },
    },
    {
      name: 'core-not-transports',
      severity: 'error',
      comment: 'The decision is rendered by transports; it does not know them.',
      from: { path: '^server/core/' },
      to: { path: '^server/(http|tftp|cli)/' },
    },
    {
      name: 'cluster-not-cli',
      severity: 'error',
      comment: 'Orchestration is used by the CLI, not the other way round.',
      from: { path: '^server/cluster/' },
      to: { path: '^server/cli/' },
    },
    {
      name: 'only-main-wires-cli',
      severity: 'error',
      comment: 'Nothing below the CLI imports it, except the process entry points.',
      from: { path: '^server/', pathNot: '^server/(cli/|main\\.ts$)' },
      to: { path: '^server/cli/' },
    },
    {
      name: 'production-not-tests',
      severity: 'error',
      comment: 'Shipped code never imports test or bench code.',
      from: { path: '^(protocol|server|node-installer)/' },
      to: { path: '^(test|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules|packages)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
  },
};
