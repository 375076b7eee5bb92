import DatanetCrypto
import Dispatch
import Glibc

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

    /// Runs the handshake on `socket` as `role`, presenting `identity`. With `deadline`, the
    /// whole handshake must finish within that many seconds (a server's bound on a peer that
    /// trickles bytes to hold a handshake slot); the socket's own timeout applies after.
    public static func open(_ socket: TCPSocket, role: NoiseHandshake.Role, identity: SigningKey, now: UInt64,
                            maximumMessage: Int = SecureChannel.defaultMaximumMessage, deadline: Int? = nil) throws -> PeerConnection {
        var handshake = try PeerHandshake(role: role, identity: identity, now: now)
        var frames = NoiseFrameReader()
        let start = DispatchTime.now().uptimeNanoseconds
        if let deadline { socket.setTimeout(min(deadline, socket.timeout)) }
        defer { if deadline != nil { socket.setTimeout(socket.timeout) } }
        func next() throws -> [UInt8] {
            while true {
                if let m = frames.next() { return m }
                let bytes = try handshakeBytes(socket, deadline: deadline)
                if bytes.isEmpty { throw SocketError(operation: "handshake with", address: socket.address, errno: 0) }
                if let deadline, DispatchTime.now().uptimeNanoseconds - start > UInt64(deadline) * 1_000_000_000 {
                    throw lateHandshake(socket, deadline)
                }
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

    /// The next bytes of a handshake; a read that times out under a deadline says so.
    private static func handshakeBytes(_ socket: TCPSocket, deadline: Int?) throws -> [UInt8] {
        do { return try socket.receive() } catch {
            if let deadline, error.errno == ETIMEDOUT { throw lateHandshake(socket, deadline) }
            throw error
        }
    }

    private static func lateHandshake(_ socket: TCPSocket, _ deadline: Int) -> SocketError {
        SocketError(operation: "finish the handshake in \(deadline) s with", address: socket.address, errno: ETIMEDOUT)
    }

    public func send(_ message: [UInt8]) throws {
        try socket.send(try channel.seal(message))
    }

    /// The bytes that carry a message of `count` bytes written in place by `write`
    /// (`SecureChannel.seal(count:_:)`); send them with `sendSealed` before sealing or sending
    /// any other message.
    public func seal(count: Int, _ write: (inout SecureChannel.MessageWriter) -> Void) throws -> [UInt8] {
        try channel.seal(count: count, write)
    }

    /// Sends the bytes `seal(count:_:)` gave.
    public func sendSealed(_ sealed: [UInt8]) throws {
        try socket.send(sealed)
    }

    /// The next application message; the end of the stream before one is an error.
    public func receive() throws -> [UInt8] {
        while inbox.isEmpty {
            guard let messages = try channel.receive(from: socket) else { throw SocketError(operation: "receive from", address: socket.address, errno: 0) }
            inbox = messages
        }
        return inbox.removeFirst()
    }
}
