import DatanetCrypto
@testable import DatanetRecords
import Testing

/// The rules of a policy state (PolicyRules.swift), each asked by the sequencer, the replay,
/// the receipt checker and the CLI: checked here against the rules as schema/curation.md and
/// schema/log.md state them.
@Suite struct PolicyRulesTests {
    let owner, sequencer, a, b, c, reader, outsider: PublicKey

    init() throws {
        (owner, sequencer, a, b, c, reader, outsider) = try (SigningKey().publicKey, SigningKey().publicKey, SigningKey().publicKey,
                                                             SigningKey().publicKey, SigningKey().publicKey, SigningKey().publicKey,
                                                             SigningKey().publicKey)
    }

    func policy(quorum: UInt64 = 2, contributors: [PublicKey]? = nil, readers: [PublicKey]? = nil) -> PolicyState {
        PolicyState(name: "p", owner: owner, sequencer: sequencer, curators: [a, b, c], quorum: quorum, contributors: contributors,
                    readers: readers, maxPendingProposals: 10, maxPendingBytes: 10)
    }

    @Test func whoMayContributeReadAndReview() {
        #expect(policy().mayContribute(outsider))
        #expect(policy(contributors: [a]).mayContribute(a) && !policy(contributors: [a]).mayContribute(outsider))
        let closed = policy(readers: [reader])
        for k in [reader, a, b, c, owner, sequencer] { #expect(closed.mayRead(k)) }
        #expect(!closed.mayRead(outsider) && policy().mayRead(outsider))
        #expect(policy().mayReview(a) && !policy().mayReview(owner) && !policy().mayReview(outsider))
    }

    @Test func whichSignaturesAuthorize() {
        let p = policy(quorum: 2)
        #expect(p.authorizesGovernance([owner]))
        #expect(p.authorizesGovernance([a, b]) && !p.authorizesGovernance([a]) && !p.authorizesGovernance([a, outsider, sequencer]))
        #expect(p.authorizesContinuation([owner]) && !p.authorizesContinuation([a, b, c]))
        #expect(p.authorizesTombstone([outsider], takedown: false, author: outsider))
        #expect(!p.authorizesTombstone([owner], takedown: false, author: outsider))
        #expect(p.authorizesTombstone([a, c], takedown: true, author: outsider) && !p.authorizesTombstone([outsider], takedown: true, author: outsider))
    }

    @Test func quotas() {
        let p = policy() // at most 10 proposals and 10 bytes undecided per author
        #expect(p.withinQuota(count: 0, bytes: 0, adding: 10) && !p.withinQuota(count: 0, bytes: 0, adding: 11))
        #expect(p.withinQuota(count: 9, bytes: 5, adding: 5) && !p.withinQuota(count: 10, bytes: 0, adding: 0))
        #expect(!p.withinQuota(count: 0, bytes: 6, adding: 5) && !p.withinQuota(count: 0, bytes: 0, adding: .max))
    }

    /// Every row of the curation table in schema/curation.md: (accepts, rejects, curators, quorum, outcome).
    @Test(arguments: [
        (2, 0, 3, 2, true as Bool?), (1, 0, 3, 2, nil), (1, 1, 3, 2, nil), (0, 2, 3, 2, false),
        (1, 2, 3, 2, false), (0, 1, 2, 2, false), (1, 0, 1, 1, true), (0, 1, 1, 1, false), (2, 1, 3, 2, true),
    ])
    func curationTable(accepts: Int, rejects: Int, curators: Int, quorum: UInt64, outcome: Bool?) throws {
        let keys = try (0..<curators).map { _ in try SigningKey().publicKey }
        let p = PolicyState(name: "t", owner: owner, sequencer: owner, curators: keys, quorum: quorum, contributors: nil,
                            readers: nil, maxPendingProposals: 1, maxPendingBytes: 1)
        #expect(p.outcome(accepts: accepts, rejects: rejects) == outcome)
        #expect(p.reviewsNeeded(toAccept: true) == Int(quorum) && p.reviewsNeeded(toAccept: false) == curators - Int(quorum) + 1)
    }
}
