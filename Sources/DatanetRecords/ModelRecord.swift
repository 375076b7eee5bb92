import DatanetCBOR
import DatanetCrypto
import DatanetObjects

/// `model`: binds a model artifact (a stored blob) to a checkpoint of a Datanet — the training
/// set it was built from — with the trainer, its configuration and what the training set held.
/// Signed by its builder (the owner, a curator or a `builder` of the policy in force) and
/// sequenced as a `model` leaf (schema/records.md, model.md).
public struct ModelRecord: Hashable, Sendable {
    public var datanet: DatanetID
    public var builder: PublicKey
    /// A one-line name, unique by convention only (`model ls` shows every model of a name).
    public var name: String
    /// The checkpoint the training set was drawn from: (size, root).
    public var checkpointSize: UInt64
    public var checkpointRoot: Digest
    /// The trainer's name and version ("datanet-knn" "1"; an imported model's own).
    public var trainer: String
    public var trainerVersion: String
    /// The trainer's configuration as (key, value) pairs, keys strictly ascending.
    public var configuration: [(key: String, value: String)]
    /// The artifact: a blob of the store and its size in bytes.
    public var artifact: ObjectID
    public var artifactSize: UInt64
    public var training: TrainingCounts
    /// Unix milliseconds when the builder signed it.
    public var createdAt: UInt64
    /// The model this one was derived from (a fine-tune of it, say): its record id.
    public var base: RecordID?

    /// What the training set held, and the log size whose tombstones it left out.
    public struct TrainingCounts: Hashable, Sendable {
        /// Contributions whose content is in the set, and the examples (or documents) read.
        public var contributions: UInt64, examples: UInt64
        /// Bytes of the files read.
        public var bytes: UInt64
        /// The licenses of the contributions in the set, sorted and unique.
        public var licenses: [String]
        /// Contributions under a tombstone in the first `tombstonesBefore` leaves were left out;
        /// a tombstone at this index or later names content the model was trained on.
        public var tombstonesBefore: UInt64
        public init(contributions: UInt64, examples: UInt64, bytes: UInt64, licenses: [String], tombstonesBefore: UInt64) {
            (self.contributions, self.examples, self.bytes) = (contributions, examples, bytes)
            // Sorted and made unique by their UTF-8 bytes, as the encoding orders them.
            var unique = [[UInt8]]()
            for l in licenses.map({ Array($0.utf8) }).sorted(by: { $0.lexicographicallyPrecedes($1) }) where unique.last != l { unique.append(l) }
            (self.licenses, self.tombstonesBefore) = (unique.map { String(decoding: $0, as: UTF8.self) }, tombstonesBefore)
        }
    }

    /// Bounds on the free-form fields (each checked on decode, so a record stays small).
    public static let maximumName = 256, maximumTrainer = 64, maximumLicenses = 256

    public init(datanet: DatanetID, builder: PublicKey, name: String, checkpointSize: UInt64, checkpointRoot: Digest,
                trainer: String, trainerVersion: String, configuration: [(key: String, value: String)],
                artifact: ObjectID, artifactSize: UInt64, training: TrainingCounts, createdAt: UInt64, base: RecordID? = nil) {
        (self.datanet, self.builder, self.name) = (datanet, builder, name)
        (self.checkpointSize, self.checkpointRoot) = (checkpointSize, checkpointRoot)
        (self.trainer, self.trainerVersion) = (trainer, trainerVersion)
        self.configuration = configuration.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        (self.artifact, self.artifactSize, self.training) = (artifact, artifactSize, training)
        (self.createdAt, self.base) = (createdAt, base)
    }

    public static func == (a: Self, b: Self) -> Bool { a.body == b.body }
    public func hash(into h: inout Hasher) { h.combine(body) }

    /// The configuration value of `key`, if set.
    public func setting(_ key: String) -> String? { configuration.first { $0.key == key }?.value }

    public var body: [UInt8] {
        var b = BodyBuilder()
        b.set(0, .bytes(datanet.bytes))
        b.set(1, .bytes(builder.bytes))
        b.set(2, .string(name))
        b.set(3, .array([.unsigned(checkpointSize), .bytes(checkpointRoot.bytes)]))
        b.set(4, .string(trainer))
        b.set(5, .string(trainerVersion))
        b.set(6, textPairs(configuration))
        b.set(7, .array([.bytes(artifact.bytes), .unsigned(artifactSize)]))
        var t = BodyBuilder()
        t.set(1, .unsigned(training.contributions))
        t.set(2, .unsigned(training.examples))
        t.set(3, .unsigned(training.bytes))
        t.set(4, .array(training.licenses.map { .string($0) }))
        t.set(5, .unsigned(training.tombstonesBefore))
        b.set(8, t.item)
        b.set(9, .unsigned(createdAt))
        if let base { b.set(10, .bytes(base.bytes)) }
        return b.encoded
    }

    public init(body: [UInt8]) throws(RecordError) {
        var f = try BodyFields(body, kind: "model")
        datanet = try f.id(0, "datanet")
        builder = try f.publicKey(1, "builder")
        name = try f.text(2, "name", maxBytes: Self.maximumName)
        (checkpointSize, checkpointRoot) = try f.field(3, "checkpoint", wrong: { k in "\(k) field 3 (checkpoint) is not [size, 32-byte root]" }) {
            s throws(CBORError) -> (UInt64, Digest)? in
            guard try s.arrayCount() == 2 else { return nil }
            let size = try s.unsigned()
            return Digest(try s.bytes()).map { (size, $0) }
        }
        trainer = try f.text(4, "trainer", maxBytes: Self.maximumTrainer)
        trainerVersion = try f.text(5, "trainer version", maxBytes: Self.maximumTrainer)
        configuration = try f.textPairs(6, "configuration")
        (artifact, artifactSize) = try f.field(7, "artifact", wrong: { k in "\(k) field 7 (artifact) is not [32-byte blob id, size]" }) {
            s throws(CBORError) -> (ObjectID, UInt64)? in
            guard try s.arrayCount() == 2, let id = Digest(try s.bytes()) else { return nil }
            return (ObjectID(id), try s.unsigned())
        }
        var t = try f.fields(8, "training", kind: "model training summary")
        let contributions = try t.uint(1, "contributions"), examples = try t.uint(2, "examples"), bytes = try t.uint(3, "bytes")
        let licenses = try t.field(4, "licenses", wrong: { k in "\(k) field 4 (licenses) is not at most \(Self.maximumLicenses) texts, sorted and unique" }) {
            s throws(CBORError) -> [String]? in
            let n = try s.arrayCount()
            guard n <= Self.maximumLicenses else { return nil }
            var out = [[UInt8]]()
            for _ in 0..<n {
                let l = Array(try s.text())
                guard !l.isEmpty, l.count <= BodyFields.maximumPairBytes else { return nil }
                if let last = out.last, !last.lexicographicallyPrecedes(l) { return nil }
                out.append(l)
            }
            return out.map { String(decoding: $0, as: UTF8.self) }
        }
        training = TrainingCounts(contributions: contributions, examples: examples, bytes: bytes, licenses: licenses,
                                  tombstonesBefore: try t.uint(5, "tombstones before"))
        try t.finish()
        createdAt = try f.uint(9, "created-at")
        base = try f.optional(10, wrong: "model field 10 (base) is not a 32-byte record id") { s throws(CBORError) in Digest(try s.bytes()).map(RecordID.init) }
        try f.finish()
        guard !name.isEmpty, !trainer.isEmpty else { throw .malformed("model has an empty name or trainer") }
        guard checkpointSize >= 1 else { throw .malformed("model names checkpoint size 0; a checkpoint holds at least the genesis") }
    }
}
