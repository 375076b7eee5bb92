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
        var out = [UInt8](unsafeUninitializedCapacity: plaintext.count + tagSize) { b, n in
            plaintext.withUnsafeBytes { p in UnsafeMutableRawBufferPointer(b).copyMemory(from: p) }
            n = plaintext.count + tagSize
        }
        var failure: Failure?
        out.withUnsafeMutableBytes { b in
            aad.withUnsafeBytes { a in
                do throws(Failure) { try sealInPlace(key: key, nonce: nonce, b, count: plaintext.count, aad: a) } catch { failure = error }
            }
        }
        if let failure { throw failure }
        return out
    }

    /// Encrypts the first `count` bytes of `buffer` in place, authenticating them and `aad`, and
    /// writes the tag into the `tagSize` bytes after them (`buffer` holds at least count + 16):
    /// the raw-buffer form a transport seals its messages with, without a copy.
    public static func sealInPlace(key: [UInt8], nonce: [UInt8], _ buffer: UnsafeMutableRawBufferPointer, count: Int,
                                   aad: UnsafeRawBufferPointer) throws(Failure) {
        guard key.count == 32, nonce.count == 12 else { throw .badKeyOrNonce }
        precondition(count >= 0 && buffer.count >= count + tagSize, "room for the tag")
        let ctx = EVP_CIPHER_CTX_new()!
        defer { EVP_CIPHER_CTX_free(ctx) }
        guard EVP_EncryptInit_ex2(ctx, cipher, key, nonce, nil) == 1 else { throw .libcrypto("EVP_EncryptInit_ex2") }
        var len: Int32 = 0
        if !aad.isEmpty {
            guard EVP_EncryptUpdate(ctx, nil, &len, aad.baseAddress, Int32(aad.count)) == 1 else { throw .libcrypto("EVP_EncryptUpdate") }
        }
        let p = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var written: Int32 = 0
        if count > 0 {
            // libcrypto allows the output to be exactly the input.
            guard EVP_EncryptUpdate(ctx, p, &written, p, Int32(count)) == 1 else { throw .libcrypto("EVP_EncryptUpdate") }
        }
        var final: Int32 = 0
        guard EVP_EncryptFinal_ex(ctx, p + Int(written), &final) == 1 else { throw .libcrypto("EVP_EncryptFinal_ex") }
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, Int32(tagSize), p + count) == 1 else { throw .libcrypto("EVP_CTRL_AEAD_GET_TAG") }
    }

    /// Checks the tag and decrypts ciphertext ‖ tag.
    public static func open(key: [UInt8], nonce: [UInt8], sealed: [UInt8], aad: [UInt8] = []) throws(Failure) -> [UInt8] {
        guard sealed.count >= tagSize else { throw .authenticationFailed }
        var failure: Failure?
        // At least one byte of room, so the buffer has an address even for an empty plaintext.
        let out = [UInt8](unsafeUninitializedCapacity: max(1, sealed.count - tagSize)) { b, n in
            n = 0
            sealed.withUnsafeBytes { s in
                aad.withUnsafeBytes { a in
                    do throws(Failure) { n = try open(key: key, nonce: nonce, sealed: s, aad: a, into: b.baseAddress!) } catch { failure = error }
                }
            }
        }
        if let failure { throw failure }
        return out
    }

    /// Checks the tag of `sealed` (ciphertext ‖ tag) and `aad`, writing the plaintext
    /// (sealed.count − 16 bytes) to `out`; returns its length. When it throws, what it wrote
    /// to `out` is unauthenticated and must be discarded.
    public static func open(key: [UInt8], nonce: [UInt8], sealed: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
                            into out: UnsafeMutablePointer<UInt8>) throws(Failure) -> Int {
        guard key.count == 32, nonce.count == 12 else { throw .badKeyOrNonce }
        guard sealed.count >= tagSize else { throw .authenticationFailed }
        let body = sealed.count - tagSize
        let s = sealed.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let ctx = EVP_CIPHER_CTX_new()!
        defer { EVP_CIPHER_CTX_free(ctx) }
        guard EVP_DecryptInit_ex2(ctx, cipher, key, nonce, nil) == 1 else { throw .libcrypto("EVP_DecryptInit_ex2") }
        var len: Int32 = 0
        if !aad.isEmpty {
            guard EVP_DecryptUpdate(ctx, nil, &len, aad.baseAddress, Int32(aad.count)) == 1 else { throw .authenticationFailed }
        }
        var written: Int32 = 0
        if body > 0 {
            guard EVP_DecryptUpdate(ctx, out, &written, s, Int32(body)) == 1 else { throw .authenticationFailed }
        }
        // libcrypto takes the expected tag through a non-const pointer; it only reads it.
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, Int32(tagSize), UnsafeMutableRawPointer(mutating: s + body)) == 1 else {
            throw .libcrypto("EVP_CTRL_AEAD_SET_TAG")
        }
        var final: Int32 = 0
        let ok = EVP_DecryptFinal_ex(ctx, out + Int(written), &final)
        ERR_clear_error()
        guard ok == 1 else { throw .authenticationFailed }
        return Int(written + final)
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
