import DatanetCBOR
import DatanetCrypto
import DatanetObjects

/// The sequencer's immediate answer to a contribution it took in, as a CT log's SCT: "leaf
/// `index` of Datanet `datanet`, with leaf hash `leafHash`, holds record `record`". The next
/// checkpoint turns it into a proof. Signed over "datanet/v1/intake-promise" ‖ 0x00 ‖ Datanet ‖
/// u64 index ‖ leaf hash (schema/contexts.md).
public struct IntakePromise: Hashable, Sendable {
    public var datanet: DatanetID
    public var index: UInt64
    public var leafHash: Digest
    public var record: RecordID
    public var sequencer: PublicKey
    public var signature: Signature

    package static func message(datanet: DatanetID, index: UInt64, leafHash: Digest) -> [UInt8] {
        Array("datanet/v1/intake-promise".utf8) + [0] + datanet.bytes + BigEndian.bytes(index) + leafHash.bytes
    }

    package init(datanet: DatanetID, index: UInt64, leafHash: Digest, record: RecordID, key: SigningKey) throws {
        self.datanet = datanet; self.index = index; self.leafHash = leafHash; self.record = record
        sequencer = key.publicKey
        signature = try key.sign(Self.message(datanet: datanet, index: index, leafHash: leafHash))
    }

    /// True when the signature is the named sequencer's.
    public var isValid: Bool {
        sequencer.isValidSignature(signature, for: Self.message(datanet: datanet, index: index, leafHash: leafHash))
    }

    package var encoded: [UInt8] {
        var b = BodyBuilder()
        b.set(0, .bytes(datanet.bytes)); b.set(1, .unsigned(index)); b.set(2, .bytes(leafHash.bytes))
        b.set(3, .bytes(record.bytes)); b.set(4, .bytes(sequencer.bytes)); b.set(5, .bytes(signature.bytes))
        return b.encoded
    }

    package init(encoded: [UInt8]) throws {
        var f = try BodyFields(encoded, kind: "intake promise")
        datanet = try f.id(0, "datanet"); index = try f.uint(1, "index"); leafHash = try f.digest(2, "leaf hash")
        record = try f.id(3, "record"); sequencer = try f.publicKey(4, "sequencer")
        signature = try Signature(bytes: try f.bytes(5, "signature", wrong: "promise signature"))
        try f.finish()
    }
}
