import DatanetCBOR
import DatanetCrypto
import DatanetObjects

/// Each contribution's amount in an attribution (parts per 10^9, summing to exactly 10^9, or
/// no entries when nothing earns credit) or a valuation (fixed point, units of 10^-12): CBOR
/// `[* [contribution id, int]]` in intake order, each id once. Held in the record, or — when
/// longer than `inlineLimit` — as a blob of exactly that encoding the record names with its
/// count, so records stay under the envelope bound (schema/valuation.md "Records").
public struct CreditList: Hashable, Sendable {
    public var entries: [(contribution: RecordID, amount: Int64)]
    /// Entries a record holds itself; longer lists go to a blob.
    public static let inlineLimit = 10_000

    public init(_ entries: [(contribution: RecordID, amount: Int64)]) { self.entries = entries }

    public static func == (a: Self, b: Self) -> Bool { a.encoded == b.encoded }
    public func hash(into h: inout Hasher) { h.combine(encoded) }

    var item: CBOR {
        .array(entries.map { .array([.bytes($0.contribution.bytes), $0.amount >= 0 ? .unsigned(UInt64($0.amount)) : .negative(UInt64(-1 - $0.amount))]) })
    }
    /// The canonical encoding (what a blob holding the list holds).
    public var encoded: [UInt8] { item.encoded }

    /// Strictly decodes a list's encoding (a blob's bytes); `shares` also requires amounts of at
    /// least 0 summing to exactly 10^9 (or no entries).
    public init(encoded bytes: [UInt8], shares: Bool) throws(RecordError) {
        let scanned = bytes.withUnsafeBytes { b -> (Self, Int)? in
            var s = CBOR.Scanner(b)
            guard let list = (try? Self.read(&s)) ?? nil else { return nil }
            return (list, s.offset)
        }
        guard let read = scanned else { throw .malformed("a credit list is not [* [32-byte id, integer]] with each id once") }
        guard read.1 == bytes.count else { throw .malformed("a credit list has trailing bytes") }
        guard read.0.encoded == bytes else { throw .malformed("a credit list is not in canonical form") }
        try read.0.check(shares: shares)
        self = read.0
    }

    static func read(_ s: inout CBOR.Scanner) throws(CBORError) -> Self? {
        let n = try s.arrayCount()
        var out = [(contribution: RecordID, amount: Int64)]()
        out.reserveCapacity(min(n, 1 << 16))
        var seen = Set<RecordID>()
        for _ in 0..<n {
            guard try s.arrayCount() == 2, let id = Digest(try s.bytes()).map(RecordID.init), let amount = try s.int64(),
                  seen.insert(id).inserted else { return nil }
            out.append((id, amount))
        }
        return Self(out)
    }

    /// Shares: each at least 0 and at most 10^9, summing to exactly 10^9 unless empty.
    func check(shares: Bool) throws(RecordError) {
        guard shares else { return }
        var sum: Int64 = 0
        for e in entries {
            guard e.amount >= 0, e.amount <= 1_000_000_000 else { throw .malformed("a share of \(e.amount) parts per 10^9 is outside 0…10^9") }
            sum += e.amount
        }
        guard entries.isEmpty || sum == 1_000_000_000 else { throw .malformed("shares sum to \(sum) parts per 10^9, not 10^9") }
    }
}

/// Where a record's credit list is: in the record, or in a blob of the store.
public enum Credits: Hashable, Sendable {
    case inline(CreditList)
    /// A blob holding `CreditList.encoded`, and how many entries it holds.
    case blob(ObjectID, count: UInt64)
}

extension BodyFields {
    /// Fields `inline` or `blob` of a record, exactly one present.
    mutating func credits(inline: UInt64, blob: UInt64, shares: Bool) throws(RecordError) -> Credits {
        let list = try optional(inline, wrong: "field \(inline) (credits) is not [* [32-byte id, integer]] with each id once") {
            s throws(CBORError) in try CreditList.read(&s)
        }
        let ref = try optional(blob, wrong: "field \(blob) (credits blob) is not [32-byte blob id, count]") { s throws(CBORError) -> (ObjectID, UInt64)? in
            guard try s.arrayCount() == 2, let id = Digest(try s.bytes()) else { return nil }
            return (ObjectID(id), try s.unsigned())
        }
        switch (list, ref) {
        case (let l?, nil):
            try l.check(shares: shares)
            return .inline(l)
        case (nil, let r?): return .blob(r.0, count: r.1)
        default: throw .malformed("a record holds its credits in exactly one of fields \(inline) and \(blob)")
        }
    }
}

extension BodyBuilder {
    mutating func set(credits: Credits, inline: UInt64, blob: UInt64) {
        switch credits {
        case .inline(let l): set(inline, l.item)
        case .blob(let id, let count): set(blob, .array([.bytes(id.bytes), .unsigned(count)]))
        }
    }
}

/// `attribution`: which contributions an output of a model (or any text, for span matching)
/// came from, as shares in parts per 10^9. Signed by whoever computed it; kept in the store
/// that made it (not sequenced). Schema: records.md, valuation.md "Records".
public struct AttributionRecord: Hashable, Sendable {
    public var datanet: DatanetID
    public var signer: PublicKey
    /// "knn" (attributed inference), "spans" (the text attribution issue).
    public var method: String
    public var parameters: [(key: String, value: String)]
    /// SHA-256 of the input, and of the output attributed (kNN: the predicted label's UTF-8).
    public var input: Digest, output: Digest
    /// The model record, when a model made the output.
    public var model: RecordID?
    public var credits: Credits
    public var createdAt: UInt64

    public init(datanet: DatanetID, signer: PublicKey, method: String, parameters: [(key: String, value: String)], input: Digest,
                output: Digest, model: RecordID?, credits: Credits, createdAt: UInt64) {
        (self.datanet, self.signer, self.method) = (datanet, signer, method)
        self.parameters = parameters.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        (self.input, self.output, self.model, self.credits, self.createdAt) = (input, output, model, credits, createdAt)
    }

    public static func == (a: Self, b: Self) -> Bool { a.body == b.body }
    public func hash(into h: inout Hasher) { h.combine(body) }

    public var body: [UInt8] {
        var b = BodyBuilder()
        b.set(0, .bytes(datanet.bytes))
        b.set(1, .bytes(signer.bytes))
        b.set(2, .string(method))
        b.set(3, textPairs(parameters))
        b.set(4, .bytes(input.bytes))
        b.set(5, .bytes(output.bytes))
        if let model { b.set(6, .bytes(model.bytes)) }
        b.set(credits: credits, inline: 7, blob: 8)
        b.set(9, .unsigned(createdAt))
        return b.encoded
    }

    public init(body: [UInt8]) throws(RecordError) {
        var f = try BodyFields(body, kind: "attribution")
        datanet = try f.id(0, "datanet")
        signer = try f.publicKey(1, "signer")
        method = try f.text(2, "method", maxBytes: 64)
        parameters = try f.textPairs(3, "parameters")
        input = try f.digest(4, "input hash")
        output = try f.digest(5, "output hash")
        model = try f.optional(6, wrong: "attribution field 6 (model) is not a 32-byte record id") { s throws(CBORError) in Digest(try s.bytes()).map(RecordID.init) }
        credits = try f.credits(inline: 7, blob: 8, shares: true)
        createdAt = try f.uint(9, "created-at")
        try f.finish()
        guard !method.isEmpty else { throw .malformed("attribution has an empty method") }
    }
}

/// `valuation`: each contribution's value to a model against a test set (KNN-Shapley: the sum
/// of its examples' values), as fixed point in units of 10^-12. Signed by whoever computed it;
/// kept in the store that made it.
public struct ValuationRecord: Hashable, Sendable {
    public var datanet: DatanetID
    public var signer: PublicKey
    public var model: RecordID
    /// "knn-shapley".
    public var method: String
    public var parameters: [(key: String, value: String)]
    /// SHA-256 of the test file's bytes.
    public var testSet: Digest
    public var values: Credits
    public var createdAt: UInt64

    public init(datanet: DatanetID, signer: PublicKey, model: RecordID, method: String, parameters: [(key: String, value: String)],
                testSet: Digest, values: Credits, createdAt: UInt64) {
        (self.datanet, self.signer, self.model, self.method) = (datanet, signer, model, method)
        self.parameters = parameters.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        (self.testSet, self.values, self.createdAt) = (testSet, values, createdAt)
    }

    public static func == (a: Self, b: Self) -> Bool { a.body == b.body }
    public func hash(into h: inout Hasher) { h.combine(body) }

    public var body: [UInt8] {
        var b = BodyBuilder()
        b.set(0, .bytes(datanet.bytes))
        b.set(1, .bytes(signer.bytes))
        b.set(2, .bytes(model.bytes))
        b.set(3, .string(method))
        b.set(4, textPairs(parameters))
        b.set(5, .bytes(testSet.bytes))
        b.set(credits: values, inline: 6, blob: 7)
        b.set(8, .unsigned(createdAt))
        return b.encoded
    }

    public init(body: [UInt8]) throws(RecordError) {
        var f = try BodyFields(body, kind: "valuation")
        datanet = try f.id(0, "datanet")
        signer = try f.publicKey(1, "signer")
        model = try f.id(2, "model")
        method = try f.text(3, "method", maxBytes: 64)
        parameters = try f.textPairs(4, "parameters")
        testSet = try f.digest(5, "test set hash")
        values = try f.credits(inline: 6, blob: 7, shares: false)
        createdAt = try f.uint(8, "created-at")
        try f.finish()
        guard !method.isEmpty else { throw .malformed("valuation has an empty method") }
    }

    /// A value in units of 10^-12, rounded half to even (nil past Int64).
    public static func fixedPoint(_ v: Double) -> Int64? {
        let scaled = (v * 1e12).rounded(.toNearestOrEven)
        guard scaled.isFinite, scaled >= -9.223372036854775e18, scaled <= 9.223372036854775e18 else { return nil }
        return Int64(scaled)
    }
}

/// `(key, value)` text pairs as a CBOR list, keys strictly ascending by UTF-8 bytes.
package func textPairs(_ pairs: [(key: String, value: String)]) -> CBOR {
    .array(pairs.map { .array([.string($0.key), .string($0.value)]) })
}

extension BodyFields {
    /// Bounds on a list of text pairs (configurations and parameters).
    package static let maximumPairs = 64, maximumPairBytes = 256

    /// At most 64 `[key, value]` text pairs, key 1–256 bytes and value 0–256, keys strictly
    /// ascending by UTF-8 bytes.
    package mutating func textPairs(_ key: UInt64, _ name: String) throws(RecordError) -> [(key: String, value: String)] {
        try field(key, name, wrong: { k in
            "\(k) field \(key) (\(name)) is not at most \(Self.maximumPairs) [key, value] text pairs of at most \(Self.maximumPairBytes) bytes, keys strictly ascending"
        }) { s throws(CBORError) -> [(key: String, value: String)]? in
            let n = try s.arrayCount()
            guard n <= Self.maximumPairs else { return nil }
            var out = [(key: String, value: String)]()
            var last: [UInt8]?
            for _ in 0..<n {
                guard try s.arrayCount() == 2 else { return nil }
                let k = Array(try s.text()), v = Array(try s.text())
                guard !k.isEmpty, k.count <= Self.maximumPairBytes, v.count <= Self.maximumPairBytes else { return nil }
                if let last, !last.lexicographicallyPrecedes(k) { return nil }
                last = k
                out.append((String(decoding: k, as: UTF8.self), String(decoding: v, as: UTF8.self)))
            }
            return out
        }
    }
}
