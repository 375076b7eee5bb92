import CCrypto

/// HKDF-SHA256 (RFC 5869) over libcrypto's EVP_PKEY_HKDF: keys derived from X25519 shared
/// secrets (sealed bundles now, the Noise handshake later).
public enum HKDF {
    /// `length` bytes (at most 255 × 32) of output keying material.
    public static func sha256(ikm: [UInt8], salt: [UInt8], info: [UInt8], length: Int) throws(CryptoError) -> [UInt8] {
        guard length > 0, length <= 255 * 32 else { throw .badLength(what: "HKDF output", got: length, want: 32) }
        guard let ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nil) else { throw .libcrypto(call: "EVP_PKEY_CTX_new_id") }
        defer { EVP_PKEY_CTX_free(ctx) }
        guard EVP_PKEY_derive_init(ctx) == 1, EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) == 1 else {
            throw .libcrypto(call: "EVP_PKEY_derive_init")
        }
        // An empty salt means HashLen zeros (RFC 5869 §2.2), libcrypto's default when unset.
        if !salt.isEmpty { guard EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt, Int32(salt.count)) == 1 else { throw .libcrypto(call: "EVP_PKEY_CTX_set1_hkdf_salt") } }
        guard EVP_PKEY_CTX_set1_hkdf_key(ctx, ikm, Int32(ikm.count)) == 1 else { throw .libcrypto(call: "EVP_PKEY_CTX_set1_hkdf_key") }
        if !info.isEmpty { guard EVP_PKEY_CTX_add1_hkdf_info(ctx, info, Int32(info.count)) == 1 else { throw .libcrypto(call: "EVP_PKEY_CTX_add1_hkdf_info") } }
        var out = [UInt8](repeating: 0, count: length)
        var n = length
        guard EVP_PKEY_derive(ctx, &out, &n) == 1, n == length else { throw .libcrypto(call: "EVP_PKEY_derive") }
        return out
    }
}

/// HMAC-SHA256 (RFC 2104) through libcrypto's one-shot `HMAC`: the Noise handshake's HKDF
/// is written with it, as the Noise specification defines that function.
public enum HMAC {
    public static func sha256(key: [UInt8], data: [UInt8]) throws(CryptoError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var n: UInt32 = 0
        let ok = key.withUnsafeBufferPointer { k in
            data.withUnsafeBufferPointer { d in
                CCrypto.HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), d.baseAddress, d.count, &out, &n) != nil
            }
        }
        guard ok, n == 32 else { throw .libcrypto(call: "HMAC") }
        return out
    }
}
