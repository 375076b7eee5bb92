import CCrypto

/// An X25519 key pair (RFC 7748) for key agreement: sealing bundles to an identity, Noise.
public final class X25519PrivateKey: @unchecked Sendable {
    private let pkey: OpaquePointer
    /// The 32-byte public key.
    public let publicKey: [UInt8]

    /// Generates a key from the system RNG.
    public convenience init() throws(CryptoError) {
        var raw = [UInt8](repeating: 0, count: 32)
        guard RAND_priv_bytes(&raw, 32) == 1 else { throw .libcrypto(call: "RAND_priv_bytes") }
        try self.init(raw: raw)
    }

    /// Rebuilds a key from its 32 raw private bytes.
    public init(raw: [UInt8]) throws(CryptoError) {
        guard raw.count == 32 else { throw .badLength(what: "X25519 private key", got: raw.count, want: 32) }
        guard let k = raw.withUnsafeBufferPointer({ EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nil, $0.baseAddress, 32) }) else {
            throw .libcrypto(call: "EVP_PKEY_new_raw_private_key")
        }
        var pub = [UInt8](repeating: 0, count: 32)
        var n = 32
        guard EVP_PKEY_get_raw_public_key(k, &pub, &n) == 1 else {
            EVP_PKEY_free(k)
            throw .libcrypto(call: "EVP_PKEY_get_raw_public_key")
        }
        pkey = k
        publicKey = pub
    }

    deinit { EVP_PKEY_free(pkey) }

    /// The raw private bytes, for writing a key file. Never print them.
    public var raw: [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var n = 32
        EVP_PKEY_get_raw_private_key(pkey, &out, &n)
        return out
    }

    /// The shared secret with `peer`'s public key. Throws for a peer key that yields the
    /// all-zero secret (a low-order point), which libcrypto refuses.
    public func sharedSecret(with peer: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard peer.count == 32 else { throw .badLength(what: "X25519 public key", got: peer.count, want: 32) }
        guard let peerKey = peer.withUnsafeBufferPointer({ EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nil, $0.baseAddress, 32) }) else {
            throw .libcrypto(call: "EVP_PKEY_new_raw_public_key")
        }
        defer { EVP_PKEY_free(peerKey) }
        let ctx = EVP_PKEY_CTX_new(pkey, nil)!
        defer { EVP_PKEY_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: 32)
        var n = 32
        defer { ERR_clear_error() }
        guard EVP_PKEY_derive_init(ctx) == 1, EVP_PKEY_derive_set_peer(ctx, peerKey) == 1,
              EVP_PKEY_derive(ctx, &out, &n) == 1, n == 32 else { throw .libcrypto(call: "EVP_PKEY_derive") }
        return out
    }
}
