import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import DatanetTestSupport
import Foundation
import Testing

/// Trust model, item 2: `pin` and `verify` remember the newest checkpoint seen of a pinned
/// Datanet, and every later receipt must agree with it; a fork is reported even where no log
/// is held (trust on first use, as Go's checksum-database client does).
@Suite struct TrustOnFirstUseTests {
    typealias World = LedgerTests.World

    /// A Datanet whose sequencer key was handed over (leaf 2) and a contribution taken in by the
    /// new key (leaf 3): returns the world, the new key and that contribution.
    static func handedOver() throws -> (World, SigningKey, Envelope) {
        let w = try World(quorum: 1)
        try w.ledger.propose(try w.contribution("one"))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let next = try SigningKey()
        _ = try w.ledger.proposeSequencer(w.datanet, key: next.publicKey, by: w.owner)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let after = try w.contribution("after")
        try w.ledger.propose(after)
        _ = try w.ledger.sequence(w.datanet, key: next)
        return (w, next, after)
    }

    /// The stolen-key attack: the replaced key signs a longer log that leaves the handoff out.
    /// Alone, its receipt verifies as anchored; a verifier that pinned the Datanet and saw a
    /// receipt after the handoff reports a fork and remembers nothing new.
    @Test func forkLeavingOutTheHandoffIsReported() throws {
        let (w, _, after) = try Self.handedOver()
        let verifier = try World(quorum: 1) // another store, not following this Datanet
        try verifier.ledger.provenance.pin(w.datanet)
        #expect(try verifier.ledger.provenance.seen(w.datanet) == nil)
        let honest = try w.ledger.provenance.receipt(for: after.id)
        let first = try verifier.ledger.provenance.verify(honest, anchor: nil)
        #expect(first.holds && first.checks.last?.name == "consistent with the newest checkpoint seen")
        #expect(try verifier.ledger.provenance.remember(honest, verified: first))
        #expect(try verifier.ledger.provenance.seen(w.datanet)?.size == 4)
        // The fork: leaves 0 and 1, then three contributions under the old key, no handoff.
        var forge = try ReceiptTests.Forge(w)
        forge.leaves.removeLast(2)
        let evil = try (0..<3).map { try w.contribution("evil \($0)") }
        for (i, e) in evil.enumerated() { forge.append(AuditTests.intake(e, content: "evil \(i)")) }
        let forked = try forge.receipt(evil[2].id, key: w.sequencer)
        #expect(forked.verify(anchor: w.datanet).holds) // alone, it passes
        let v = try verifier.ledger.provenance.verify(forked, anchor: nil)
        #expect(ReceiptTests.failing(v) == ["consistent with the newest checkpoint seen"])
        #expect(v.checks.last?.detail.hasPrefix("FORK: the policy chain differs at leaf 2") == true, "\(v.checks.last!)")
        #expect(try !verifier.ledger.provenance.remember(forked, verified: v))
        #expect(try verifier.ledger.provenance.seen(w.datanet)?.size == 4)
    }

    /// Same size, another root: a fork, whatever else holds.
    @Test func sameSizeAnotherRootIsAFork() throws {
        let (w, next, after) = try Self.handedOver()
        let verifier = try World(quorum: 1)
        try verifier.ledger.provenance.pin(w.datanet)
        let honest = try w.ledger.provenance.receipt(for: after.id)
        _ = try verifier.ledger.provenance.remember(honest, verified: try verifier.ledger.provenance.verify(honest, anchor: nil))
        // The new key rewrites leaf 1 (its handoff proof fails too) and signs size 4 again.
        var forge = try ReceiptTests.Forge(w)
        let other = try w.contribution("one, rewritten")
        forge.leaves[1] = Leaf(datanet: w.datanet, policy: forge.leaves[1].policy, payload: AuditTests.intake(other, content: "one, rewritten"))
        let v = try verifier.ledger.provenance.verify(try forge.receipt(after.id, key: next), anchor: nil)
        #expect(ReceiptTests.failing(v) == ["leaf 2: set-sequencer", "consistent with the newest checkpoint seen"])
        #expect(v.checks.last?.detail.hasPrefix("FORK: a checkpoint of size 4 with another root") == true)
    }

    /// A later honest receipt advances the memory; where no log is held the leaves between
    /// are named as the sequencer's word, and an older receipt never replaces the memory.
    @Test func laterReceiptsAdvanceTheMemory() throws {
        let (w, next, after) = try Self.handedOver()
        let verifier = try World(quorum: 1)
        try verifier.ledger.provenance.pin(w.datanet)
        let old = try w.ledger.provenance.receipt(for: after.id)
        #expect(try verifier.ledger.provenance.remember(old, verified: try verifier.ledger.provenance.verify(old, anchor: nil)))
        let later = try w.contribution("later")
        try w.ledger.propose(later)
        _ = try w.ledger.sequence(w.datanet, key: next)
        let fresh = try w.ledger.provenance.receipt(for: later.id)
        let v = try verifier.ledger.provenance.verify(fresh, anchor: nil)
        #expect(v.holds && v.takenOnTrust.contains("consistent with the newest checkpoint seen"))
        #expect(try verifier.ledger.provenance.remember(fresh, verified: v))
        #expect(try verifier.ledger.provenance.seen(w.datanet)?.size == 5)
        // A refreshed receipt whose previous is the remembered checkpoint proves consistency.
        let refreshed = try w.ledger.provenance.refreshed(old)
        let r = try verifier.ledger.provenance.verify(refreshed, anchor: nil)
        #expect(r.holds && r.checks.last?.status == .pass, "\(r.checks.last!)")
        // The older receipt still verifies against the newer memory, and does not replace it.
        let back = try verifier.ledger.provenance.verify(old, anchor: nil)
        #expect(back.holds && back.takenOnTrust.contains("consistent with the newest checkpoint seen"))
        #expect(try !verifier.ledger.provenance.remember(old, verified: back))
        #expect(try verifier.ledger.provenance.seen(w.datanet)?.size == 5)
        // In a store holding the log the consistency is proven, not taken on trust.
        try w.ledger.provenance.pin(w.datanet)
        #expect(try w.ledger.provenance.seen(w.datanet)?.size == 5) // pinning a held log remembers its newest checkpoint
        let held = try w.ledger.provenance.verify(old, anchor: nil)
        #expect(held.holds && !held.takenOnTrust.contains("consistent with the newest checkpoint seen"))
    }

    /// A store whose own log contradicts what its pin remembers (another root at that size)
    /// reports a fork on verify, and `pin` refuses to move the memory forward past it.
    @Test func heldLogContradictingThePinIsAFork() throws {
        let (w, _, after) = try Self.handedOver()
        // What another history's checkpoint of size 2 would leave in the pin.
        let other = try Checkpoint(origin: Checkpoint.origin(of: w.datanet), size: 2, root: SHA256.hash([2])).signed(by: w.sequencer)
        let links = try #require(try w.ledger.reader.leaves(w.datanet).prefix(1).map { SeenCheckpoint.Link(index: $0.index, hash: $0.leaf.hash) })
        try w.ledger.provenance.pin(w.datanet)
        try w.ledger.env.write { txn in try txn.put(w.ledger.pins, w.datanet, try SeenCheckpoint(note: other, chain: links).encoded) }
        let v = try w.ledger.provenance.verify(try w.ledger.provenance.receipt(for: after.id), anchor: nil)
        #expect(ReceiptTests.failing(v) == ["consistent with the newest checkpoint seen"] && v.checks.last?.detail.hasPrefix("FORK: this store's log") == true)
        #expect { try w.ledger.provenance.pin(w.datanet) } throws: { e in
            if case .checkpointRefused(let why)? = e as? LedgerRefusal { why.hasPrefix("FORK") } else { false }
        }
        #expect(try w.ledger.provenance.seen(w.datanet)?.note == other)
    }

    /// The remembered value's codec: round trip, and damage named rather than trusted.
    @Test func rememberedCheckpointCodec() throws {
        let (w, _, _) = try Self.handedOver()
        try w.ledger.provenance.pin(w.datanet)
        let seen = try #require(try w.ledger.provenance.seen(w.datanet))
        #expect(seen.chain.map(\.index) == [0, 2] && seen.size == 4)
        #expect(try SeenCheckpoint(encoded: seen.encoded) == seen)
        var bad = seen.encoded
        bad[bad.count - 1] ^= 1 // a hash byte: still decodes, to another chain
        #expect(try SeenCheckpoint(encoded: bad) != seen)
        #expect(throws: RecordError.self) { try SeenCheckpoint(encoded: Array(seen.encoded.dropLast())) }
        #expect(throws: RecordError.self) { try SeenCheckpoint(note: "not a note", chain: []) }
        // A hostile pin entry (a damaged store): 20,000 seeded mutations never trap, and what
        // decodes re-encodes to the bytes it came from (the decoder is strict).
        var rng = SplitMix64(seed: 12)
        var decoded = 0
        for _ in 0..<20_000 {
            var b = seen.encoded
            rng.mutate(&b)
            guard let m = try? SeenCheckpoint(encoded: b) else { continue }
            decoded += 1
            #expect(m.encoded == b)
        }
        #expect(decoded > 0)
    }
}
