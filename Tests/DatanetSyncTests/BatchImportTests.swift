import DatanetCrypto
@testable import DatanetLedger
import DatanetRecords
@testable import DatanetSync
import Foundation
import Glibc
import Testing

/// Leaves in proven batches (schema/protocol.md): each batch is committed once its subtree
/// proof and replay hold; a batch that does not prove out is refused with nothing of it kept,
/// the batches before it stay, and a later run resumes from them.
@Suite struct BatchImportTests {
    typealias Node = SyncSessionTests.Node

    /// What one bundle of a run is: a batch [start, end) with its proof (altered by `alter`),
    /// or the last bundle.
    enum Step { case batch(UInt64, UInt64), last, cut }
    struct Cut: Error {}

    /// Imports `steps` from `server` into `client` as `importBundles` receives a run.
    static func run(_ steps: [Step], _ d: DatanetID, from server: Node, into client: Node, arrives: Bool = true,
                    alter: (inout BatchProof) throws -> Void = { _ in }) throws -> BundleSummary {
        let note = try #require(try server.ledger.reader.latestCheckpoint(d))
        let size = try Checkpoint.unverified(note: note).size
        var rest = steps[...]
        var first = true
        return try BundleTransfer.withTemporaryFile(in: client.dir) { fd in
            // Each batch is committed as soon as it proves out; the next is always at hand.
            try client.ledger.importBundles(d, commitEvery: .zero, next: { () throws -> (fd: Int32, bundle: IncomingBundle) in
                guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0 else { throw Cut() }
                defer { lseek(fd, 0, SEEK_SET) }
                switch rest.popFirst() {
                case .batch(let start, let end)?:
                    _ = try server.ledger.exportBundle(d, since: start, end: end, to: fd)
                    let consistency = start > 0 && first ? try server.ledger.consistencyProof(d, from: start, to: size) : []
                    first = false
                    var proof = BatchProof(start: start, end: end, note: note, path: try server.ledger.subtreeProof(d, start: start, end: end, size: size),
                                           consistency: consistency)
                    try alter(&proof)
                    return (fd, .batch(proof))
                case .cut?:
                    throw Cut()
                case .last?, nil:
                    _ = try server.ledger.exportBundle(d, since: size, to: fd)
                    return (fd, .last)
                }
            }, arrives: { _ in arrives })
        }
    }

    @Test func batchesThatDoNotProveOutAreRefusedAndTheOnesBeforeStay() throws {
        let server = try Node()
        let owner = try SigningKey()
        let d = try SyncSessionTests.datanet(on: server, owner: owner)
        for i in 0..<20 { _ = try server.contribute(d, "line \(i) of the song", by: owner) }
        _ = try server.ledger.sequence(d, key: owner)
        let size = try server.ledger.reader.state(of: d).size
        let batches = BatchProof.batches(from: 0, to: size, maximumLevel: 2)
        #expect(batches.count == 6 && batches.allSatisfy { $0.end - $0.start <= 4 })
        let steps = batches.map { Step.batch($0.start, $0.end) } + [.last]

        // The third batch's proof has a hash changed: the two before it are committed, it is not.
        let client = try Node()
        #expect(throws: BundleError.self) {
            try Self.run(steps, d, from: server, into: client) { p in if p.start == 8 { p.path[0] = SHA256.hash(p.path[0].bytes) } }
        }
        #expect(try client.ledger.reader.state(of: d).size == 8)
        #expect(try client.ledger.audit(d).holds)
        // A batch whose bundle is not the batch announced; one that does not start where the log ends.
        #expect(throws: BundleError.self) { try Self.run([.batch(8, 12)], d, from: server, into: client) { p in p.end = 16 } }
        #expect(throws: BundleError.self) { try Self.run([.batch(12, 16)], d, from: server, into: client) }
        #expect(try client.ledger.reader.state(of: d).size == 8)
        // Batches must follow each other under one checkpoint: none repeated, skipped or re-proven
        // against another note; a batch waiting for its key past the time allowed is refused.
        let fresh = try Node()
        #expect { try Self.run([.batch(0, 4), .batch(0, 4)], d, from: server, into: fresh) } throws: { "\($0)".contains("not where the one before ended") }
        #expect { try Self.run([.batch(0, 4), .batch(8, 12)], d, from: server, into: fresh) } throws: { "\($0)".contains("not where the one before ended") }
        var count = 0
        #expect {
            try Self.run([.batch(0, 4), .batch(4, 8)], d, from: server, into: fresh) { p in
                count += 1
                if count == 2 { p.note = p.note.replacingOccurrences(of: "\n\n", with: "\n\n\n") }
            }
        } throws: { "\($0)".contains("different checkpoints") }
        let stranger = try SigningKey()
        #expect {
            try Self.run([.batch(0, 4), .batch(4, 8)], d, from: server, into: fresh, arrives: false) { p in
                let cp = try Checkpoint.unverified(note: p.note)
                p.note = try Checkpoint(origin: cp.origin, size: cp.size, root: cp.root).signed(by: stranger)
            }
        } throws: { "\($0)".contains("waited more than") }
        #expect(try fresh.ledger.reader.datanets().isEmpty || fresh.ledger.reader.state(of: d).size <= 4)
        // A run cut after a batch keeps it; a batch that starts below the log's end (the sender's
        // view was older) is checked against the leaves held and brings the rest.
        let third = try Node()
        #expect(throws: Cut.self) { try Self.run([.batch(0, 4), .batch(4, 6), .cut], d, from: server, into: third) }
        #expect(try third.ledger.reader.state(of: d).size == 6)
        _ = try Self.run([.batch(4, 8)] + steps.dropFirst(2), d, from: server, into: third)
        SyncSessionTests.expectSame(try server.tables(d), try third.tables(d), "after a batch that overlapped the log")
        // The run resumes from the last committed batch and ends where an uncut one does.
        let resumed = try Self.run(Array(steps.dropFirst(2)), d, from: server, into: client)
        #expect(resumed.newLeaves == Int(size) - 8)
        SyncSessionTests.expectSame(try server.tables(d), try client.tables(d), "after the resumed run")

        // Batches proven against a checkpoint signed by another key wait for a key that never
        // comes: the run is refused at its end and nothing of it is committed.
        let forger = try SigningKey()
        let other = try Node()
        #expect(throws: BundleError.self) {
            try Self.run(steps, d, from: server, into: other) { p in
                let cp = try Checkpoint.unverified(note: p.note)
                p.note = try Checkpoint(origin: cp.origin, size: cp.size, root: cp.root).signed(by: forger)
            }
        }
        #expect(try other.ledger.reader.datanets().isEmpty)
    }

    /// A peer whose checkpoint lies past this log but is not consistent with it (the two forked
    /// under one sequencer key, then the peer's grew): its first batch's consistency proof fails,
    /// and nothing is taken. A first batch past leaf 0 without one is refused too.
    @Test func aCheckpointInconsistentWithThisLogIsRefusedAcrossSizes() throws {
        let server = try Node(), client = try Node()
        let owner = try SigningKey()
        let d = try SyncSessionTests.datanet(on: server, owner: owner)
        _ = try server.contribute(d, "shared", by: owner)
        _ = try server.ledger.sequence(d, key: owner)
        let shared = try server.ledger.reader.state(of: d).size
        _ = try Self.run(BatchProof.batches(from: 0, to: shared).map { Step.batch($0.start, $0.end) } + [.last], d, from: server, into: client)
        _ = try server.contribute(d, "the server's", by: owner)
        _ = try server.ledger.sequence(d, key: owner)
        _ = try server.contribute(d, "and more", by: owner)
        _ = try server.ledger.sequence(d, key: owner)
        _ = try client.contribute(d, "the client's", by: owner)
        _ = try client.ledger.sequence(d, key: owner)
        let mine = try client.ledger.reader.state(of: d).size, theirs = try server.ledger.reader.state(of: d).size
        #expect(mine < theirs)
        let before = try client.tables(d)
        let steps = BatchProof.batches(from: mine, to: theirs).map { Step.batch($0.start, $0.end) } + [.last]
        #expect { try Self.run(steps, d, from: server, into: client) } throws: { "\($0)".contains("not consistent with this log at size \(mine)") }
        SyncSessionTests.expectSame(before, try client.tables(d), "after an inconsistent run")
        // Without the consistency proof the first batch is not taken either.
        #expect { try Self.run(steps, d, from: server, into: client) { $0.consistency = [] } } throws: { "\($0)".contains("without a consistency proof") }
        SyncSessionTests.expectSame(before, try client.tables(d), "after a run without a consistency proof")
    }
}
