/**
 * Who may download an image (`/install/images/NAME[.torrent]`): with install
 * sessions on, a node presenting its live session token from its registered
 * IP, for the image its assignment names (a capturing node may only ask
 * whether a name is taken, with HEAD). With sessions off, a request that
 * presents a token is still checked; one without is served as before. A
 * request the admin token or `images.public` let in needs no session.
 */
import type { Context } from 'koa';
import { refusalError } from '../core/assignment.js';
import type { BootPolicy } from '../core/boot.js';
import { remoteIp } from './requester.js';
import { presentedSession } from './session.js';

export function imageAuthorizer(policy: BootPolicy): (ctx: Context, name: string) => void {
  return (ctx, name) => {
    const session = presentedSession(ctx);
    if (!policy.sessionsRequired && session === undefined) return;
    // The admin token, or images.public, lets a caller in without a node's session.
    if (ctx.state.trustedCaller === true && session === undefined) return;
    const a = policy.decide({ purpose: 'image', source: remoteIp(ctx), session, image: name, headOnly: ctx.method === 'HEAD', via: 'image' });
    if (a.kind === 'refused') throw refusalError(a, `image ${name}`);
  };
}
