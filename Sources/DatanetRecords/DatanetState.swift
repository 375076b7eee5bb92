import DatanetCBOR
import DatanetCrypto
import DatanetObjects

/// What a node knows of one Datanet's log: its size and the policy in force (cached in the
/// `state` table; derivable from the log).
public struct DatanetState: Sendable {
    public var id: DatanetID
    public var size: UInt64
    /// Index and leaf hash of the latest policy leaf: what every new leaf cites.
    public var policyIndex: UInt64
    public var policyLeafHash: Digest
    /// Id of the genesis or policy record in force: what the next policy record must name.
    public var policyRecord: RecordID
    public var policy: PolicyState

    package var encoded: [UInt8] {
        var b = BodyBuilder()
        b.set(0, .bytes(id.bytes))
        b.set(1, .unsigned(size))
        b.set(2, .unsigned(policyIndex))
        b.set(3, .bytes(policyLeafHash.bytes))
        b.set(4, .bytes(policyRecord.bytes))
        b.set(5, policy.item)
        return b.encoded
    }

    package init(id: DatanetID, size: UInt64, policyIndex: UInt64, policyLeafHash: Digest, policyRecord: RecordID, policy: PolicyState) {
        self.id = id; self.size = size; self.policyIndex = policyIndex; self.policyLeafHash = policyLeafHash
        self.policyRecord = policyRecord; self.policy = policy
    }

    package init(encoded: [UInt8]) throws(RecordError) {
        var f = try BodyFields(encoded, kind: "state")
        id = try f.id(0, "datanet")
        size = try f.uint(1, "size")
        policyIndex = try f.uint(2, "policy index")
        policyLeafHash = try f.digest(3, "policy leaf")
        policyRecord = try f.id(4, "policy record")
        policy = try PolicyState(fields: try f.fields(5, "policy", kind: "policy state"))
        try f.finish()
    }
}
