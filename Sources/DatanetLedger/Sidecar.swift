import DatanetCBOR
import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// The erasable part of a contribution: its label, file name and free metadata, kept outside
/// the signed body. The body holds SHA-256 of the sidecar's CBOR, whose random salt keeps the
/// hash from revealing guessable names; erasing the sidecar later (a tombstone) leaves every id
/// and proof valid. CBOR: {0: salt (16 bytes), 1: file name, 2: {text key: text value}, 3: label}.
public struct Sidecar: Sendable, Equatable {
    /// Encoded sidecars larger than this are refused (made here, or received in a bundle).
    public static let maximumSize = 64 << 10
    public var salt: [UInt8]
    public var label: String
    public var fileName: String
    public var metadata: [String: String]

    public init(label: String, fileName: String, metadata: [String: String]) {
        salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
        self.label = label
        self.fileName = fileName
        self.metadata = metadata
    }

    public var encoded: [UInt8] {
        var b = BodyBuilder()
        b.set(0, .bytes(salt))
        b.set(1, .string(fileName))
        b.set(2, .map(metadata.map { .init(.string($0.key), .string($0.value)) }))
        b.set(3, .string(label))
        return b.encoded
    }

    /// Decodes a sidecar strictly (the bytes its contribution's hash names).
    public init(encoded: [UInt8]) throws(RecordError) {
        guard encoded.count <= Self.maximumSize else { throw .malformed("sidecar of \(encoded.count) bytes exceeds \(Self.maximumSize)") }
        var f = try BodyFields(encoded, kind: "sidecar")
        salt = try f.bytes(0, "salt", count: 16, wrong: "sidecar salt is not 16 bytes")
        fileName = try f.text(1, "file name", maxBytes: 4096)
        guard case .map(let entries) = try f.item(2, "metadata"), entries.count <= 256 else { throw .malformed("sidecar metadata is not a map") }
        var m = [String: String]()
        for e in entries {
            guard case .text(let k) = e.key, case .text(let v) = e.value else { throw .malformed("sidecar metadata is not text to text") }
            m[String(decoding: k, as: UTF8.self)] = String(decoding: v, as: UTF8.self)
        }
        metadata = m
        label = try f.text(3, "label", maxBytes: 1024)
        try f.finish()
    }

    /// Reads a sidecar laid out as this build writes it straight from the buffer, without the
    /// canonical-form check of `init(encoded:)`; nil for any other layout. For listings of
    /// sidecars this store checked against their hash when it stored them.
    static func scanned(_ bytes: UnsafeRawBufferPointer) -> Sidecar? {
        var s = CBOR.Scanner(bytes)
        func key(_ k: UInt64) -> Bool { (try? s.unsigned()) == k }
        func text(_ max: Int) -> String? {
            guard let t = try? s.text(), t.count <= max else { return nil }
            return String(decoding: t, as: UTF8.self)
        }
        guard bytes.count <= maximumSize, (try? s.mapCount()) == 4, key(0), let salt = try? s.bytes(), salt.count == 16,
              key(1), let fileName = text(4096), key(2), let n = try? s.mapCount(), n <= 256 else { return nil }
        var metadata = [String: String]()
        for _ in 0..<n {
            guard let k = text(.max), let v = text(.max) else { return nil }
            metadata[k] = v
        }
        guard key(3), let label = text(1024), s.isAtEnd else { return nil }
        return Sidecar(salt: Array(salt), label: label, fileName: fileName, metadata: metadata)
    }

    private init(salt: [UInt8], label: String, fileName: String, metadata: [String: String]) {
        (self.salt, self.label, self.fileName, self.metadata) = (salt, label, fileName, metadata)
    }

    /// What the contribution body names.
    public var hash: Digest { SHA256.hash(encoded) }
}

extension Ledger {

    /// Keeps a sidecar in this store (table `sidecars`, hash → bytes).
    public func storeSidecar(_ s: Sidecar) throws -> Digest {
        try env.write { txn in try storeSidecar(txn, s) }
    }

    func storeSidecar(_ txn: Transaction, _ s: Sidecar) throws -> Digest {
        let bytes = s.encoded
        guard bytes.count <= Sidecar.maximumSize else {
            throw LedgerRefusal.tooLong(field: "label, file name and metadata", bytes: bytes.count, maximum: Sidecar.maximumSize)
        }
        let h = SHA256.hash(bytes)
        try txn.put(sidecars, h, bytes)
        return h
    }

    /// Proposes a contribution and keeps its sidecar in one transaction, so `gc` can never
    /// see the sidecar without the record that names it.
    @discardableResult
    public func propose(_ envelope: Envelope, sidecar: Sidecar) throws -> RecordID {
        try env.write { txn in
            guard case .contribution(let c) = try Record.verified(envelope), c.sidecar == sidecar.hash else {
                throw LedgerRefusal.notProposable("record \(envelope.id.hex) is not a contribution naming this sidecar")
            }
            _ = try storeSidecar(txn, sidecar)
            return try propose(txn, envelope, .contribution(c))
        }
    }
}
