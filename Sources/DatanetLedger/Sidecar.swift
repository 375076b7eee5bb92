import DatanetCBOR
import DatanetCrypto
import DatanetStore

/// The erasable part of a contribution: file name and free metadata, kept outside the signed
/// body. The body holds SHA-256 of the sidecar's CBOR, whose random salt keeps the hash from
/// revealing guessable names; erasing the sidecar later leaves every id and proof valid.
/// CBOR: {0: salt (16 bytes), 1: file name, 2: {text key: text value}}.
public struct Sidecar: Sendable {
    public var salt: [UInt8]
    public var fileName: String
    public var metadata: [String: String]

    public init(fileName: String, metadata: [String: String]) {
        salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
        self.fileName = fileName
        self.metadata = metadata
    }

    public var encoded: [UInt8] {
        CBOR.map([
            .init(.unsigned(0), .bytes(salt)), .init(.unsigned(1), .string(fileName)),
            .init(.unsigned(2), .map(metadata.map { .init(.string($0.key), .string($0.value)) })),
        ]).encoded
    }

    /// What the contribution body names.
    public var hash: Digest { SHA256.hash(encoded) }
}

extension Ledger {
    /// Keeps a sidecar in this store (table `sidecars`, hash → bytes).
    public func storeSidecar(_ s: Sidecar) throws -> Digest {
        let h = s.hash
        try env.write { txn in try txn.put(sidecars, h, s.encoded) }
        return h
    }
}
