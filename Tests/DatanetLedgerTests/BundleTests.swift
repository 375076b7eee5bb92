import DatanetCBOR
import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import DatanetTestSupport
import Foundation
import Glibc
import Testing

/// Bundles between stores: a round trip carries the log, its content and pending records;
/// a truncated, reordered, duplicated, oversized or tampered bundle changes nothing.
@Suite struct BundleTests {
    typealias World = LedgerTests.World

    /// A second store, empty.
    final class Peer {
        let dir = NSTemporaryDirectory() + "datanet-peer-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let ledger: Ledger
        init() throws { ledger = try Ledger(store: try ObjectStore(directory: dir, create: true)) }
        deinit { try? FileManager.default.removeItem(atPath: dir) }
        var fingerprint: Digest? { FileManager.default.contents(atPath: dir + "/data.mdb").map { SHA256.hash($0) } }
    }

    static func export(_ l: Ledger, _ d: DatanetID, since: UInt64 = 0, recordsOnly: Bool = false) throws -> [UInt8] {
        let path = NSTemporaryDirectory() + "bundle-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(path) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        _ = try l.exportBundle(d, since: since, recordsOnly: recordsOnly, to: fd)
        close(fd)
        return Array(FileManager.default.contents(atPath: path)!)
    }

    @discardableResult
    static func importBytes(_ l: Ledger, _ bytes: [UInt8]) throws -> BundleSummary {
        let path = NSTemporaryDirectory() + "bundle-in-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(path) }
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        return try l.importBundle(from: fd)
    }

    /// Splits a bundle into its magic and frames, and joins frames back with a fresh end frame.
    static func frames(_ b: [UInt8]) -> [[UInt8]] {
        var out = [[UInt8]](), at = 9
        while at < b.count {
            let n = Int(b[at + 1]) << 24 | Int(b[at + 2]) << 16 | Int(b[at + 3]) << 8 | Int(b[at + 4])
            out.append(Array(b[at..<at + 5 + n]))
            at += 5 + n
        }
        return out
    }

    /// One frame's bytes: type, u32 length, payload.
    static func frame(_ t: BundleFrame, _ p: [UInt8]) -> [UInt8] {
        [t.rawValue, UInt8(p.count >> 24), UInt8((p.count >> 16) & 0xff), UInt8((p.count >> 8) & 0xff), UInt8(p.count & 0xff)] + p
    }

    static func reassemble(_ frames: [[UInt8]]) -> [UInt8] {
        var b = Array("DNBUNDLE".utf8) + [1]
        let body = frames.filter { $0[0] != 0xff }
        for f in body { b += f }
        let digest = SHA256.hash(b)
        return b + [0xff, 0, 0, 0, 40] + BigEndian.bytes(UInt64(body.count)) + digest.bytes
    }

    /// A Datanet whose contributions have real content in the store.
    static func world() throws -> (World, Envelope) {
        let w = try World()
        let file = w.dir + "-song.txt"
        FileManager.default.createFile(atPath: file, contents: Data("a song of the dawn".utf8))
        defer { unlink(file) }
        let blob = try Ingest(store: w.ledger.store).add(paths: [file])[0].id
        var c = Envelope(kind: .contribution, body: Contribution(
            datanet: w.datanet, author: w.author.publicKey, content: blob, contentKind: .blob, size: 18, mediaType: "text/plain",
            license: "CC0-1.0", sidecar: .zero, createdAt: 2).body)
        try c.sign(with: w.author)
        try w.ledger.propose(c)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        try w.ledger.propose(all: [try w.review([c.id], accept: true, by: w.curatorA), try w.review([c.id], accept: true, by: w.curatorB)])
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        return (w, c)
    }

    @Test func roundTripCarriesLogContentAndPendingRecords() throws {
        let (w, c) = try Self.world()
        let peer = try Peer()
        let summary = try Self.importBytes(peer.ledger, try Self.export(w.ledger, w.datanet))
        #expect(summary.leaves == 5 && summary.objects == 2)
        #expect(try peer.ledger.reader.state(of: w.datanet).size == 5)
        #expect(try peer.ledger.audit(w.datanet).holds)
        #expect(try peer.ledger.reader.decision(c.id) == 4)
        #expect(try peer.ledger.provenance.verify(try peer.ledger.provenance.receipt(for: c.id), anchor: w.datanet).holds)
        guard case .contribution(let contribution) = try Record(c) else { Issue.record("not a contribution"); return }
        #expect(try peer.ledger.store.blob(contribution.content) != nil)
        // Importing the same bundle again changes nothing.
        try Self.importBytes(peer.ledger, try Self.export(w.ledger, w.datanet))
        #expect(try peer.ledger.reader.state(of: w.datanet).size == 5)
        #expect(try peer.ledger.audit(w.datanet).holds)
        // The peer proposes offline; its bundle from the current size carries only that.
        let b = try w.contribution("song B")
        try peer.ledger.propose(b)
        let back = try Self.export(peer.ledger, w.datanet, since: 5, recordsOnly: true)
        #expect(try Self.importBytes(w.ledger, back).records == 1)
        #expect(try w.ledger.reader.pendingRecords(w.datanet).map(\.id) == [b.id])
        // Fork evidence travels: a second history signed by the sequencer, observed here, reaches the peer.
        let other = try Checkpoint(origin: Checkpoint.origin(of: w.datanet), size: 2, root: SHA256.hash([7])).signed(by: w.sequencer)
        guard case .fork = try w.ledger.observe(note: other, datanet: w.datanet) else { Issue.record("no fork seen"); return }
        try Self.importBytes(peer.ledger, try Self.export(w.ledger, w.datanet, since: 5, recordsOnly: true))
        #expect(try peer.ledger.reader.forkEvidence(w.datanet).first?.notes.last == other)
        // A records-only bundle of a contribution whose content is absent is refused unless marked so.
        let peer2 = try Peer()
        #expect(try Self.importBytes(peer2.ledger, try Self.export(w.ledger, w.datanet, recordsOnly: true)).objects == 0)
    }

    @Test(arguments: ["truncated", "reordered", "duplicated", "oversized", "tampered byte", "forged leaf", "dropped checkpoint",
                      "unknown frame", "trailing bytes", "leaf gap", "not a bundle"])
    func badBundleChangesNothing(_ damage: String) throws {
        let (w, _) = try Self.world()
        let good = try Self.export(w.ledger, w.datanet)
        var frames = Self.frames(good)
        let leaf0 = try #require(frames.firstIndex { $0[0] == 2 }) // leaves 0 to 4 follow in order
        var bad = good
        switch damage {
        case "truncated": bad = Array(good.prefix(good.count - 30))
        case "reordered": frames.swapAt(leaf0 + 1, leaf0 + 2); bad = Self.reassemble(frames)
        case "duplicated": frames.insert(frames[leaf0 + 1], at: leaf0 + 1); bad = Self.reassemble(frames)
        case "oversized": bad = Array(good.prefix(9)) + [2, 0x7f, 0xff, 0xff, 0xff] + [UInt8](repeating: 0, count: 100)
        case "tampered byte": bad[good.count / 2] ^= 1
        case "forged leaf":
            // Someone without the keys rewrites the decision to reject, and fixes the end frame.
            let i = try #require(frames.firstIndex { $0[0] == 2 && BigEndian.u64(Array($0[5...])) == 4 })
            var leaf = try Leaf(encoded: Array(frames[i][13...]))
            guard case .decision(var d) = leaf.payload else { Issue.record("leaf 4 is not a decision"); return }
            d.accepted = false
            leaf.payload = .decision(d)
            let bytes = BigEndian.bytes(4) + leaf.encoded
            let n = UInt32(bytes.count)
            frames[i] = [2, UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)] + bytes
            bad = Self.reassemble(frames)
        case "dropped checkpoint": frames.removeAll { $0[0] == 3 }; bad = Self.reassemble(frames)
        case "unknown frame": frames.insert([42, 0, 0, 0, 0], at: 2); bad = Self.reassemble(frames)
        case "trailing bytes": bad += [0]
        case "leaf gap": frames.removeAll { $0[0] == 2 && BigEndian.u64(Array($0[5...])) == 1 }; bad = Self.reassemble(frames)
        case "not a bundle": bad = Array("hello".utf8)
        default: Issue.record("unknown damage")
        }
        let peer = try Peer()
        let before = peer.fingerprint
        // Each damage refused by its own rule.
        let expected: [String: (BundleError) -> Bool] = [
            "truncated": { $0 == .truncated }, "tampered byte": { $0 == .tampered },
            "reordered": { $0 == .malformed("leaf 2 where leaf 1 was due (leaves must run from 0 to 5 once, in order)") },
            "duplicated": { $0 == .malformed("leaf 1 where leaf 2 was due (leaves must run from 0 to 5 once, in order)") },
            "leaf gap": { $0 == .malformed("leaf 2 where leaf 1 was due (leaves must run from 0 to 5 once, in order)") },
            "oversized": { $0 == .malformed("a leaf frame of 2147483647 bytes exceeds \(BundleReader.maximumFrame)") },
            "forged leaf": { if case .refused(let why) = $0 { why.hasPrefix("leaf 4: counted reviews agree with the verdict") } else { false } },
            "dropped checkpoint": { $0 == .refused("no signed checkpoint covers its last leaf 4") },
            "unknown frame": { $0 == .malformed("unknown frame type 42") },
            "trailing bytes": { $0 == .malformed("bytes after the end frame") },
            "not a bundle": { $0 == .malformed("not a Datanet bundle (bad magic or version)") },
        ]
        #expect(performing: { try Self.importBytes(peer.ledger, bad) }, throws: { e in (e as? BundleError).map { expected[damage]!($0) } ?? false })
        #expect(peer.fingerprint == before, "\(damage) changed the store")
        #expect((try? peer.ledger.reader.state(of: w.datanet)) == nil)
        // The undamaged bundle still imports into the same store afterwards.
        #expect(try Self.importBytes(peer.ledger, good).leaves == 5)
    }

    /// A chunk whose bytes are a sidecar's encoding has that sidecar's hash as its id; export
    /// keeps the sidecars and the objects it has sent apart, so both reach the importer.
    @Test func aChunkWithASidecarsHashIsStillSent() throws {
        let w = try LedgerTests.World(quorum: 1)
        let held = Sidecar(label: "collision", fileName: "a.txt", metadata: [:])
        let sidecar = try w.ledger.storeSidecar(held)
        // The first names the sidecar; the second's only chunk is the sidecar's encoding.
        let a = try w.stored(Array("first".utf8), mediaType: "application/octet-stream", sidecar: sidecar, createdAt: 1)
        let b = try w.stored(held.encoded, mediaType: "application/octet-stream", createdAt: 2)
        try w.ledger.propose(all: [a, b])
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let peer = try Peer()
        _ = try Self.importBytes(peer.ledger, try Self.export(w.ledger, w.datanet))
        let bContent = try Contribution(body: b.body).content
        #expect(try peer.ledger.store.blobBytes(bContent, limit: 1 << 20) == held.encoded)
        #expect(try peer.ledger.reader.sidecar(of: try Contribution(body: a.body)) == held)
    }

    /// Fork evidence in a bundle is kept only when it proves a fork (trust model, item 4): two
    /// notes of one size and different roots, each signed by the key in force there. One note,
    /// two that agree, a note signed by another key, or junk refuse the whole bundle.
    @Test func forkEvidenceMustProveAFork() throws {
        let (w, _) = try Self.world()
        let good = try Self.export(w.ledger, w.datanet)
        let ours = try #require(try w.ledger.reader.latestCheckpoint(w.datanet))
        let cp = try Checkpoint.unverified(note: ours)
        let theirs = try Checkpoint(origin: cp.origin, size: cp.size, root: SHA256.hash([7])).signed(by: w.sequencer)
        let byOwner = try Checkpoint(origin: cp.origin, size: cp.size, root: SHA256.hash([7])).signed(by: w.owner)
        func evidence(_ notes: [String], datanet: String? = nil) throws -> [UInt8] {
            Array(try JSONEncoder().encode(ForkEvidence(datanet: datanet ?? w.datanet.hex, notes: notes)))
        }
        func with(_ payload: [UInt8]) -> [UInt8] {
            var frames = Self.frames(good)
            let n = UInt32(payload.count)
            frames.insert([9, UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)] + payload,
                          at: frames.count - 1)
            return Self.reassemble(frames)
        }
        let bad: [(String, [UInt8])] = [
            ("one note", try evidence([theirs])), ("notes that agree", try evidence([ours, ours])),
            ("a note by another key", try evidence([ours, byOwner])), ("another Datanet", try evidence([ours, theirs], datanet: String(repeating: "0", count: 64))),
            ("three notes", try evidence([ours, theirs, theirs])), ("junk", Array("{\"type\":1}".utf8)),
        ]
        for (what, payload) in bad {
            let peer = try Peer()
            let before = peer.fingerprint
            #expect(throws: BundleError.malformed("fork evidence is not two notes of one size, each signed by the key in force there, that disagree"), "\(what)") {
                try Self.importBytes(peer.ledger, with(payload))
            }
            #expect(peer.fingerprint == before, "\(what) changed the store")
        }
        let peer = try Peer()
        try Self.importBytes(peer.ledger, with(try evidence([ours, theirs])))
        #expect(try peer.ledger.reader.forkEvidence(w.datanet).map(\.notes) == [[ours, theirs]])
        // Seeded mutations of valid evidence: never a trap; whatever still passes names the
        // same size (only changes that keep both notes valid, such as JSON spacing, can).
        let valid = try evidence([ours, theirs])
        var rng = SplitMix64(seed: 0xF02C)
        var refused = 0
        for _ in 0..<3_000 {
            var b = valid
            rng.mutate(&b, maxEdits: 3)
            if let size = try? ForkEvidence.validated(b, datanet: w.datanet, key: { _ in w.sequencer.publicKey }) {
                #expect(size == cp.size)
            } else { refused += 1 }
        }
        #expect(refused > 2_500)
    }

    /// A checkpoint that disagrees with this log at a size this store holds no signed note of
    /// is reported, but nothing is stored as evidence: one note proves nothing to anyone else.
    @Test func disagreementWithoutANoteOfOursIsNotEvidence() throws {
        let w = try LedgerTests.World(quorum: 1)
        try w.ledger.propose(all: [try w.contribution("one"), try w.contribution("two")])
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(try !w.ledger.reader.checkpoints(w.datanet).map(\.size).contains(2))
        let other = try Checkpoint(origin: Checkpoint.origin(of: w.datanet), size: 2, root: SHA256.hash([9])).signed(by: w.sequencer)
        #expect(try w.ledger.observe(note: other, datanet: w.datanet) == .inconsistent(size: 2))
        #expect(try w.ledger.reader.forkEvidence(w.datanet).isEmpty)
    }

    @Test func forkedBundleIsRefused() throws {
        let (w, _) = try Self.world()
        let peer = try Peer()
        try Self.importBytes(peer.ledger, try Self.export(w.ledger, w.datanet))
        // Leaf 4 rewritten (end frame fixed): a peer holding the first history refuses it as a fork.
        var frames = Self.frames(try Self.export(w.ledger, w.datanet))
        let i = try #require(frames.firstIndex { $0[0] == 2 && BigEndian.u64(Array($0[5...])) == 4 })
        var leaf = try Leaf(encoded: Array(frames[i][13...]))
        guard case .decision(var d) = leaf.payload else { Issue.record("leaf 4 is not a decision"); return }
        d.reason = "rewritten"
        leaf.payload = .decision(d)
        let bytes = BigEndian.bytes(4) + leaf.encoded
        let n = UInt32(bytes.count)
        frames[i] = [2, 0, UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)] + bytes
        #expect(throws: BundleError.refused("leaf 4 differs from this store's: the bundle's log forks from this one")) {
            try Self.importBytes(peer.ledger, Self.reassemble(frames))
        }
    }

    /// The hardening issue's defect: sidecar frames were stored whether or not a record named
    /// them (60 junk 1 MB frames survived gc and compact), and a tampered sidecar was kept. Now
    /// a sidecar over 64 KiB refuses the bundle; unreferenced sidecars and objects, and a
    /// sidecar whose bytes no longer match its record's hash, are left out and counted.
    @Test func bundlesCannotPlantStorage() throws {
        let (w, c, _) = try TombstoneTests.world() // a contribution with a real sidecar
        let sidecar = try Contribution(body: c.body).sidecar
        let frames = Self.frames(try Self.export(w.ledger, w.datanet))
        func sidecarCount(_ l: Ledger) throws -> Int {
            try l.env.read { txn in
                var n = 0
                try txn.scan(l.sidecars) { _, _ in n += 1; return true }
                return n
            }
        }
        let peer = try Peer()
        let before = peer.fingerprint
        let huge = Self.frame(.sidecar, [UInt8](repeating: 7, count: 1 << 20))
        #expect(performing: { try Self.importBytes(peer.ledger, Self.reassemble(frames + Array(repeating: huge, count: 3))) },
                throws: { isBundleError($0, "a sidecar of 1048576 bytes exceeds") })
        #expect(peer.fingerprint == before)
        // Well-formed junk: sidecars and a chunk nothing names; and the real sidecar tampered.
        let junk = (0..<60).map { i in Self.frame(.sidecar, Sidecar(label: "junk \(i)", fileName: "", metadata: [:]).encoded) }
            + [Self.frame(.chunk, [UInt8](repeating: 9, count: 5000))]
        var tampered = frames
        let i = try #require(tampered.firstIndex { $0[0] == BundleFrame.sidecar.rawValue })
        tampered[i][tampered[i].count - 1] ^= 1
        let s = try Self.importBytes(peer.ledger, Self.reassemble(tampered + junk))
        #expect(s.skipped == 62 && s.objects == 2 && s.sidecars == 0)
        #expect(try sidecarCount(peer.ledger) == 0)
        #expect(try peer.ledger.store.chunk(ObjectID(SHA256.hash([UInt8](repeating: 9, count: 5000)))) == nil)
        // The honest bundle then brings exactly the one sidecar its record names.
        let honest = try Self.importBytes(peer.ledger, Self.reassemble(frames))
        #expect(honest.sidecars == 1 && honest.skipped == 0 && honest.objects == 0)
        #expect(try peer.ledger.env.read { txn in try txn.get(peer.ledger.sidecars, sidecar) } != nil)
        #expect(try sidecarCount(peer.ledger) == 1)
    }

    /// Review findings: a proposal whose content is a chain of 60,000 nested trees (the closure
    /// walk recursed once per level and overflowed the stack), and content that arrives as an
    /// object of another kind than its record says, are refused without a crash.
    @Test func deepTreesAndWrongKindsAreRefused() throws {
        let (w, _) = try Self.world()
        let size = try w.ledger.reader.state(of: w.datanet).size
        let base = Self.frames(try Self.export(w.ledger, w.datanet, since: size)).filter { $0[0] == BundleFrame.header.rawValue || $0[0] == BundleFrame.checkpoint.rawValue }
        func proposal(_ content: ObjectID, _ kind: ContentKind) throws -> [UInt8] {
            var e = Envelope(kind: .contribution, body: Contribution(
                datanet: w.datanet, author: w.author.publicKey, content: content, contentKind: kind, size: 1, mediaType: "text/plain",
                license: "CC0-1.0", sidecar: .zero, createdAt: 9).body)
            try e.sign(with: w.author)
            return Self.frame(.record, e.encoded)
        }
        // 60,000 trees, each naming the next; the proposal names the outermost.
        var trees = [[UInt8]]()
        var inner = try Tree(entries: [TreeEntry(name: Array("a".utf8), kind: .blob, id: ObjectID(SHA256.hash([1])), size: 1)])
        for _ in 0..<60_000 {
            let bytes = inner.encoded
            trees.append(Self.frame(.tree, bytes))
            inner = try Tree(entries: [TreeEntry(name: Array("a".utf8), kind: .tree, id: Tree.id(encoded: bytes), size: 1)])
        }
        let top = Tree.id(encoded: try Tree(encoded: Array(trees.last!.dropFirst(5))).encoded)
        let peer = try Peer()
        try Self.importBytes(peer.ledger, try Self.export(w.ledger, w.datanet))
        let before = peer.fingerprint
        #expect(performing: { try Self.importBytes(peer.ledger, Self.reassemble(base + trees + [try proposal(top, .tree)])) },
                throws: { isBundleError($0, refused: true, "the content \(top.hex) of proposal") && "\($0)".hasSuffix("is missing") })
        #expect(peer.fingerprint == before)
        // A chunk whose id a proposal claims as a blob.
        let chunk = [UInt8](repeating: 5, count: 100)
        #expect(performing: {
            try Self.importBytes(peer.ledger, Self.reassemble(base + [Self.frame(.chunk, chunk), try proposal(ObjectID(SHA256.hash(chunk)), .blob)]))
        }, throws: { isBundleError($0, refused: true, "the content \(SHA256.hash(chunk).hex) of proposal") })
        #expect(peer.fingerprint == before)
    }
}

