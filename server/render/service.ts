/**
 * ProfileService: the Renderer the frontend serves from. It loads the data
 * dir's `profiles/` and `templates/`, watches both, and reloads after edits
 * settle. A broken edit never reaches a node: the last good set keeps serving
 * while the problems (file, line, message) are logged and shown in `status()`.
 */
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { TemplateError } from '../../protocol/errors.js';
import type { SecretFile } from '../../protocol/session.js';
import type { NodeRecord } from '../inventory/types.js';
import type { Logger } from '../log.js';
import { loadRenderSet, type RenderSet } from './renderset.js';
import type { ProfileStatus, PxeMode, RenderEnv, Renderer, TemplateProblem } from './types.js';

export interface ProfileServiceOptions {
  /** The data dir root, holding `profiles/` and `templates/`. */
  dataDir: string;
  env: RenderEnv;
  log: Logger;
  /** Quiet time after the last file event before reloading (default 200 ms). */
  debounceMs?: number;
  /** Watch the folders (default true). */
  watch?: boolean;
}

export class ProfileService implements Renderer {
  private readonly root: string;
  private readonly log: Logger;
  private readonly debounceMs: number;
  private readonly watchFiles: boolean;
  private env: RenderEnv;
  private current: RenderSet | null = null;
  private generation = 0;
  private loadedAt = '';
  private errors: TemplateProblem[] = [];
  private names: { profiles: string[]; templates: string[] } = { profiles: [], templates: [] };
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(opts: ProfileServiceOptions) {
    this.root = path.resolve(opts.dataDir);
    this.env = opts.env;
    this.log = opts.log.child({ subsystem: 'render' });
    this.debounceMs = opts.debounceMs ?? 200;
    this.watchFiles = opts.watch ?? true;
  }

  /** Loads the set (a broken set leaves `status().ok` false) and starts watching. */
  async start(): Promise<void> {
    this.reload();
    if (!this.watchFiles || this.closed) return;
    const w = watch([path.join(this.root, 'profiles'), path.join(this.root, 'templates')], {
      ignoreInitial: true,
      awaitWriteFinish: false,
    });
    this.watcher = w;
    w.on('all', () => this.schedule());
    w.on('error', (e) => this.log.warn({ err: e }, 'profile watcher error'));
    await new Promise<void>((resolve) => w.once('ready', () => resolve()));
  }

  /** Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const w = this.watcher;
    this.watcher = null;
    if (w) await w.close();
  }

  /**
   * Loads the files on disk now. A good set replaces the served one; a broken
   * one is logged and kept out (the last good set keeps serving). Returns the status.
   */
  reload(): ProfileStatus {
    const res = loadRenderSet(this.root, this.env);
    if (res.set || !this.current) this.names = { profiles: res.profiles, templates: res.templates };
    if (res.set) {
      this.current = res.set;
      this.generation++;
      this.loadedAt = new Date().toISOString();
      const wasBroken = this.errors.length > 0;
      this.errors = [];
      this.log.info({ generation: this.generation, profiles: res.profiles.length, templates: res.templates.length }, wasBroken ? 'profiles fixed and reloaded' : 'profiles loaded');
    } else {
      this.errors = res.problems;
      for (const p of res.problems) this.log.warn({ file: p.file, line: p.line }, `profile problem: ${p.message}`);
      this.log.warn(
        { problems: res.problems.length, generation: this.generation },
        this.current ? 'profiles not reloaded: the last good set keeps serving' : 'no usable profile set: renders fail until the problems are fixed',
      );
    }
    return this.status();
  }

  /** Replaces the frontend facts (e.g. once the HTTP port is bound); takes effect on the next render. */
  setEnv(env: RenderEnv): void {
    this.env = env;
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.closed) return;
      try {
        this.reload();
      } catch (e) {
        this.log.warn({ err: e }, 'profile reload failed');
      }
    }, this.debounceMs);
  }

  private set(): RenderSet {
    if (this.current) return this.current;
    const first = this.errors[0];
    throw new TemplateError(first?.file ?? 'profiles', first?.line, `no usable profile set (${first?.message ?? 'not loaded; call start()'})`);
  }

  kickstart(node: NodeRecord): string {
    return this.set().kickstart(this.env, node);
  }

  pxelinux(node: NodeRecord | null, mode: PxeMode, session?: string): string {
    return this.set().pxelinux(this.env, node, mode, session);
  }

  ipxe(node: NodeRecord | null, mode: PxeMode, session?: string): string {
    return this.set().ipxe(this.env, node, mode, session);
  }

  dhcp(format: 'dnsmasq' | 'isc', nodes: NodeRecord[]): string {
    return this.set().dhcp(this.env, format, nodes);
  }

  attributes(node: NodeRecord): Record<string, string> {
    return this.set().attributes(this.env, node);
  }

  imageFor(node: NodeRecord): { name: string; method: string } | undefined {
    return this.set().imageFor(this.env, node);
  }

  secrets(node: NodeRecord): SecretFile[] {
    return this.set().secrets(node);
  }

  /** The profile and template a node renders with (NotFoundError when its appliance has no profile). */
  describe(node: NodeRecord): { profile: string; template: string; chain: string[] } {
    const p = this.set().profileFor(node);
    return { profile: p.name, template: p.template, chain: [...p.chain] };
  }

  /** The frontend facts renders use now (for renders of an edited copy of the files). */
  renderEnv(): RenderEnv {
    return this.env;
  }

  status(): ProfileStatus {
    return {
      ok: this.current !== null && this.errors.length === 0,
      generation: this.generation,
      loadedAt: this.loadedAt,
      errors: this.errors.map((e) => ({ ...e })),
      profiles: [...this.names.profiles],
      templates: [...this.names.templates],
    };
  }
}
