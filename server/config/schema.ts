/**
 * The frontend's configuration: every field has an embedded default, so
 * `kickswarm serve` runs with no file at all. Sources, later wins: defaults <
 * `<data-dir>/kickswarm.yaml` (or `--config FILE`) < `KICKSWARM_*` environment <
 * command-line flags.
 */
import os from 'node:os';
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);

/** multicast.blockSize: DATA payload bytes per datagram (1400 fits a 1500-byte MTU, 8900 a 9000-byte one). */
export const MULTICAST_BLOCK_SIZE = { min: 512, max: 8900, default: 1400 } as const;

export const ConfigSchema = z
  .object({
    /** Address the HTTP and TFTP servers bind. */
    listen: z.string().default('0.0.0.0'),
    httpPort: port.default(8080),
    /**
     * Connections the kernel keeps waiting to be accepted on the HTTP port
     * (listen backlog; Linux caps it at net.core.somaxconn). Beyond it,
     * connection attempts are dropped and retried by the client 1-7 s later.
     */
    httpBacklog: z.number().int().min(1).max(65535).default(4096),
    /** 69 on a real site; 6969 so a newcomer can run without root. */
    tftpPort: port.default(6969),
    /** Static boot files (pxelinux.0, ldlinux.c32, kernels). Default `<data-dir>/tftpboot`. */
    tftpRoot: z.string().optional(),
    /**
     * Receive buffer (SO_RCVBUF) of the TFTP listening socket, bytes; 0 keeps
     * the system default. Room for the first requests of every node booting
     * at once; the kernel caps it at net.core.rmem_max (docs/pxe.md).
     */
    tftpRecvBufferBytes: z
      .number()
      .int()
      .min(0)
      .max(1024 * 1024 * 1024)
      .default(4 * 1024 * 1024),
    /** TFTP transfers open at once in all (one socket each); beyond it requests go unanswered and clients resend them. */
    tftpMaxTransfers: z.number().int().min(1).max(60_000).default(1000),
    /** TFTP transfers open at once from one client address; beyond it: TFTP error 0 "Too many transfers from this address". */
    tftpMaxTransfersPerClient: z.number().int().min(1).max(60_000).default(8),
    /**
     * The URL nodes use to reach this frontend, e.g. `http://10.1.1.1:8080`.
     * Default: `http://<advertiseAddress>:<httpPort>`.
     */
    frontendUrl: z.string().url().optional(),
    /** The address nodes reach; default: `listen` unless it is 0.0.0.0, else the first non-internal IPv4. */
    advertiseAddress: z.string().optional(),
    kickstart: z
      .object({
        /**
         * kickstart.cgi requests open at once (arrival to response written)
         * beyond which it answers 503 (ROCKS: 2 x CPUs). Renders are
         * synchronous, so this only fills with clients that do not take their answer.
         */
        maxInFlight: z
          .number()
          .int()
          .min(1)
          .default(Math.max(2, 2 * os.cpus().length)),
        /**
         * kickstart.cgi answers 503 while the median event-loop delay over the
         * last half second is above this many milliseconds: the one thread is
         * overloaded and everything it serves waits that long (server/http/limiter.ts).
         */
        maxLoopDelayMs: z.number().positive().max(60_000).default(100),
        /** Seconds sent in Retry-After with a 503. */
        retryAfterSeconds: z.number().int().min(1).default(15),
      })
      .prefault({}),
    pxe: z
      .object({
        /** Kernel and initrd paths, relative to the TFTP root, for the install and capture environments. */
        kernel: z.string().default('kickswarm/vmlinuz'),
        initrd: z.string().default('kickswarm/initrd.img'),
        /** Extra kernel arguments for every network boot. */
        append: z.string().default(''),
        biosLoader: z.string().default('pxelinux.0'),
        efiLoader: z.string().default('syslinux.efi'),
        /**
         * Kernel and initrd over HTTP (`GET /install/boot/PATH`) instead of TFTP:
         * pxelinux configs name `<frontendUrl>/install/boot/<pxe.kernel>`, and DHCP
         * hands BIOS clients `lpxelinux.0` (which speaks HTTP) instead of `pxelinux.0`.
         */
        bootOverHttp: z.boolean().default(false),
        /**
         * The first-stage loader DHCP hands BIOS and UEFI clients: `pxelinux`
         * (biosLoader / efiLoader) or `ipxe` (ipxeBiosLoader / ipxeEfiLoader),
         * whose second DHCP request (user-class `iPXE`) then gets the URL of
         * `/install/sbin/boot.ipxe` (docs/pxe.md).
         */
        loader: z.enum(['pxelinux', 'ipxe']).default('pxelinux'),
        ipxeBiosLoader: z.string().default('undionly.kpxe'),
        ipxeEfiLoader: z.string().default('snponly.efi'),
        /** The loader for arm64 UEFI clients (option 93 = 11, HTTP boot 19); unset: arm64 clients get no boot file. */
        arm64Loader: z.string().optional(),
      })
      .prefault({}),
    dhcp: z
      .object({
        /** Subnet served; default: the /24 around the advertised address. */
        subnet: z.string().optional(),
        netmask: z.string().default('255.255.255.0'),
        router: z.string().optional(),
        dnsServers: z.array(z.string()).default([]),
        domain: z.string().default('local'),
        leaseSeconds: z.number().int().min(60).default(86400),
      })
      .prefault({}),
    /** Serve-time discovery (insert-ethers), same as running `kickswarm discover`. */
    discovery: z
      .object({
        appliance: z.string(),
        rack: z.number().int().min(0).default(0),
        firstIp: z.string().optional(),
        /** Discovered nodes get their kickstart at once instead of waiting for `kickswarm node approve`. */
        autoApprove: z.boolean().default(false),
        /** Most nodes awaiting approval at once (with autoApprove: most nodes registered). */
        maxPending: z.number().int().min(1).max(100_000).default(64),
        /** Most registrations a minute. */
        perMinute: z.number().int().min(1).max(100_000).default(30),
      })
      .optional(),
    /** HTTP connection limits and timeouts (docs/security.md). */
    http: z
      .object({
        /** Time for a client to send a request's headers. */
        headersTimeoutMs: z.number().int().min(1000).default(20_000),
        /** Time for a client to send a whole request body (capture uploads excepted: they have an idle timeout). */
        bodyTimeoutMs: z.number().int().min(1000).default(60_000),
        /** An idle kept-alive connection is closed after this. */
        keepAliveTimeoutMs: z.number().int().min(100).default(5_000),
        /** A connection on which nothing moves either way for this long is closed. */
        idleTimeoutMs: z.number().int().min(1000).default(120_000),
        /** Open connections at most; beyond it new ones are closed at once. */
        maxConnections: z.number().int().min(1).default(4096),
        /** Open connections from one source address at most. */
        maxConnectionsPerIp: z.number().int().min(1).default(64),
      })
      .prefault({}),
    /** `GET /install/images/*`: `public: true` serves anyone; default only registered nodes and the admin token. */
    images: z.object({ public: z.boolean().default(false) }).prefault({}),
    /** `GET /metrics`: `public: true` serves anyone; default only the admin token. */
    metrics: z.object({ public: z.boolean().default(false) }).prefault({}),
    /** OMF scripts (`/pxe/*`) may use this token instead of the admin token. */
    omf: z.object({ token: z.string().min(16).optional() }).prefault({}),
    swarm: z
      .object({
        /** Upload cap of the frontend's seeder for all images together, bytes/s (unset: no cap). */
        uploadLimitBytes: z.number().int().positive().optional(),
        /** TCP port the frontend's seeder listens on for peers (0: any free port). */
        peerPort: port.default(0),
        /**
         * Who may join an image's swarm through the tracker: `nodes` (registered
         * node addresses and the frontend's own) or `any` address.
         */
        announceFrom: z.enum(['nodes', 'any']).default('nodes'),
        /** Peers per swarm; newcomers beyond it are refused (no peer is evicted for them). */
        maxPeers: z.number().int().min(1).max(100_000).default(1000),
        /** Peers (ip:port) per source address in one swarm. */
        maxPeersPerAddress: z.number().int().min(1).max(1000).default(4),
      })
      .prefault({}),
    multicast: z
      .object({
        /** Groups handed to sessions, `FIRST-LAST` (two images never share a group:port). */
        groupPool: z.string().default('239.255.77.1-239.255.77.254'),
        /** UDP ports handed to sessions, `FIRST-LAST`. */
        portPool: z.string().default('7700-7799'),
        /** Address of the cluster-facing interface (default: the advertised address). */
        interface: z.string().optional(),
        ttl: z.number().int().min(1).max(255).default(1),
        /** Send-rate cap per session, bytes/s (default about 80% of 1 GbE). */
        rateBytesPerSec: z.number().int().positive().default(100_000_000),
        minRateBytesPerSec: z.number().int().positive().default(1_000_000),
        /** DATA payload bytes per datagram (fits a 1500-byte MTU). */
        blockSize: z.number().int().min(MULTICAST_BLOCK_SIZE.min).max(MULTICAST_BLOCK_SIZE.max).default(MULTICAST_BLOCK_SIZE.default),
        /** A session with no receivers and nothing to send ends after this. */
        idleTimeoutSeconds: z.number().int().min(1).default(300),
      })
      .prefault({}),
    /** Install sessions (docs/security.md "Install sessions"). */
    sessions: z
      .object({
        /**
         * kickstart.cgi, report.cgi, setPxeboot.cgi and image downloads need
         * the node's session token. false: they identify the node by its
         * source IP (anaconda without kickswarm-install); capture.cgi and
         * secrets.cgi still need a token.
         */
        enabled: z.boolean().default(true),
        /** Lifetime of a session from the boot action change that opened it. */
        ttlSeconds: z
          .number()
          .int()
          .min(60)
          .max(30 * 86400)
          .default(6 * 3600),
      })
      .prefault({}),
    capture: z
      .object({
        /** Largest capture upload accepted, bytes. */
        maxUploadBytes: z
          .number()
          .int()
          .positive()
          .default(64 * 1024 ** 3),
        /** Capture uploads received at once; more are answered 503. */
        maxConcurrentUploads: z.number().int().min(1).max(64).default(2),
      })
      .prefault({}),
    /** Global attribute defaults (lowest precedence, below profiles and node attributes). */
    attributes: z.record(z.string(), z.string()).default({}),
    /** How long a node may go without a progress report before `status` calls it stalled. */
    stalledAfterSeconds: z.number().int().min(1).default(120),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** `json` lines, human `pretty` lines, or `auto`: pretty on a terminal, else JSON. */
    logFormat: z.enum(['auto', 'json', 'pretty']).default('auto'),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
