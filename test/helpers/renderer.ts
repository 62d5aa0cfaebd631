/**
 * The one fake Renderer of the tests: kickstarts `# kickstart for NAME`,
 * pxelinux configs `MODE m node NAME`; records what it rendered; can be slowed
 * down or made to throw.
 */
import type { HttpRenderer } from '../../server/http/types.js';
import type { NodeRecord } from '../../server/inventory/types.js';
import type { ProfileStatus, PxeMode, Renderer } from '../../server/render/types.js';

export class FakeRenderer implements Renderer {
  /** Kickstarts are answered this much later where the caller may wait (`http()`). */
  delayMs = 0;
  /** Every kickstart keeps the thread busy this long, as a slow synchronous render would. */
  busyMs = 0;
  /** Thrown by kickstart() and pxelinux() for the nodes in `failFor` (every node when it is empty); `(none)` names the default config. */
  failWith: Error | (() => Error) | undefined;
  readonly failFor = new Set<string>();
  /** Appended to every kickstart (e.g. a `%addon org_kickswarm` image directive). */
  appendText = '';
  /** Names of the nodes whose kickstart was rendered, in order. */
  readonly rendered: string[] = [];
  /** Every pxelinux() call. */
  readonly calls: { node: string | null; mode: PxeMode; session?: string }[] = [];

  kickstart(node: NodeRecord): string {
    this.fail(node.name);
    const until = performance.now() + this.busyMs;
    while (performance.now() < until) {
      // a synchronous render that takes busyMs
    }
    this.rendered.push(node.name);
    return `# kickstart for ${node.name}\nnetwork --ip=${node.ip}\n${this.appendText}`;
  }

  pxelinux(node: NodeRecord | null, mode: PxeMode, session?: string): string {
    this.calls.push({ node: node?.name ?? null, mode, ...(session ? { session } : {}) });
    this.fail(node?.name ?? '(none)');
    return `MODE ${mode} node ${node?.name ?? '(none)'}${session ? ` kickswarm.session=${session}` : ''}\n`;
  }

  ipxe(node: NodeRecord | null, mode: PxeMode, session?: string): string {
    return `#!ipxe\n${this.pxelinux(node, mode, session)}`;
  }

  secrets(): [] {
    return [];
  }
  dhcp(): string {
    throw new Error('not used');
  }
  attributes(): Record<string, string> {
    return {};
  }
  imageFor(): undefined {
    return undefined;
  }
  status(): ProfileStatus {
    return { ok: true, generation: 3, loadedAt: '2024-01-01T00:00:00.000Z', errors: [], profiles: ['compute'], templates: ['kickstart.hbs'] };
  }

  /** This renderer as the HTTP routes take it: a kickstart comes `delayMs` later when that is set. */
  http(): HttpRenderer {
    return {
      kickstart: (node) => {
        const text = this.kickstart(node);
        return this.delayMs > 0 ? new Promise((resolve) => setTimeout(() => resolve(text), this.delayMs)) : text;
      },
      status: () => this.status(),
    };
  }

  private fail(key: string): void {
    if (!this.failWith || (this.failFor.size > 0 && !this.failFor.has(key))) return;
    throw typeof this.failWith === 'function' ? this.failWith() : this.failWith;
  }
}
