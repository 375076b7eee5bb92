import CCrypto

/// The SHA-256 algorithm object, fetched once: OpenSSL 3 otherwise re-fetches it on every
/// digest init, which halves throughput on small messages (SWIFT-NOTES §2).
nonisolated(unsafe) let fetchedSHA256: OpaquePointer = EVP_MD_fetch(nil, "SHA256", nil)!
/// MD5, used for one thing only: deriving the FastCDC gear table (schema/chunking.md).
nonisolated(unsafe) let fetchedMD5: OpaquePointer = EVP_MD_fetch(nil, "MD5", nil)!

/// SHA-256 over libcrypto: one-shot functions and a reusable streaming `SHA256.Hasher`.
public enum SHA256 {
    /// Hashes one buffer.
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> Digest {
        var h = Hasher()
        h.update(bytes)
        return h.finalize()
    }

    /// Hashes a contiguous byte collection (`[UInt8]`, `Data`, `ArraySlice`).
    public static func hash<B: Sequence>(_ bytes: B) -> Digest where B.Element == UInt8 {
        var h = Hasher()
        h.update(bytes)
        return h.finalize()
    }

    /// A streaming SHA-256 state; reuse one across many messages on hot paths (`finalize` resets it).
    ///
    /// Not thread-safe: use one per thread.
    public struct Hasher: ~Copyable {
        private let ctx: OpaquePointer

        /// Creates a hasher ready for `update`.
        public init() {
            ctx = EVP_MD_CTX_new()!
            EVP_DigestInit_ex(ctx, fetchedSHA256, nil)
        }

        deinit { EVP_MD_CTX_free(ctx) }

        /// Absorbs bytes.
        public mutating func update(_ bytes: UnsafeRawBufferPointer) {
            if bytes.count > 0 { EVP_DigestUpdate(ctx, bytes.baseAddress, bytes.count) }
        }

        /// Absorbs a byte sequence, without copying when it is contiguous.
        public mutating func update<B: Sequence>(_ bytes: B) where B.Element == UInt8 {
            let done: Void? = bytes.withContiguousStorageIfAvailable { buf in
                update(UnsafeRawBufferPointer(buf))
            }
            if done == nil {
                let copy = Array(bytes)
                copy.withUnsafeBytes { update($0) }
            }
        }

        /// Absorbs a digest's 32 bytes.
        public mutating func update(_ digest: Digest) {
            digest.withUnsafeBytes { update($0) }
        }

        /// Returns the digest of everything absorbed and resets the state for a new message.
        public mutating func finalize() -> Digest {
            var out = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
            var len: UInt32 = 0
            let digest = withUnsafeMutableBytes(of: &out) { buf -> Digest in
                EVP_DigestFinal_ex(ctx, buf.baseAddress!.assumingMemoryBound(to: UInt8.self), &len)
                return Digest(UnsafeRawBufferPointer(buf))!
            }
            EVP_DigestInit_ex(ctx, fetchedSHA256, nil)
            return digest
        }
    }
}

/// MD5, kept only to derive the FastCDC reference gear table; never use it for integrity.
public enum LegacyMD5 {
    /// The 16-byte MD5 digest of `bytes`.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        var len: UInt32 = 0
        bytes.withUnsafeBytes { b in
            _ = EVP_Digest(b.baseAddress, b.count, &out, &len, fetchedMD5, nil)
        }
        return out
    }
}
