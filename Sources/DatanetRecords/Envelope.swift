import DatanetCBOR
import DatanetCrypto
import DatanetObjects

/// The kinds of signed record (schema/records.cddl). The raw value is the `kind` string of the
/// envelope and part of every id and signing context.
public enum RecordKind: String, CaseIterable, Sendable {
    case genesis, contribution, review, policy
    case setSequencer = "set-sequencer"
    case continuation
    case tombstone
    case model
    case attribution
    case valuation

    /// The kind's bytes, as hashed into ids (made once per kind, not per record).
    package var contextBytes: [UInt8] { Self.contexts[self]!.id }
    /// "datanet/v1/" ‖ kind ‖ 0x00: what every signature of this kind starts with.
    package var signingContext: [UInt8] { Self.contexts[self]!.signing }

    private static let contexts: [RecordKind: (id: [UInt8], signing: [UInt8])] = Dictionary(uniqueKeysWithValues: allCases.map {
        ($0, (Array($0.rawValue.utf8), Array("datanet/v1/".utf8) + Array($0.rawValue.utf8) + [0]))
    })
}

/// A signed record as it travels and is stored: CBOR `[version, kind, body, sigs]`.
///
/// `body` is kept as the exact bytes received: the id and every signature are computed over
/// them, never over a re-encoding. The id does not cover the signatures, so adding a
/// signature (a curator quorum collecting) does not change what the record is.
public struct Envelope: Hashable, Sendable {
    /// The only version this build writes and reads.
    public static let version: UInt64 = 1
    /// Upper bound on an encoded envelope of every kind but `review` (bodies are small;
    /// content lives in the store).
    public static let maximumSize = 1 << 20
    /// Upper bound on an encoded review: room for one review of 100,000 contributions (33
    /// bytes an id), since a curator's batch review is sequenced once and cited by index.
    public static let maximumReviewSize = 4 << 20

    /// The bound on an encoded envelope of `kind`.
    public static func maximumSize(of kind: RecordKind) -> Int { kind == .review ? maximumReviewSize : maximumSize }

    public let kind: RecordKind
    /// The canonical CBOR map of the body, exactly as signed.
    public let body: [UInt8]
    /// (public key, signature) pairs, sorted by key, one per key.
    public private(set) var signatures: [(key: PublicKey, signature: Signature)]

    /// id = SHA-256("datanet/v1/id" ‖ 0x00 ‖ kind ‖ body). Unambiguous without a separator: the
    /// kind is ASCII and the body starts with a CBOR map head (0xa0–0xbb). Computed once, when
    /// the envelope is made or decoded: imports and sequencing ask for it several times a record.
    public let id: RecordID

    /// Wraps a body (already canonical CBOR) with no signatures yet.
    public init(kind: RecordKind, body: [UInt8]) {
        self.kind = kind
        self.body = body
        signatures = []
        id = Self.id(kind: kind, body: body)
    }

    /// The id of a record with this kind and body.
    public static func id(kind: RecordKind, body: [UInt8]) -> RecordID {
        var h = SHA256.Hasher()
        h.update(Self.idContext)
        h.update(kind.contextBytes)
        h.update(body)
        return RecordID(h.finalize())
    }

    private static let idContext = Array("datanet/v1/id".utf8) + [0]

    /// The bytes every signature covers: "datanet/v1/" ‖ kind ‖ 0x00 ‖ body (schema/contexts.md).
    public var signedMessage: [UInt8] {
        var m = kind.signingContext
        m += body
        return m
    }

    /// Adds (or replaces) this key's signature.
    public mutating func sign(with key: SigningKey) throws {
        let sig = try key.sign(signedMessage)
        signatures.removeAll { $0.key == key.publicKey }
        signatures.append((key.publicKey, sig))
        signatures.sort { $0.key < $1.key }
    }

    /// Adds an existing (key, signature) pair, keeping the list sorted.
    package mutating func add(_ pair: (key: PublicKey, signature: Signature)) {
        signatures.append(pair)
        signatures.sort { $0.key < $1.key }
    }

    /// The same record with only the signatures whose key `keep` accepts.
    package func keepingSignatures(where keep: (PublicKey) -> Bool) -> Envelope {
        var copy = self
        copy.signatures.removeAll { !keep($0.key) }
        return copy
    }

    /// The keys whose signatures verify; throws on the first that does not.
    public func verifiedSigners() throws(RecordError) -> [PublicKey] {
        let message = signedMessage
        for (key, sig) in signatures where !key.isValidSignature(sig, for: message) {
            throw .badSignature(publicKey: key.description)
        }
        return signatures.map(\.key)
    }

    /// The canonical encoding.
    public var encoded: [UInt8] {
        CBOR.array([
            .unsigned(Self.version), .text(Array(kind.rawValue.utf8)), .bytes(body),
            .array(signatures.map { .array([.bytes($0.key.bytes), .bytes($0.signature.bytes)]) }),
        ]).encoded
    }

    /// The body of an envelope of `kind`, read from its head without checking the rest (its
    /// signatures included): nil for anything else. For listings of records already checked.
    package static func body(of bytes: UnsafeRawBufferPointer, kind: RecordKind) -> UnsafeRawBufferPointer? {
        var s = CBOR.Scanner(bytes)
        guard (try? s.arrayCount()) == 4, (try? s.unsigned()) == version,
              let k = try? s.text(), k.elementsEqual(kind.rawValue.utf8) else { return nil }
        return try? s.bytes()
    }

    /// Strictly decodes an envelope: canonical CBOR of exactly this shape, a known version and
    /// kind, a body that is itself a canonical CBOR map, signatures sorted and one per key.
    /// Signatures are parsed, not verified (`verifiedSigners`).
    public init(encoded bytes: [UInt8]) throws(RecordError) {
        guard bytes.count <= Self.maximumReviewSize else { throw .malformed("envelope of \(bytes.count) bytes exceeds \(Self.maximumReviewSize)") }
        // Read from the buffer without building a tree: the whole item is checked by the
        // decoder's rules first, so a scanner error after that means an item of the wrong type.
        let parsed = bytes.withUnsafeBytes { buf in
            Result { () throws(RecordError) -> (RecordKind, [UInt8], [(key: PublicKey, signature: Signature)]) in
                do throws(CBORError) { try CBOR.Scanner.validate(buf) } catch { throw .cbor(error) }
                var s = CBOR.Scanner(buf)
                guard (try? s.arrayCount()) == 4 else { throw .malformed("envelope is not a 4-element array") }
                guard let version = try? s.unsigned() else { throw .malformed("version is not an unsigned integer") }
                guard version == Self.version else { throw .unsupportedVersion(version) }
                guard let kindBytes = try? s.text() else { throw .malformed("kind is not a text string") }
                let kindText = String(decoding: kindBytes, as: UTF8.self)
                guard let kind = RecordKind(rawValue: kindText) else { throw .unknownKind(kindText) }
                guard bytes.count <= Self.maximumSize(of: kind) else {
                    throw .malformed("\(kind.rawValue) envelope of \(bytes.count) bytes exceeds \(Self.maximumSize(of: kind))")
                }
                // The body's own canonical decoding is the typed layer's job (`Record(envelope)`, which
                // every trust boundary runs through `Record.verified`); here only its head is checked,
                // so an envelope is not decoded twice on the sequencer's hot path.
                guard let body = try? s.bytes() else { throw .malformed("body is not a byte string") }
                guard let head = body.first, (0xa0...0xbb).contains(head) else { throw .malformed("body is not a CBOR map") }
                guard let count = try? s.arrayCount() else { throw .malformed("signatures are not an array") }
                var sigs = [(key: PublicKey, signature: Signature)]()
                sigs.reserveCapacity(count)
                for _ in 0..<count {
                    guard (try? s.arrayCount()) == 2, let k = try? s.bytes(), let g = try? s.bytes(),
                          let key = PublicKey(k), let sig = Signature(g)
                    else { throw .malformed("a signature entry is not [32-byte key, 64-byte signature]") }
                    if let last = sigs.last, !(last.key < key) {
                        throw .malformed("signatures not sorted by key, or a key signs twice")
                    }
                    sigs.append((key, sig))
                }
                return (kind, Array(body), sigs)
            }
        }
        (kind, body, signatures) = try parsed.get()
        id = Self.id(kind: kind, body: body)
    }

    public static func == (a: Envelope, b: Envelope) -> Bool { a.encoded == b.encoded }
    public func hash(into h: inout Hasher) { h.combine(encoded) }
}
