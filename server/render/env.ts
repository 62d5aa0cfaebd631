/** Builds the RenderEnv (frontend facts for templates) from the validated config. */
import type { Config } from '../config/schema.js';
import type { RenderEnv } from './types.js';

export interface RenderEnvOptions {
  /** The URL nodes use for this frontend (see `frontendUrl()` in server/config/load.ts). */
  frontendUrl: string;
  /** The address nodes use for TFTP, the DHCP next-server (see `advertiseAddress()`). */
  tftpServer: string;
  /** Image store lookup for the kickstart's `%addon org_kickswarm` directive. */
  image?: RenderEnv['image'];
}

/** Global attributes come from `cfg.attributes`; pxe and dhcp from their config sections. */
export function renderEnvFromConfig(cfg: Config, opts: RenderEnvOptions): RenderEnv {
  const env: RenderEnv = {
    frontendUrl: opts.frontendUrl.replace(/\/+$/, ''),
    tftpServer: opts.tftpServer,
    pxe: { ...cfg.pxe },
    dhcp: {
      netmask: cfg.dhcp.netmask,
      dnsServers: [...cfg.dhcp.dnsServers],
      domain: cfg.dhcp.domain,
      leaseSeconds: cfg.dhcp.leaseSeconds,
      ...(cfg.dhcp.subnet !== undefined ? { subnet: cfg.dhcp.subnet } : {}),
      ...(cfg.dhcp.router !== undefined ? { router: cfg.dhcp.router } : {}),
    },
    globals: { ...cfg.attributes },
  };
  if (opts.image) env.image = opts.image;
  return env;
}
