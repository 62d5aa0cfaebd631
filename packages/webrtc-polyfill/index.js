// WebRTC is deliberately absent: the swarm is the cluster's LAN over TCP.
export const RTCPeerConnection = undefined
export const RTCSessionDescription = undefined
export const RTCIceCandidate = undefined
export const RTCDataChannel = undefined
export const MediaStream = undefined
export default { RTCPeerConnection, RTCSessionDescription, RTCIceCandidate, RTCDataChannel, MediaStream }
