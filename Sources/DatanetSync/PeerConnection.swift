import DatanetCrypto

/// An authenticated, encrypted connection to a peer over TCP: the identity-proving handshake
/// (`PeerHandshake`), then application messages (`SecureChannel`). Blocking, one thread per
/// connection; any error ends the connection.
public final class PeerConnection: @unchecked Sendable {
    /// The peer's Datanet identity, proved by its certificate.
    public let peer: PublicKey
    public let socket: TCPSocket
    private var channel: SecureChannel
    private var inbox = [[UInt8]]()

    private init(peer: PublicKey, socket: TCPSocket, channel: SecureChannel) {
        (self.peer, self.socket, self.channel) = (peer, socket, channel)
    }

    /// Runs the handshake on `socket` as `role`, presenting `identity`.
    public static func open(_ socket: TCPSocket, role: NoiseHandshake.Role, identity: SigningKey, now: UInt64,
                            maximumMessage: Int = SecureChannel.defaultMaximumMessage) throws -> PeerConnection {
        var handshake = try PeerHandshake(role: role, identity: identity, now: now)
        var frames = NoiseFrameReader()
        func next() throws -> [UInt8] {
            while true {
                if let m = frames.next() { return m }
                let bytes = try socket.receive()
                if bytes.isEmpty { throw SocketError(operation: "handshake with", address: socket.address, errno: 0) }
                frames.append(bytes)
            }
        }
        while !handshake.isComplete {
            if handshake.isMyTurn {
                try socket.send(try NoiseFrameReader.frame(try handshake.write()))
            } else {
                try handshake.read(try next())
            }
        }
        guard let peer = handshake.peer else { throw NoiseError.outOfTurn }
        let connection = PeerConnection(peer: peer, socket: socket, channel: try handshake.channel(maximumMessage: maximumMessage))
        // Application messages the peer sent right after its last handshake message.
        connection.inbox = try connection.channel.receive(frames.takeRemaining())
        return connection
    }

    public func send(_ message: [UInt8]) throws {
        try socket.send(try channel.seal(message))
    }

    /// The next application message; the end of the stream before one is an error.
    public func receive() throws -> [UInt8] {
        while inbox.isEmpty {
            let bytes = try socket.receive()
            if bytes.isEmpty { throw SocketError(operation: "receive from", address: socket.address, errno: 0) }
            inbox = try channel.receive(bytes)
        }
        return inbox.removeFirst()
    }
}
