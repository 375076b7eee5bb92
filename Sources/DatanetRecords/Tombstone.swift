import DatanetCBOR
import DatanetCrypto
import DatanetObjects

/// `tombstone`: a contribution withdrawn by its author, or taken down by the owner or a curator
/// quorum. Sequenced as a tombstone leaf; after it, honest replicas drop the content and the
/// sidecar, while the contribution's id, its leaves and every proof stay valid (log.md).
public struct Tombstone: Hashable, Sendable {
    public var datanet: DatanetID
    public var contribution: RecordID
    /// False: a withdrawal, signed by the contribution's author. True: a takedown, signed by
    /// the owner or a quorum of the curators in force.
    public var takedown: Bool
    public var reason: String

    public init(datanet: DatanetID, contribution: RecordID, takedown: Bool, reason: String) {
        self.datanet = datanet; self.contribution = contribution; self.takedown = takedown; self.reason = reason
    }

    public var body: [UInt8] {
        var b = BodyBuilder()
        b.set(0, .bytes(datanet.bytes))
        b.set(1, .bytes(contribution.bytes))
        b.set(2, .unsigned(takedown ? 1 : 0))
        b.set(3, .string(reason))
        return b.encoded
    }

    public init(body: [UInt8]) throws(RecordError) {
        var f = try BodyFields(body, kind: "tombstone")
        datanet = try f.id(0, "datanet")
        contribution = try f.id(1, "contribution")
        takedown = try f.uint(2, "takedown", max: 1) == 1
        reason = try f.text(3, "reason", maxBytes: 4096)
        try f.finish()
    }

    /// Whether `signers` may sign this tombstone for a contribution by `author` under `policy`.
    public func isAuthorized<S: Sequence<PublicKey>>(signers: S, author: PublicKey, policy: PolicyState) -> Bool {
        policy.authorizesTombstone(signers, takedown: takedown, author: author)
    }
}
