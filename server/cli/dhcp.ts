/**
 * `kickswarm dhcp-config --format dnsmasq|isc` prints a DHCP server
 * configuration for the site: a fixed lease per inventory node (MAC -> IP,
 * hostname), next-server (the TFTP address) and the boot file by client
 * architecture (option 93: BIOS -> pxe.biosLoader, x86-64 UEFI -> pxe.efiLoader,
 * or iPXE's first stages with pxe.loader ipxe; UEFI HTTP boot -> the URL of
 * ipxe.efi; arm64 -> pxe.arm64Loader), and with pxe.loader ipxe the URL of
 * boot.ipxe for clients that already are iPXE (docs/pxe.md).
 */
import { InvalidInputError } from '../../protocol/errors.js';
import { DHCP_FORMATS, type DhcpFormat } from '../render/renderset.js';
import type { CommandModule } from './context.js';
import { cliRenderEnv, loadSetForCli, type RenderCliDeps } from './profile.js';

export function parseDhcpFormat(input: string): DhcpFormat {
  const s = String(input).trim().toLowerCase();
  if (!(DHCP_FORMATS as readonly string[]).includes(s)) {
    throw new InvalidInputError(`unknown DHCP config format ${JSON.stringify(String(input).slice(0, 40))} (want ${DHCP_FORMATS.join('|')})`);
  }
  return s as DhcpFormat;
}

export function makeDhcpCommand(deps: RenderCliDeps = {}): CommandModule {
  return (program, ctx) => {
    program
      .command('dhcp-config')
      .description('print a DHCP server config (dnsmasq or ISC dhcpd) for the inventory')
      .option('--format <format>', `config format (one of: ${DHCP_FORMATS.join(', ')})`, 'dnsmasq')
      .action((opts: { format: string }) => {
        const format = parseDhcpFormat(opts.format);
        const env = cliRenderEnv(ctx, deps);
        ctx.out(loadSetForCli(ctx, env).dhcp(env, format, ctx.inventory().listNodes()));
      });
  };
}

export const dhcpCommand: CommandModule = makeDhcpCommand();
