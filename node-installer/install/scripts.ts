/**
 * Runs kickstart `%pre` and `%post` scripts. A chrooted `%post` runs inside the
 * installed root filesystem (`root`); `%pre` and `--nochroot` scripts run on the
 * installer with `KICKSWARM_TARGET` (the target disk or file), `KICKSWARM_ROOT`
 * (the mounted root, when there is one), `KICKSWARM_NODE`/`KICKSWARM_FRONTEND`
 * and, in an install session, `KICKSWARM_SESSION` in the environment. Output goes to the installer's log and, with `--log`, to
 * that file. A script that fails fails the install only with `--erroronfail`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KickstartScript } from '../../protocol/kickstart.js';
import { KickswarmError } from '../../protocol/errors.js';
import type { Logger } from '../log.js';

export class ScriptError extends KickswarmError {
  constructor(message: string) {
    super('internal', message);
  }
}

export interface ScriptEnv {
  target: string;
  root?: string;
  node?: string;
  frontend: string;
  /** The install session token (KICKSWARM_SESSION), for scripts that call the frontend. */
  session?: string;
}

export interface ScriptResult {
  exitCode: number;
  skipped?: string;
}

function scriptTag(s: KickstartScript): string {
  return `%${s.kind}${s.nochroot ? ' --nochroot' : ''} (kickstart line ${s.line})`;
}

/** Runs one script; resolves with its exit code, or throws ScriptError when it fails with `--erroronfail`. */
export async function runScript(s: KickstartScript, env: ScriptEnv, log: Logger, timeoutMs = 30 * 60_000): Promise<ScriptResult> {
  const chrooted = s.kind === 'post' && !s.nochroot;
  if (chrooted && !env.root) {
    const why = 'the target holds no mountable root filesystem';
    if (s.erroronfail) throw new ScriptError(`${scriptTag(s)} needs the installed root: ${why}`);
    log.warn({ script: scriptTag(s) }, `skipped: ${why}`);
    return { exitCode: 0, skipped: why };
  }
  const dir = chrooted ? path.join(env.root!, 'tmp') : os.tmpdir();
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `ks-script-${process.pid}-${s.line}`);
  fs.writeFileSync(file, s.body, { mode: 0o700 });
  const inside = chrooted ? '/' + path.relative(env.root!, file) : file;
  const [cmd, args] = chrooted ? ['chroot', [env.root!, s.interpreter, inside]] : [s.interpreter, [file]];
  const childEnv = {
    ...process.env,
    KICKSWARM_TARGET: env.target,
    KICKSWARM_FRONTEND: env.frontend,
    ...(env.root ? { KICKSWARM_ROOT: env.root } : {}),
    ...(env.node ? { KICKSWARM_NODE: env.node } : {}),
    ...(env.session ? { KICKSWARM_SESSION: env.session } : {}),
  };
  const logFile = s.log ? (chrooted ? path.join(env.root!, s.log) : s.log) : undefined;
  const out = logFile ? fs.createWriteStream(logFile, { flags: 'a' }) : undefined;
  try {
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn(cmd, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const onData = (stream: string) => (b: Buffer) => {
        out?.write(b);
        for (const line of b.toString('utf8').split('\n')) if (line) log.info({ script: scriptTag(s), stream }, line);
      };
      child.stdout.on('data', onData('stdout'));
      child.stderr.on('data', onData('stderr'));
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new ScriptError(`${scriptTag(s)}: cannot start ${cmd}: ${e.message}`));
      });
      child.on('close', (c, sig) => {
        clearTimeout(timer);
        resolve(c ?? (sig ? 128 : 1));
      });
    });
    if (code !== 0) {
      if (s.erroronfail) throw new ScriptError(`${scriptTag(s)} failed with exit code ${code}`);
      log.warn({ script: scriptTag(s), exitCode: code }, 'script failed (no --erroronfail: going on)');
    }
    return { exitCode: code };
  } finally {
    out?.end();
    fs.rmSync(file, { force: true });
  }
}
