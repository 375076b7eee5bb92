import DatanetCrypto

/// A Noise XX handshake in which each side proves its Datanet identity: the responder's
/// certificate rides in message 2, the initiator's in message 3 (both encrypted), message 1
/// carries nothing. Each certificate must be signed by the identity it names, name the
/// transport key the handshake authenticated, and not have expired; otherwise the handshake
/// ends with `NoiseError.certificate`.
public struct PeerHandshake {
    public static let prologue = Array("datanet/v1".utf8)
    private var noise: NoiseHandshake
    private let certificate: TransportCertificate
    private let now: UInt64
    /// The peer's identity, once its certificate has been checked.
    public private(set) var peer: PublicKey?

    /// `identity` presents itself with a certificate valid `validFor` seconds from `now`.
    public init(role: NoiseHandshake.Role, identity: SigningKey, now: UInt64, validFor: UInt64 = 86_400) throws(NoiseError) {
        do throws(CryptoError) {
            let key = try TransportCertificate.transportKey(of: identity)
            certificate = try TransportCertificate(identity: identity, transportKey: key.publicKey, expiry: now + validFor)
            noise = NoiseHandshake(role: role, staticKey: key, prologue: Self.prologue)
        } catch { throw .crypto(error) }
        self.now = now
    }

    public var isComplete: Bool { noise.isComplete }
    public var isMyTurn: Bool { noise.isMyTurn }

    /// The next message this side sends.
    public mutating func write() throws(NoiseError) -> [UInt8] {
        try noise.writeMessage(noise.step == 0 ? [] : certificate.encoded)
    }

    /// Reads the peer's next message, checking its certificate where one is due.
    public mutating func read(_ message: [UInt8]) throws(NoiseError) {
        let payload = try noise.readMessage(message)
        if noise.step == 1 {
            guard payload.isEmpty else { throw .certificate("the first handshake message carries \(payload.count) unexpected bytes") }
            return
        }
        let cert = try TransportCertificate(encoded: payload)
        try cert.verify(transportKey: noise.remoteStatic ?? [], now: now)
        peer = cert.identity
    }

    /// The channel for application messages, once complete and the peer proved.
    public func channel(maximumMessage: Int = SecureChannel.defaultMaximumMessage) throws(NoiseError) -> SecureChannel {
        guard peer != nil else { throw .outOfTurn }
        return try SecureChannel(noise, maximumMessage: maximumMessage)
    }
}
