import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import Foundation

/// A log that uses every leaf kind: intakes with content and sidecars, an exact duplicate,
/// decisions both ways, two models (one naming the newest checkpoint, one an earlier size), a
/// policy change, a withdrawal and a takedown, a key handoff and a continuation. Shared by the
/// leaf codec and the apply-path tests.
struct EveryKindLog {
    let world: LedgerTests.World
    /// The sequencer key in force at the end (after the handoff and the continuation).
    let key: SigningKey
    /// Every contribution proposed, in proposal order.
    var contributions = [Envelope]()

    /// `step` runs after each sequencing run and the continuation (a peer following along).
    init(step: (LedgerTests.World) throws -> Void = { _ in }) throws {
        let w = try LedgerTests.World(quorum: 1)
        world = w
        func run(_ k: SigningKey) throws { _ = try w.ledger.sequence(w.datanet, key: k); try step(w) }
        var contributions = [Envelope]()
        func contribute(_ text: String, by k: SigningKey, label: String) throws -> Envelope {
            let file = w.dir + "-\(contributions.count).txt"
            FileManager.default.createFile(atPath: file, contents: Data(text.utf8))
            defer { unlink(file) }
            let blob = try Ingest(store: w.ledger.store).add(paths: [file])[0].id
            let sidecar = try w.ledger.storeSidecar(Sidecar(label: label, fileName: "\(label).txt", metadata: [:]))
            var c = Envelope(kind: .contribution, body: Contribution(
                datanet: w.datanet, author: k.publicKey, content: blob, contentKind: .blob, size: UInt64(text.utf8.count),
                mediaType: "text/plain", license: "CC0-1.0", sidecar: sidecar, createdAt: 2).body)
            try c.sign(with: k)
            contributions.append(c)
            return c
        }
        let a = try contribute("a song of the dawn", by: w.author, label: "dawn")
        let b = try contribute("a song of the dusk", by: w.author, label: "dusk")
        let copy = try contribute("a song of the dawn", by: w.outsider, label: "copy")
        let c = try contribute("a song of the night", by: w.outsider, label: "night")
        try w.ledger.propose(all: [a, b, copy, c])
        try run(w.sequencer)
        try w.ledger.propose(all: [try w.review([a.id, c.id], accept: true, by: w.curatorA), try w.review([b.id], accept: false, by: w.curatorB)])
        try run(w.sequencer)
        let artifactFile = w.dir + "-artifact.bin"
        FileManager.default.createFile(atPath: artifactFile, contents: Data("weights".utf8))
        defer { unlink(artifactFile) }
        let artifact = try Ingest(store: w.ledger.store).add(paths: [artifactFile])[0]
        let size = try w.ledger.reader.state(of: w.datanet).size
        let log = try w.ledger.merkleLog(w.datanet)
        for (at, name) in [(size, "newest"), (size - 3, "earlier")] {
            let root = try w.ledger.env.read { txn in try log.root(txn, size: at) }
            _ = try w.ledger.registerModel(ModelRecord(
                datanet: w.datanet, builder: w.owner.publicKey, name: name, checkpointSize: at, checkpointRoot: root, trainer: "test",
                trainerVersion: "1", configuration: [("k", "3")], artifact: artifact.id, artifactSize: artifact.size,
                training: .init(contributions: 2, examples: 2, bytes: 36, licenses: ["CC0-1.0"], tombstonesBefore: size), createdAt: 3), by: w.owner)
        }
        try run(w.sequencer)
        try w.ledger.propose(try w.policyChange("closer review", signedBy: [w.owner]) { $0.quorum = 2 })
        var withdraw = Envelope(kind: .tombstone, body: Tombstone(datanet: w.datanet, contribution: a.id, takedown: false, reason: "mine").body)
        try withdraw.sign(with: w.author)
        var takedown = Envelope(kind: .tombstone, body: Tombstone(datanet: w.datanet, contribution: c.id, takedown: true, reason: "asked").body)
        try takedown.sign(with: w.owner)
        try w.ledger.propose(all: [withdraw, takedown])
        try run(w.sequencer)
        // Handoff: the old key's last leaf; the new one sequences the next contribution.
        let handed = try SigningKey()
        _ = try w.ledger.proposeSequencer(w.datanet, key: handed.publicKey, by: w.owner)
        try run(w.sequencer)
        try w.ledger.propose(try contribute("a song of noon", by: w.author, label: "noon"))
        try run(handed)
        // The handed key is lost: the owner continues the log under another.
        let last = try w.ledger.reader.state(of: w.datanet)
        let root = try Checkpoint.verify(note: try w.ledger.reader.latestCheckpoint(w.datanet)!, key: handed.publicKey).root
        let newKey = try SigningKey()
        var continuation = Envelope(kind: .continuation, body: Continuation(datanet: w.datanet, size: last.size, root: root, sequencer: newKey.publicKey).body)
        try continuation.sign(with: w.owner)
        _ = try w.ledger.applyContinuation(continuation, key: newKey)
        try step(w)
        try w.ledger.propose(try contribute("a song of the rain", by: w.author, label: "rain"))
        try run(newKey)
        key = newKey
        self.contributions = contributions
    }

    /// The stored bytes of every leaf, in order.
    func leafBytes() throws -> [[UInt8]] {
        let table = try world.ledger.leafTable(world.datanet)
        return try world.ledger.env.read { txn in
            var out = [[UInt8]]()
            try table.scan(txn) { _, v in out.append(Array(v)); return true }
            return out
        }
    }
}
