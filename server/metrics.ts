/**
 * Prometheus metrics of one frontend (its own registry, so several frontends in
 * one process never collide). Parts receive the counters they increment; gauges
 * that mirror other parts' state are read at scrape time through `collectors`.
 */
import client from 'prom-client';

export interface SwarmSnapshot {
  image: string;
  uploadedBytes: number;
  peers: number;
}

export interface MetricsSources {
  /** Per-image seeder counters and swarm sizes. */
  swarm?: () => SwarmSnapshot[];
  /** Node counts by boot action. */
  nodesByAction?: () => Record<string, number>;
}

export class Metrics {
  readonly registry = new client.Registry();
  readonly kickstarts: client.Counter<'status'>;
  readonly imageHttpBytes: client.Counter<'image'>;
  readonly tftpRequests: client.Counter<'kind'>;
  readonly installReports: client.Counter<'state'>;
  private sources: MetricsSources = {};

  constructor() {
    const registers = [this.registry];
    const counter = <L extends string>(name: string, help: string, label: L) => new client.Counter<L>({ name, help, labelNames: [label], registers });
    this.kickstarts = counter('kickswarm_kickstarts_total', 'kickstart.cgi answers by HTTP status', 'status');
    this.imageHttpBytes = counter('kickswarm_image_http_bytes_sent_total', 'image bytes the frontend sent over plain HTTP (downloads and web seed), per image', 'image');
    this.tftpRequests = counter('kickswarm_tftp_requests_total', 'TFTP read requests by kind (config, static, refused)', 'kind');
    this.installReports = counter('kickswarm_install_reports_total', 'install progress reports received, by state', 'state');
    const sources = (): MetricsSources => this.sources;
    new client.Gauge({
      name: 'kickswarm_swarm_bytes_sent_total',
      help: 'image bytes the frontend seeder uploaded to the swarm, per image',
      labelNames: ['image'],
      registers,
      collect() {
        this.reset();
        for (const s of sources().swarm?.() ?? []) this.set({ image: s.image }, s.uploadedBytes);
      },
    });
    new client.Gauge({
      name: 'kickswarm_swarm_peers',
      help: 'peers the frontend seeder is connected to, per image',
      labelNames: ['image'],
      registers,
      collect() {
        this.reset();
        for (const s of sources().swarm?.() ?? []) this.set({ image: s.image }, s.peers);
      },
    });
    new client.Gauge({
      name: 'kickswarm_nodes',
      help: 'registered nodes by boot action',
      labelNames: ['boot_action'],
      registers,
      collect() {
        this.reset();
        for (const [action, n] of Object.entries(sources().nodesByAction?.() ?? {})) this.set({ boot_action: action }, n);
      },
    });
  }

  setSources(sources: MetricsSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  /** The text exposition format. */
  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Per-image HTTP byte counts as plain numbers (for /api/v1/swarm). */
  async httpBytesByImage(): Promise<Record<string, number>> {
    const m = await this.imageHttpBytes.get();
    return Object.fromEntries(m.values.map((v) => [String(v.labels.image), v.value]));
  }
}
