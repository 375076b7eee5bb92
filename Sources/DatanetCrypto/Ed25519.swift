import CSodium

/// libsodium, initialised once before the first Ed25519 call (a lazy global is initialised
/// exactly once, thread-safely). `sodium_init` returns 0, or 1 when already initialised.
private let sodiumReady: Bool = sodium_init() >= 0

/// An Ed25519 public key: 32 raw bytes (RFC 8032 encoding).
///
/// Signatures are judged by libsodium's rule (schema/contexts.md "Ed25519"): besides RFC 8032's
/// cofactorless equation, a key or R of small order, a non-canonical key and S ≥ L are refused.
public struct PublicKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The 32 bytes, held inline (no allocation per key decoded, hashed as four words).
    private let raw: Digest

    /// Wraps 32 raw bytes; any other length throws. The point is decoded lazily, at verify time,
    /// so a record naming an unusable key still decodes (and nothing it signs verifies).
    public init(bytes: [UInt8]) throws(CryptoError) {
        guard let raw = Digest(bytes: bytes) else { throw .badLength(what: "Ed25519 public key", got: bytes.count, want: 32) }
        self.raw = raw
    }

    /// Wraps 32 raw bytes from a buffer; nil for any other length.
    public init?(_ buffer: UnsafeRawBufferPointer) {
        guard let raw = Digest(buffer) else { return nil }
        self.raw = raw
    }

    /// The raw 32-byte encoding.
    public var bytes: [UInt8] { raw.bytes }

    /// Calls `body` with the key's 32 bytes.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { try raw.withUnsafeBytes(body) }

    public var description: String { raw.hex }

    /// Bytewise order of the encodings (the order signature lists and key sets are sorted in).
    public static func < (a: PublicKey, b: PublicKey) -> Bool { a.raw < b.raw }

    /// True when this key is one datanet accepts as an identity: the canonical encoding of a
    /// point of the prime-order subgroup, not of small order (`crypto_core_ed25519_is_valid_point`).
    /// Every key made from a seed is; keys that are not (small-order keys sign nothing libsodium
    /// verifies, mixed-order keys only exist when crafted) are refused wherever a key enters.
    public var isUsable: Bool {
        guard sodiumReady else { return false }
        return withUnsafeBytes { crypto_core_ed25519_is_valid_point($0.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 1 }
    }

    /// True when `signature` is a valid signature of `message` by this key under libsodium's
    /// rule (`crypto_sign_verify_detached`). Malformed and small-order keys verify nothing.
    public func isValidSignature(_ signature: Signature, for message: UnsafeRawBufferPointer) -> Bool {
        guard sodiumReady else { return false }
        let base = message.baseAddress?.assumingMemoryBound(to: UInt8.self)
        return signature.withUnsafeBytes { sig in
            withUnsafeBytes { pk in
                crypto_sign_verify_detached(sig.baseAddress!.assumingMemoryBound(to: UInt8.self), base, UInt64(message.count),
                                            pk.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
            }
        }
    }

    /// Convenience over a byte array.
    public func isValidSignature(_ signature: Signature, for message: [UInt8]) -> Bool {
        message.withUnsafeBytes { isValidSignature(signature, for: $0) }
    }
}

/// An Ed25519 signature: 64 raw bytes.
public struct Signature: Hashable, Sendable {
    /// R and S, held inline.
    private let r: Digest, s: Digest

    /// Wraps 64 raw bytes; any other length throws.
    public init(bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == 64, let r = Digest(bytes: bytes[..<32]), let s = Digest(bytes: bytes[32...]) else {
            throw .badLength(what: "Ed25519 signature", got: bytes.count, want: 64)
        }
        (self.r, self.s) = (r, s)
    }

    /// Wraps 64 raw bytes from a buffer; nil for any other length.
    public init?(_ buffer: UnsafeRawBufferPointer) {
        guard buffer.count == 64, let r = Digest(UnsafeRawBufferPointer(rebasing: buffer[..<32])),
              let s = Digest(UnsafeRawBufferPointer(rebasing: buffer[32...])) else { return nil }
        (self.r, self.s) = (r, s)
    }

    /// The raw 64-byte encoding (R ‖ S).
    public var bytes: [UInt8] { r.bytes + s.bytes }

    /// Calls `body` with the signature's 64 contiguous bytes.
    public func withUnsafeBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        try Swift.withUnsafeBytes(of: (r, s)) { try body($0) }
    }
}

/// An Ed25519 private key held for libsodium (seed ‖ public key, 64 bytes, zeroed when freed).
/// Its seed leaves only through `seed`, for key files. Signing is thread-safe: libsodium keeps
/// no state between calls.
public final class SigningKey: @unchecked Sendable {
    private let secret: UnsafeMutableBufferPointer<UInt8>
    /// The matching public key.
    public let publicKey: PublicKey

    /// Generates a key from libsodium's CSPRNG.
    public convenience init() throws(CryptoError) {
        guard sodiumReady else { throw .libsodium(call: "sodium_init") }
        var seed = [UInt8](repeating: 0, count: 32)
        seed.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, 32) }
        defer { sodium_memzero(&seed, 32) }
        try self.init(seed: seed)
    }

    /// Rebuilds the key from its 32-byte RFC 8032 seed.
    public init(seed: [UInt8]) throws(CryptoError) {
        guard seed.count == 32 else { throw .badLength(what: "Ed25519 seed", got: seed.count, want: 32) }
        guard sodiumReady else { throw .libsodium(call: "sodium_init") }
        let sk = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 64)
        var pub = [UInt8](repeating: 0, count: 32)
        guard crypto_sign_seed_keypair(&pub, sk.baseAddress!, seed) == 0 else {
            sodium_memzero(sk.baseAddress, 64)
            sk.deallocate()
            throw .libsodium(call: "crypto_sign_seed_keypair")
        }
        secret = sk
        publicKey = try PublicKey(bytes: pub)
    }

    deinit {
        sodium_memzero(secret.baseAddress, 64)
        secret.deallocate()
    }

    /// The 32-byte seed, for writing a key file. Never print it.
    public var seed: [UInt8] { Array(secret[0..<32]) }

    /// Signs `message` (pure Ed25519, no pre-hash).
    public func sign(_ message: UnsafeRawBufferPointer) throws(CryptoError) -> Signature {
        var sig = [UInt8](repeating: 0, count: 64)
        var len: UInt64 = 0
        let base = message.baseAddress?.assumingMemoryBound(to: UInt8.self)
        guard crypto_sign_detached(&sig, &len, base, UInt64(message.count), secret.baseAddress!) == 0, len == 64 else {
            throw .libsodium(call: "crypto_sign_detached")
        }
        return try Signature(bytes: sig)
    }

    /// Signs a byte array.
    public func sign(_ message: [UInt8]) throws(CryptoError) -> Signature {
        try message.withUnsafeBytes { b in Result { () throws(CryptoError) -> Signature in try sign(b) } }.get()
    }
}
