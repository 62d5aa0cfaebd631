// Lint rules for the whole tree. Layer boundaries and import cycles are checked
// by dependency-cruiser (.dependency-cruiser.cjs); this file keeps the code style.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

// webtorrent's and bittorrent-protocol's private API is used in protocol/webtorrent-private*.ts only.
const webtorrentPrivate = ['_select', '_deselect', '_markVerified', '_checkDone', '_drain', '_update', '_updateWireWrapper', '_peers', '_onHave', '_onMessage', '_parser', '_parserSize', '_bufferSize', 'setThrottlePipes', 'throttleGroups'].map(
  (property) => ({ property, message: 'webtorrent private API: add a function to protocol/webtorrent-private.ts' }),
);

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'packages/**', 'docs/**', 'kickswarm-data/**', '.bench/**'] },
  js.configs.recommended,
  { files: ['bin/**/*.js', 'eslint.config.js', '.dependency-cruiser.cjs'], languageOptions: { globals: { process: 'readonly', module: 'writable', require: 'readonly' } } },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/ban-ts-comment': ['error', { 'ts-ignore': true, 'ts-expect-error': 'allow-with-description' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-console': 'off',
      // Input sanitisers match control characters on purpose.
      'no-control-regex': 'off',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    files: ['**/*.ts'],
    ignores: ['protocol/webtorrent-private.ts', 'protocol/webtorrent-private-receive.ts'],
    rules: { 'no-restricted-properties': ['error', ...webtorrentPrivate] },
  },
  {
    // The dashboard's own scripts run in the browser.
    files: ['server/ui/static/**/*.js'],
    languageOptions: { globals: { ...globals.browser, uPlot: 'readonly' }, sourceType: 'module' },
    rules: { '@typescript-eslint/no-unused-expressions': ['error', { allowShortCircuit: true, allowTernary: true }] },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-expressions': 'off',
      'no-restricted-properties': [
        'error',
        { object: 'describe', property: 'only', message: 'a focused test hides the rest of the suite' },
        { object: 'it', property: 'only', message: 'a focused test hides the rest of the suite' },
        ...webtorrentPrivate,
      ],
    },
  },
);
