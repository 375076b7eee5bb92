import DatanetCrypto

/// What ends a Noise session: a message that does not decrypt, a malformed or oversized one,
/// or a use the state machine does not allow.
public enum NoiseError: Error, Equatable, CustomStringConvertible {
    /// A handshake message shorter than its tokens need.
    case truncated(needed: Int, got: Int)
    /// A ciphertext whose tag does not verify (a wrong key, or altered bytes).
    case decryptionFailed
    /// A message longer than Noise's 65,535 bytes.
    case tooLong(Int)
    /// A key agreement with a low-order public key (an all-zero shared secret).
    case badPublicKey
    /// 2^64 − 1 messages were sent or received under one key.
    case nonceExhausted
    /// A handshake message written or read out of turn, or after the handshake ended.
    case outOfTurn
    /// An application message past the channel's bound (SecureChannel).
    case messageTooLarge(size: Int, bound: Int)
    /// A transport chunk without its flag byte, or with a flag other than 0 or 1.
    case malformedChunk
    /// The peer's transport certificate is malformed, mis-signed, for another key, or expired.
    case certificate(String)
    /// libcrypto refused an operation.
    case crypto(CryptoError)

    public var description: String {
        switch self {
        case .truncated(let needed, let got): "Noise message of \(got) bytes is shorter than the \(needed) its handshake step needs"
        case .decryptionFailed: "Noise message does not decrypt: the peer's key differs or the bytes were altered"
        case .tooLong(let n): "Noise message of \(n) bytes exceeds 65535"
        case .badPublicKey: "the peer's X25519 key is of low order"
        case .nonceExhausted: "2^64 - 1 Noise messages under one key: rekey or reconnect"
        case .outOfTurn: "Noise handshake message out of turn"
        case .messageTooLarge(let size, let bound): "message of \(size) bytes exceeds the bound of \(bound)"
        case .malformedChunk: "transport chunk lacks a valid flag byte (0 or 1)"
        case .certificate(let why): why
        case .crypto(let e): "\(e)"
        }
    }
}

/// Noise's CipherState (§5.1): a ChaCha20-Poly1305 key and a 64-bit counter nonce, encoded as
/// 32 zero bits then the counter little-endian.
public struct NoiseCipher: Sendable {
    public static let maximumMessage = 65535
    var key: [UInt8]?
    var nonce: UInt64 = 0

    init(key: [UInt8]?) { self.key = key }

    private static func nonceBytes(_ n: UInt64) -> [UInt8] { [0, 0, 0, 0] + withUnsafeBytes(of: n.littleEndian, Array.init) }

    /// The key and nonce for the next message, `length` bytes with its tag, after Noise's
    /// checks (only for a keyed cipher: every transport cipher is, and the handshake passes
    /// plaintext through before it has a key).
    private func next(_ length: Int) throws(NoiseError) -> (key: [UInt8], nonce: [UInt8]) {
        guard let key else { preconditionFailure("a cipher is used only once it has a key") }
        guard nonce < .max else { throw .nonceExhausted }
        guard length <= Self.maximumMessage else { throw .tooLong(length) }
        return (key, Self.nonceBytes(nonce))
    }

    /// A libcrypto failure as the session's error.
    private static func failed(_ e: ChaChaPoly.Failure) -> NoiseError {
        e == .authenticationFailed ? .decryptionFailed : .crypto(.libcrypto(call: "\(e)"))
    }

    /// Encrypts `plaintext` with associated data `ad` (plaintext passes through before a key).
    public mutating func encrypt(_ plaintext: [UInt8], ad: [UInt8] = []) throws(NoiseError) -> [UInt8] {
        guard key != nil else { return plaintext }
        let (k, n) = try next(plaintext.count + ChaChaPoly.tagSize)
        let out: [UInt8]
        do { out = try ChaChaPoly.seal(key: k, nonce: n, plaintext: plaintext, aad: ad) } catch { throw Self.failed(error) }
        nonce += 1
        return out
    }

    /// Encrypts the first `count` bytes of `buffer` in place with associated data `ad`, the tag
    /// in the 16 bytes after them. Only for a keyed cipher.
    mutating func encrypt(inPlace buffer: UnsafeMutableRawBufferPointer, count: Int, ad: UnsafeRawBufferPointer) throws(NoiseError) {
        let (k, n) = try next(count + ChaChaPoly.tagSize)
        do { try ChaChaPoly.sealInPlace(key: k, nonce: n, buffer, count: count, aad: ad) } catch { throw Self.failed(error) }
        nonce += 1
    }

    /// Decrypts and authenticates `ciphertext`; the nonce advances only when it verifies.
    public mutating func decrypt(_ ciphertext: [UInt8], ad: [UInt8] = []) throws(NoiseError) -> [UInt8] {
        guard key != nil else { return ciphertext }
        let (k, n) = try next(ciphertext.count)
        let out: [UInt8]
        do { out = try ChaChaPoly.open(key: k, nonce: n, sealed: ciphertext, aad: ad) } catch { throw Self.failed(error) }
        nonce += 1
        return out
    }

    /// Decrypts and authenticates `ciphertext` with associated data `ad` into `out` (room for
    /// ciphertext.count − 16 bytes); returns the plaintext's length. The nonce advances only when
    /// it verifies; when it throws, `out` holds nothing to use. Only for a keyed cipher.
    mutating func decrypt(_ ciphertext: UnsafeRawBufferPointer, ad: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) throws(NoiseError) -> Int {
        let (k, n) = try next(ciphertext.count)
        let length: Int
        do { length = try ChaChaPoly.open(key: k, nonce: n, sealed: ciphertext, aad: ad, into: out) } catch { throw Self.failed(error) }
        nonce += 1
        return length
    }
}

/// Noise's SymmetricState (§5.2) for SHA-256: the chaining key, the handshake hash and the cipher.
struct NoiseSymmetric {
    var ck: [UInt8]
    var h: [UInt8]
    var cipher = NoiseCipher(key: nil)

    init(protocolName: String) {
        let name = Array(protocolName.utf8)
        h = name.count <= 32 ? name + [UInt8](repeating: 0, count: 32 - name.count) : SHA256.hash(name).bytes
        ck = h
    }

    mutating func mixHash(_ data: [UInt8]) { h = SHA256.hash(h + data).bytes }

    /// Noise's HKDF (§4.3): HMAC-SHA256 with the chaining key as key, two or three outputs.
    static func hkdf(_ ck: [UInt8], _ ikm: [UInt8], outputs: Int) throws(NoiseError) -> [[UInt8]] {
        do {
            let temp = try HMAC.sha256(key: ck, data: ikm)
            var out = [try HMAC.sha256(key: temp, data: [1])]
            while out.count < outputs { out.append(try HMAC.sha256(key: temp, data: out.last! + [UInt8(out.count + 1)])) }
            return out
        } catch { throw .crypto(error) }
    }

    mutating func mixKey(_ ikm: [UInt8]) throws(NoiseError) {
        let o = try Self.hkdf(ck, ikm, outputs: 2)
        ck = o[0]
        cipher = NoiseCipher(key: o[1])
    }

    mutating func encryptAndHash(_ plaintext: [UInt8]) throws(NoiseError) -> [UInt8] {
        let c = try cipher.encrypt(plaintext, ad: h)
        mixHash(c)
        return c
    }

    mutating func decryptAndHash(_ ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        let p = try cipher.decrypt(ciphertext, ad: h)
        mixHash(ciphertext)
        return p
    }

    /// The two transport ciphers: initiator to responder, then responder to initiator.
    func split() throws(NoiseError) -> (NoiseCipher, NoiseCipher) {
        let o = try Self.hkdf(ck, [], outputs: 2)
        return (NoiseCipher(key: o[0]), NoiseCipher(key: o[1]))
    }
}
