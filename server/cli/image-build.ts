/** `kickswarm image build`: placeholder replaced below. */
import type { Command } from 'commander';
import type { ImageMeta } from '../images/store.js';
import type { CliContext } from './context.js';

export function registerImageBuild(_image: Command, _ctx: CliContext, _add: (ctx: CliContext, file: string, name: string) => Promise<ImageMeta>): void {}
