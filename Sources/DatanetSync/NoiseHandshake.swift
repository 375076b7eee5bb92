import DatanetCrypto

/// A `Noise_XX_25519_ChaChaPoly_SHA256` handshake (the Noise specification, revision 34, §5.3
/// and §7.5): `-> e`, `<- e, ee, s, es`, `-> s, se`. Each side learns the other's static key
/// in the handshake; what that key is worth (a certificate in the payload) is the caller's to
/// check. After the third message `transport()` gives the two ciphers.
public struct NoiseHandshake {
    public static let protocolName = "Noise_XX_25519_ChaChaPoly_SHA256"
    public enum Role: Sendable { case initiator, responder }

    public let role: Role
    private var symmetric: NoiseSymmetric
    private let s: X25519PrivateKey
    private var e: X25519PrivateKey?
    /// A fixed ephemeral key (test vectors only); otherwise one is drawn per handshake.
    private let fixedEphemeral: X25519PrivateKey?
    /// The peer's ephemeral and static public keys, once received.
    private var re: [UInt8]?
    public private(set) var remoteStatic: [UInt8]?
    /// Messages written or read so far (0, 1, 2; 3 when complete).
    public private(set) var step = 0

    public init(role: Role, staticKey: X25519PrivateKey, prologue: [UInt8], ephemeral: X25519PrivateKey? = nil) {
        self.role = role
        s = staticKey
        fixedEphemeral = ephemeral
        symmetric = NoiseSymmetric(protocolName: Self.protocolName)
        symmetric.mixHash(prologue)
    }

    public var isComplete: Bool { step == 3 }
    /// The handshake hash: a value both sides share, for channel binding.
    public var handshakeHash: [UInt8] { symmetric.h }

    /// Whether this side writes the next message.
    public var isMyTurn: Bool { !isComplete && (step % 2 == 0) == (role == .initiator) }

    private func dh(_ k: X25519PrivateKey, _ pub: [UInt8]) throws(NoiseError) -> [UInt8] {
        do { return try k.sharedSecret(with: pub) } catch { throw .badPublicKey }
    }

    /// Writes the next handshake message carrying `payload`.
    public mutating func writeMessage(_ payload: [UInt8] = []) throws(NoiseError) -> [UInt8] {
        guard isMyTurn else { throw .outOfTurn }
        var out = [UInt8]()
        switch step {
        case 0:  // -> e
            out += try newEphemeral()
        case 1:  // <- e, ee, s, es
            out += try newEphemeral()
            try symmetric.mixKey(try dh(e!, re!))
            out += try symmetric.encryptAndHash(s.publicKey)
            try symmetric.mixKey(try dh(s, re!))
        default: // -> s, se
            out += try symmetric.encryptAndHash(s.publicKey)
            try symmetric.mixKey(try dh(s, re!))
        }
        out += try symmetric.encryptAndHash(payload)
        guard out.count <= NoiseCipher.maximumMessage else { throw .tooLong(out.count) }
        step += 1
        return out
    }

    /// Reads the peer's next handshake message; returns its payload.
    public mutating func readMessage(_ message: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard !isComplete, !isMyTurn else { throw .outOfTurn }
        guard message.count <= NoiseCipher.maximumMessage else { throw .tooLong(message.count) }
        var rest = message[...]
        func take(_ n: Int) throws(NoiseError) -> [UInt8] {
            guard rest.count >= n else { throw .truncated(needed: message.count - rest.count + n, got: message.count) }
            defer { rest = rest.dropFirst(n) }
            return Array(rest.prefix(n))
        }
        switch step {
        case 0:  // -> e
            re = try take(32)
            symmetric.mixHash(re!)
        case 1:  // <- e, ee, s, es
            re = try take(32)
            symmetric.mixHash(re!)
            try symmetric.mixKey(try dh(e!, re!))
            remoteStatic = try symmetric.decryptAndHash(try take(32 + ChaChaPoly.tagSize))
            try symmetric.mixKey(try dh(e!, remoteStatic!))
        default: // -> s, se
            remoteStatic = try symmetric.decryptAndHash(try take(32 + ChaChaPoly.tagSize))
            try symmetric.mixKey(try dh(e!, remoteStatic!))
        }
        let payload = try symmetric.decryptAndHash(Array(rest))
        step += 1
        return payload
    }

    /// The transport ciphers once complete: (sending, receiving) for this side.
    public func transport() throws(NoiseError) -> (send: NoiseCipher, receive: NoiseCipher) {
        guard isComplete else { throw .outOfTurn }
        let (i2r, r2i) = try symmetric.split()
        return role == .initiator ? (i2r, r2i) : (r2i, i2r)
    }

    private mutating func newEphemeral() throws(NoiseError) -> [UInt8] {
        if let fixedEphemeral {
            e = fixedEphemeral
        } else {
            do throws(CryptoError) { e = try X25519PrivateKey() } catch { throw .crypto(error) }
        }
        symmetric.mixHash(e!.publicKey)
        return e!.publicKey
    }
}
