import DatanetCrypto

/// Every rule a policy state decides, in one place (schema/curation.md, schema/log.md): who may
/// contribute, read and review; which signatures authorize a policy change, a key handoff, a
/// takedown, a withdrawal or a continuation; how many counted reviews decide. The sequencer,
/// the replay (audit, import, sync), the receipt checker and the CLI all ask these.
extension PolicyState {
    /// An open Datanet, or a key on its allow list.
    public func mayContribute(_ author: PublicKey) -> Bool { contributors?.contains(author) ?? true }

    /// A public Datanet: anyone. A private one: its readers, curators, owner and sequencer (what
    /// a sealed bundle may be sealed to).
    public func mayRead(_ key: PublicKey) -> Bool {
        guard let readers else { return true }
        return readers.contains(key) || curators.contains(key) || key == owner || key == sequencer
    }

    /// Whether an author holding `count` undecided proposals of `bytes` claimed bytes may have
    /// one more of `size` bytes taken in. The size is the author's claim: compared without an
    /// addition that could overflow.
    public func withinQuota(count: UInt64, bytes: UInt64, adding size: UInt64) -> Bool {
        count < maxPendingProposals && size <= maxPendingBytes && bytes <= maxPendingBytes - size
    }

    /// Only curators in force review; other keys' reviews are refused and never counted.
    public func mayReview(_ reviewer: PublicKey) -> Bool { curators.contains(reviewer) }

    /// Who may register a model: the owner, a curator or a builder in force.
    public func mayBuild(_ key: PublicKey) -> Bool { key == owner || curators.contains(key) || builders.contains(key) }

    /// The curators in force among `signers`.
    public func curatorCount<S: Sequence<PublicKey>>(_ signers: S) -> Int { signers.reduce(0) { $0 + (curators.contains($1) ? 1 : 0) } }

    /// A policy change, a key handoff or a takedown: the owner's signature, or a quorum of the
    /// curators in force.
    public func authorizesGovernance<S: Sequence<PublicKey>>(_ signers: S) -> Bool {
        var curatorsSigning = 0
        for s in signers {
            if s == owner { return true }
            if curators.contains(s) { curatorsSigning += 1 }
        }
        return UInt64(curatorsSigning) >= quorum
    }

    /// A continuation (replacing a lost sequencer key): the owner's signature alone.
    public func authorizesContinuation<S: Sequence<PublicKey>>(_ signers: S) -> Bool { signers.contains(owner) }

    /// A withdrawal is its author's; a takedown is governance.
    public func authorizesTombstone<S: Sequence<PublicKey>>(_ signers: S, takedown: Bool, author: PublicKey) -> Bool {
        takedown ? authorizesGovernance(signers) : signers.contains(author)
    }

    /// A `policy` record may change anything but the sequencer: only `set-sequencer` and
    /// `continuation` hand that key over, at a leaf every verifier derives the key from.
    public func keepsSequencer(_ next: PolicyState) -> Bool { next.sequencer == sequencer }

    /// Whether a signature by `key` on `record` can count for anything under this policy: the
    /// author of a contribution, the reviewer of a review, the owner or a curator on a policy
    /// change, handoff or takedown, the owner on a continuation, and on a tombstone also the
    /// withdrawn contribution's `author`. Other signatures are dropped where records enter,
    /// so no one can pad a record others must carry (at most one signature per role holder).
    public func mayCountSignature(by key: PublicKey, on record: Record, author: PublicKey? = nil) -> Bool {
        switch record {
        case .genesis(let g): key == g.policy.owner
        case .contribution(let c): key == c.author
        case .review(let r): key == r.reviewer
        case .policy, .setSequencer: key == owner || curators.contains(key)
        case .continuation: key == owner
        case .tombstone: key == owner || curators.contains(key) || key == author
        case .model(let m): key == m.builder
        case .attribution(let a): key == a.signer
        case .valuation(let v): key == v.signer
        }
    }

    /// Distinct counted curators needed to accept (the quorum) or to reject (enough that the
    /// quorum can no longer be reached: curators − quorum + 1).
    public func reviewsNeeded(toAccept: Bool) -> Int {
        toAccept ? Int(clamping: quorum) : curators.count - Int(clamping: quorum) + 1
    }

    /// The outcome given distinct counted curators accepting and rejecting: accepted, rejected,
    /// or nil while undecided.
    public func outcome(accepts: Int, rejects: Int) -> Bool? {
        if accepts >= reviewsNeeded(toAccept: true) { return true }
        if rejects >= reviewsNeeded(toAccept: false) { return false }
        return nil
    }
}
