import DatanetCrypto

/// What makes a Noise peer a Datanet identity: its X25519 transport key, signed by its Ed25519
/// identity key with an expiry, carried in the handshake payload (schema/sync.md
/// "Certificates"). 137 bytes: version 1 ‖ identity key (32) ‖ transport key (32) ‖ expiry,
/// Unix seconds (u64 big-endian) ‖ signature (64) over the context `datanet/v1/transport-key`
/// (schema/contexts.md).
public struct TransportCertificate: Sendable, Equatable {
    public static let version: UInt8 = 1
    public static let size = 137
    static let context = Array("datanet/v1/transport-key".utf8) + [0]

    public let identity: PublicKey
    public let transportKey: [UInt8]
    public let expiry: UInt64
    public let signature: Signature

    /// The signed message: context ‖ transport key ‖ expiry.
    static func message(transportKey: [UInt8], expiry: UInt64) -> [UInt8] {
        context + transportKey + withUnsafeBytes(of: expiry.bigEndian, Array.init)
    }

    /// Certifies `transportKey` for `identity` until `expiry`.
    public init(identity: SigningKey, transportKey: [UInt8], expiry: UInt64) throws(CryptoError) {
        guard transportKey.count == 32 else { throw .badLength(what: "X25519 transport key", got: transportKey.count, want: 32) }
        self.identity = identity.publicKey
        self.transportKey = transportKey
        self.expiry = expiry
        signature = try identity.sign(Self.message(transportKey: transportKey, expiry: expiry))
    }

    public var encoded: [UInt8] {
        [Self.version] + identity.bytes + transportKey + withUnsafeBytes(of: expiry.bigEndian, Array.init) + signature.bytes
    }

    /// Decodes exactly 137 bytes of version 1; checks nothing else (`verify`).
    public init(encoded b: [UInt8]) throws(NoiseError) {
        guard b.count == Self.size else { throw .certificate("the peer's certificate is \(b.count) bytes, not \(Self.size)") }
        guard b[0] == Self.version else { throw .certificate("the peer's certificate is version \(b[0]); this build reads version 1") }
        guard let key = try? PublicKey(bytes: Array(b[1..<33])), let sig = try? Signature(bytes: Array(b[73..<137])) else {
            throw .certificate("the peer's certificate holds a malformed key or signature")
        }
        identity = key
        transportKey = Array(b[33..<65])
        expiry = b[65..<73].reduce(0) { $0 << 8 | UInt64($1) }
        signature = sig
    }

    /// Checks that the identity signed this transport key, that the key is the one the
    /// handshake authenticated, and that `now` (Unix seconds) is before the expiry.
    public func verify(transportKey authenticated: [UInt8], now: UInt64) throws(NoiseError) {
        guard identity.isValidSignature(signature, for: Self.message(transportKey: transportKey, expiry: expiry)) else {
            throw .certificate("the peer's certificate is not signed by the identity it names (\(identity))")
        }
        guard transportKey == authenticated else {
            throw .certificate("the peer's certificate names another transport key than the one it used in the handshake")
        }
        guard now < expiry else { throw .certificate("the peer's certificate for \(identity) expired at \(expiry) (now \(now))") }
    }
}

extension TransportCertificate {
    /// An identity's own X25519 transport key, derived from its Ed25519 seed with HKDF-SHA256
    /// (info `datanet/v1/transport-key`): distinct from its sealing key, and kept with nothing
    /// new in the identity file (schema/identity.md).
    public static func transportKey(of identity: SigningKey) throws(CryptoError) -> X25519PrivateKey {
        try X25519PrivateKey(raw: try HKDF.sha256(ikm: identity.seed, salt: [], info: Array("datanet/v1/transport-key".utf8), length: 32))
    }
}
