/**
 * Ambient declarations for the BitTorrent packages, which ship no types. Each
 * module's value is `unknown` here on purpose: the one module that uses it casts
 * it to an interface describing exactly what kickswarm calls, so every use of an
 * untyped API is visible in one place.
 */
declare module 'webtorrent' {
  const WebTorrent: unknown;
  export default WebTorrent;
}
declare module 'bittorrent-tracker' {
  export const Server: unknown;
}
declare module 'parse-torrent' {
  const parseTorrent: unknown;
  export default parseTorrent;
}
declare module 'create-torrent' {
  const createTorrent: unknown;
  export default createTorrent;
}
declare module 'webtorrent/lib/peer.js' {
  const Peer: unknown;
  export default Peer;
}
