/**
 * Skips a test whose prerequisite this machine lacks (root, loop devices,
 * network namespaces, Linux sysctls) and says why. Where every prerequisite
 * must be present (`.ci/run` sets KICKSWARM_REQUIRE_ALL_TESTS=1; CI runs as
 * root), the test fails with the reason instead, so a skip can never hide a
 * failure there.
 */
import type { Context } from 'mocha';

export function skipBecause(ctx: Context, reason: string): never {
  if (process.env.KICKSWARM_REQUIRE_ALL_TESTS === '1') throw new Error(`prerequisite missing where every test must run: ${reason}`);
  ctx.skip();
}
