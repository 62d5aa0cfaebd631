/** Per-image transfer counters the proxy keeps (the installer reports them to the frontend). */
export interface ImageStats {
  name: string;
  /** Info-hash of the torrent last used for this image (absent when the image had none). */
  infoHash?: string;
  /** Image size in bytes, once known. */
  length?: number;
  /** Piece payload bytes received from peers (the frontend's seeder counts as a peer). */
  fromPeers: number;
  /** Bytes received over plain HTTP from the frontend: verified fallback pieces and torrent-less transfers. */
  fromWebSeed: number;
  /** Piece payload bytes this node uploaded to other peers. */
  uploadedToPeers: number;
  /** Bytes returned to local HTTP clients. */
  served: number;
  /** Local GET/HEAD requests for the image. */
  requests: number;
  /** Times the image's torrent was added to the swarm client (1 while requests share it). */
  joins: number;
  /** Times it left the swarm when its linger ran out (`joins - leaves` is 1 while it is in the swarm). */
  leaves: number;
  /** Pieces from peers that failed their hash. */
  hashFailures: number;
  /** Peer ids banned for sending bad data. */
  bannedPeers: string[];
  /** Why the swarm was bypassed, oldest first (empty when it never was). */
  fallbacks: string[];
  /** True once every piece is verified locally. */
  complete: boolean;
}

export function emptyStats(name: string): ImageStats {
  return {
    name,
    fromPeers: 0,
    fromWebSeed: 0,
    uploadedToPeers: 0,
    served: 0,
    requests: 0,
    joins: 0,
    leaves: 0,
    hashFailures: 0,
    bannedPeers: [],
    fallbacks: [],
    complete: false,
  };
}
