import DatanetCrypto

/// Tag of `DatanetID`; never instantiated.
public enum DatanetIDTag {}

/// Tag of `RecordID`; never instantiated.
public enum RecordIDTag {}

/// The id of a Datanet: what every record, leaf, checkpoint origin and index key names it by.
/// It is its genesis record's id, but is kept apart from record ids so that the two are never
/// passed for each other; `init(genesis:)` and `genesis` are the only crossings.
public typealias DatanetID = ID<DatanetIDTag>

/// The id of a signed record (`Envelope.id`): contributions, reviews, policy records and the
/// rest, as reviews, decisions, tombstones and the pending queue name them.
public typealias RecordID = ID<RecordIDTag>

extension ID where Kind == DatanetIDTag {
    /// The Datanet a genesis record creates.
    @inlinable
    public init(genesis: RecordID) { self.init(genesis.digest) }

    /// The id of this Datanet's genesis record.
    @inlinable
    public var genesis: RecordID { RecordID(digest) }
}

/// Tag of `KeyID`; never instantiated.
public enum KeyIDTag {}

/// A public key's 32 bytes held inline, for hashing and index keys (reviewers counted, quotas
/// per author); `PublicKey` is the key itself, which every API takes.
public typealias KeyID = ID<KeyIDTag>

extension ID where Kind == KeyIDTag {
    /// The id of `key`: its 32 bytes.
    @inlinable
    public init(_ key: PublicKey) { self = key.withUnsafeBytes { ID($0)! } }
}
