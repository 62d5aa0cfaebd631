/**
 * `kickswarm token create --role admin|viewer [--json]` prints a new API and
 * dashboard token once (only its hash is stored); `token list [--json]` shows
 * the stored ones; `token revoke ID` removes one. The data dir's `api-token`
 * stays an admin token and is not listed here.
 */
import { TokenStore, parseRole } from '../auth/tokens.js';
import { ensureApiToken } from '../datadir.js';
import type { CommandModule } from './context.js';
import { json, table } from './format.js';

export const tokenCommand: CommandModule = (program, ctx) => {
  const store = () => new TokenStore(ctx.dataDir().root, ensureApiToken(ctx.dataDir()));
  const token = program.command('token').description('API and dashboard tokens (roles admin, viewer)');
  token
    .command('create')
    .description('make a token; it is printed once and stored only as its SHA-256')
    .requiredOption('--role <role>', 'admin | viewer')
    .option('--json', 'print {id, role, token} as JSON')
    .action((o: { role: string; json?: boolean }) => {
      const { token: t, record } = store().create(parseRole(o.role));
      if (o.json) ctx.out(json({ id: record.id, role: record.role, createdAt: record.createdAt, token: t }));
      else ctx.out(`${t}\n(id ${record.id}, role ${record.role}; shown once: keep it now)`);
    });
  token
    .command('list')
    .description('the stored tokens (id, role, created); the data dir api-token is always admin')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => {
      const rows = store()
        .list()
        .map((t) => ({ id: t.id, role: t.role, createdAt: t.createdAt }));
      if (o.json) ctx.out(json({ tokens: rows }));
      else
        ctx.out(
          rows.length
            ? table(
                ['ID', 'ROLE', 'CREATED'],
                rows.map((r) => [r.id, r.role, r.createdAt]),
              )
            : 'no tokens besides the data dir api-token (admin)',
        );
    });
  token
    .command('revoke')
    .description('remove a token; a running server refuses it at once')
    .argument('<id>', 'token id (kickswarm token list)')
    .action((id: string) => {
      const r = store().revoke(id);
      ctx.out(`revoked token ${r.id} (role ${r.role})`);
    });
};
