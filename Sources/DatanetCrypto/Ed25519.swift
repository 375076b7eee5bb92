import CCrypto
import Synchronization

/// An Ed25519 public key: 32 raw bytes (RFC 8032 encoding).
public struct PublicKey: Hashable, Sendable, CustomStringConvertible {
    /// The raw 32-byte encoding.
    public let bytes: [UInt8]

    /// Wraps 32 raw bytes; any other length throws. The point is decoded lazily, at verify time.
    public init(bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == 32 else { throw .badLength(what: "Ed25519 public key", got: bytes.count, want: 32) }
        self.bytes = bytes
    }

    public var description: String { Hex.encode(bytes) }

    /// Hashes the 32 bytes in one call: keys are looked up per record in bulk work.
    public func hash(into hasher: inout Hasher) { bytes.withUnsafeBytes { hasher.combine(bytes: $0) } }

    /// True when `signature` is a valid RFC 8032 signature of `message` by this key.
    ///
    /// Malformed keys (not a curve point) and non-canonical signatures verify as false.
    public func isValidSignature(_ signature: Signature, for message: UnsafeRawBufferPointer) -> Bool {
        guard let pkey = bytes.withUnsafeBufferPointer({
            EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32)
        }) else { return false }
        defer { EVP_PKEY_free(pkey) }
        let ctx = EVP_MD_CTX_new()!
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestVerifyInit(ctx, nil, nil, nil, pkey) == 1 else { return false }
        let base = message.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let rc = signature.bytes.withUnsafeBufferPointer { sig in
            EVP_DigestVerify(ctx, sig.baseAddress, 64, base, message.count)
        }
        ERR_clear_error()
        return rc == 1
    }

    /// Convenience over a byte array.
    public func isValidSignature(_ signature: Signature, for message: [UInt8]) -> Bool {
        message.withUnsafeBytes { isValidSignature(signature, for: $0) }
    }
}

/// An Ed25519 signature: 64 raw bytes.
public struct Signature: Hashable, Sendable {
    /// The raw 64-byte encoding (R ‖ S).
    public let bytes: [UInt8]

    /// Wraps 64 raw bytes; any other length throws.
    public init(bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == 64 else { throw .badLength(what: "Ed25519 signature", got: bytes.count, want: 64) }
        self.bytes = bytes
    }
}

/// An Ed25519 private key held by libcrypto. Its seed leaves only through `seed` for key files.
public final class SigningKey: @unchecked Sendable {
    private let pkey: OpaquePointer
    /// A signing context initialised once and reused (a fresh one per signature costs about
    /// 15%, SWIFT-NOTES §2); the lock keeps one signature at a time on it.
    private let lock = Mutex<Void>(())
    private var context: OpaquePointer?
    /// The matching public key.
    public let publicKey: PublicKey

    /// Generates a key from the system RNG.
    public convenience init() throws(CryptoError) {
        var seed = [UInt8](repeating: 0, count: 32)
        guard RAND_priv_bytes(&seed, 32) == 1 else { throw .libcrypto(call: "RAND_priv_bytes") }
        try self.init(seed: seed)
    }

    /// Rebuilds the key from its 32-byte RFC 8032 seed.
    public init(seed: [UInt8]) throws(CryptoError) {
        guard seed.count == 32 else { throw .badLength(what: "Ed25519 seed", got: seed.count, want: 32) }
        guard let k = seed.withUnsafeBufferPointer({
            EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32)
        }) else { throw .libcrypto(call: "EVP_PKEY_new_raw_private_key") }
        var pub = [UInt8](repeating: 0, count: 32)
        var n = 32
        guard EVP_PKEY_get_raw_public_key(k, &pub, &n) == 1, n == 32 else {
            EVP_PKEY_free(k)
            throw .libcrypto(call: "EVP_PKEY_get_raw_public_key")
        }
        pkey = k
        publicKey = try PublicKey(bytes: pub)
    }

    deinit {
        if let context { EVP_MD_CTX_free(context) }
        EVP_PKEY_free(pkey)
    }

    /// The 32-byte seed, for writing a key file. Never print it.
    public var seed: [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var n = 32
        EVP_PKEY_get_raw_private_key(pkey, &out, &n)
        return out
    }

    /// Signs `message` (pure Ed25519, no pre-hash).
    public func sign(_ message: UnsafeRawBufferPointer) throws(CryptoError) -> Signature {
        var sig = [UInt8](repeating: 0, count: 64)
        let ok = lock.withLock { _ -> Bool in
            if context == nil {
                let ctx = EVP_MD_CTX_new()!
                guard EVP_DigestSignInit(ctx, nil, nil, nil, pkey) == 1 else { EVP_MD_CTX_free(ctx); return false }
                context = ctx
            }
            var len = 64
            let base = message.baseAddress?.assumingMemoryBound(to: UInt8.self)
            return EVP_DigestSign(context!, &sig, &len, base, message.count) == 1 && len == 64
        }
        guard ok else { throw .libcrypto(call: "EVP_DigestSign") }
        return try Signature(bytes: sig)
    }

    /// Signs a byte array.
    public func sign(_ message: [UInt8]) throws(CryptoError) -> Signature {
        try message.withUnsafeBytes { b in Result { () throws(CryptoError) -> Signature in try sign(b) } }.get()
    }
}
