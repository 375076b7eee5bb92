import CCrypto

/// ChaCha20-Poly1305 (RFC 8439) over libcrypto: 32-byte key, 12-byte nonce, 16-byte tag
/// appended to the ciphertext.
public enum ChaChaPoly {
    nonisolated(unsafe) static let cipher: OpaquePointer = EVP_CIPHER_fetch(nil, "ChaCha20-Poly1305", nil)!
    /// Tag length in bytes.
    public static let tagSize = 16

    /// Why decryption or encryption failed.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case badKeyOrNonce
        /// The ciphertext, nonce, key or associated data is not what was sealed.
        case authenticationFailed
        case libcrypto(String)

        public var description: String {
            switch self {
            case .badKeyOrNonce: return "ChaCha20-Poly1305 needs a 32-byte key and a 12-byte nonce"
            case .authenticationFailed: return "decryption failed: wrong key or passphrase, or the data was altered"
            case .libcrypto(let call): return "libcrypto call \(call) failed"
            }
        }
    }

    /// Encrypts and authenticates `plaintext` and `aad`; returns ciphertext ‖ tag.
    public static func seal(key: [UInt8], nonce: [UInt8], plaintext: [UInt8], aad: [UInt8] = []) throws(Failure) -> [UInt8] {
        guard key.count == 32, nonce.count == 12 else { throw .badKeyOrNonce }
        let ctx = EVP_CIPHER_CTX_new()!
        defer { EVP_CIPHER_CTX_free(ctx) }
        guard EVP_EncryptInit_ex2(ctx, cipher, key, nonce, nil) == 1 else { throw .libcrypto("EVP_EncryptInit_ex2") }
        var len: Int32 = 0
        if !aad.isEmpty { guard EVP_EncryptUpdate(ctx, nil, &len, aad, Int32(aad.count)) == 1 else { throw .libcrypto("EVP_EncryptUpdate") } }
        var out = [UInt8](repeating: 0, count: plaintext.count + tagSize)
        var written: Int32 = 0
        if !plaintext.isEmpty {
            guard EVP_EncryptUpdate(ctx, &out, &written, plaintext, Int32(plaintext.count)) == 1 else { throw .libcrypto("EVP_EncryptUpdate") }
        }
        var final: Int32 = 0
        let ok = out.withUnsafeMutableBufferPointer { b in EVP_EncryptFinal_ex(ctx, b.baseAddress! + Int(written), &final) }
        guard ok == 1 else { throw .libcrypto("EVP_EncryptFinal_ex") }
        let tagOK = out.withUnsafeMutableBufferPointer { b in
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, Int32(tagSize), b.baseAddress! + plaintext.count)
        }
        guard tagOK == 1 else { throw .libcrypto("EVP_CTRL_AEAD_GET_TAG") }
        return out
    }

    /// Checks the tag and decrypts ciphertext ‖ tag.
    public static func open(key: [UInt8], nonce: [UInt8], sealed: [UInt8], aad: [UInt8] = []) throws(Failure) -> [UInt8] {
        guard key.count == 32, nonce.count == 12 else { throw .badKeyOrNonce }
        guard sealed.count >= tagSize else { throw .authenticationFailed }
        let body = Array(sealed.prefix(sealed.count - tagSize))
        var tag = Array(sealed.suffix(tagSize))
        let ctx = EVP_CIPHER_CTX_new()!
        defer { EVP_CIPHER_CTX_free(ctx) }
        guard EVP_DecryptInit_ex2(ctx, cipher, key, nonce, nil) == 1 else { throw .libcrypto("EVP_DecryptInit_ex2") }
        var len: Int32 = 0
        if !aad.isEmpty { guard EVP_DecryptUpdate(ctx, nil, &len, aad, Int32(aad.count)) == 1 else { throw .authenticationFailed } }
        var out = [UInt8](repeating: 0, count: body.count + 16)
        var written: Int32 = 0
        if !body.isEmpty {
            guard EVP_DecryptUpdate(ctx, &out, &written, body, Int32(body.count)) == 1 else { throw .authenticationFailed }
        }
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, Int32(tagSize), &tag) == 1 else { throw .libcrypto("EVP_CTRL_AEAD_SET_TAG") }
        var final: Int32 = 0
        let ok = out.withUnsafeMutableBufferPointer { b in EVP_DecryptFinal_ex(ctx, b.baseAddress! + Int(written), &final) }
        ERR_clear_error()
        guard ok == 1 else { throw .authenticationFailed }
        return Array(out.prefix(Int(written + final)))
    }
}

/// scrypt (RFC 7914) for turning a passphrase into a key.
public enum Scrypt {
    /// Derives `length` bytes. N must be a power of two > 1; memory use is 128·N·r bytes.
    public static func derive(passphrase: [UInt8], salt: [UInt8], n: UInt64, r: UInt64, p: UInt64,
                              length: Int) throws(CryptoError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        let maxMemory = UInt64(2) * 128 * n * r + (1 << 20)
        let ok = passphrase.withUnsafeBufferPointer { pw in
            salt.withUnsafeBufferPointer { s in
                pw.withMemoryRebound(to: CChar.self) { pwc in
                    EVP_PBE_scrypt(pwc.baseAddress, pw.count, s.baseAddress, s.count, n, r, p, maxMemory, &out, length)
                }
            }
        }
        guard ok == 1 else { throw .libcrypto(call: "EVP_PBE_scrypt") }
        return out
    }
}
