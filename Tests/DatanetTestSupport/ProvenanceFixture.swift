import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation
import Glibc

/// A small real Datanet for the provenance fuzzers (tests and `provenance-fuzz`): a text file,
/// a folder whose names are not all UTF-8, and a binary file, all accepted by one curator; a
/// receipt of the first and an export of the whole set.
public final class ProvenanceFixture {
    public let dir: String
    public let ledger: Ledger
    public let datanet: DatanetID
    public let receipt: Receipt
    public let held: HeldLog?
    public let export: String

    public init() throws {
        dir = NSTemporaryDirectory() + "datanet-fixture-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        ledger = try Ledger(store: try ObjectStore(directory: dir + "/store", create: true))
        let owner = try SigningKey(), curator = try SigningKey(), author = try SigningKey()
        let policy = PolicyState(name: "fixture", owner: owner.publicKey, sequencer: owner.publicKey, curators: [curator.publicKey],
                                 quorum: 1, contributors: nil, readers: nil, maxPendingProposals: 100, maxPendingBytes: 1 << 30)
        var g = Envelope(kind: .genesis, body: Genesis(policy: policy, createdAt: 1, nonce: [UInt8](repeating: 2, count: 16)).body)
        try g.sign(with: owner)
        datanet = try ledger.create(genesis: g, sequencerKey: owner)
        let src = dir + "/src"
        try FileManager.default.createDirectory(atPath: src + "/folder", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: src + "/song.txt", contents: Data("a song of the dawn, sung twice".utf8))
        _ = FileManager.default.createFile(atPath: src + "/folder/50%.txt", contents: Data("half".utf8))
        _ = FileManager.default.createFile(atPath: src + "/bin", contents: Data((0..<300).map { UInt8(truncatingIfNeeded: $0 * 7) }))
        let odd = Array((src + "/folder/a").utf8) + [0xff, 0]
        let fd = odd.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT, 0o644) } }
        if fd >= 0 { _ = write(fd, "x", 1); close(fd) }
        var ids = [RecordID]()
        for (i, name) in ["song.txt", "folder", "bin"].enumerated() {
            let r = try Ingest(store: ledger.store).add(paths: [src + "/" + name])[0]
            let side = try ledger.storeSidecar(Sidecar(label: name, fileName: name, metadata: [:]))
            var e = Envelope(kind: .contribution, body: Contribution(
                datanet: datanet, author: author.publicKey, content: r.id, contentKind: r.kind == .tree ? .tree : .blob, size: r.size,
                mediaType: r.kind == .tree ? "inode/directory" : "text/plain", license: "CC-BY-4.0", sidecar: side, createdAt: UInt64(i)).body)
            try e.sign(with: author)
            ids.append(try ledger.propose(e))
        }
        _ = try ledger.sequence(datanet, key: owner)
        var review = Envelope(kind: .review, body: Review(datanet: datanet, reviewer: curator.publicKey, contributions: ids, accept: true, reason: "ok").body)
        try review.sign(with: curator)
        _ = try ledger.propose(review)
        _ = try ledger.sequence(datanet, key: owner)
        receipt = try ledger.provenance.receipt(for: ids[0])
        held = try ledger.provenance.heldLog(datanet, receiptSize: try Checkpoint.unverified(note: receipt.checkpoint).size, contribution: ids[0])
        export = dir + "/export"
        _ = try ledger.exportDataset(datanet, at: nil, to: export)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }
}

/// Seeded mutation of an exported dataset's MANIFEST.jsonl and CHECKPOINT: every field of a
/// line (values, types, missing, extra and repeated keys, huge numbers, deep nesting, long
/// strings), whole lines dropped, repeated, swapped or emptied, and raw bytes of either file.
/// Nothing may trap, and a mutated manifest that verifies must list exactly the original entries.
public struct ManifestFuzzer: Sendable {
    public let dir: String
    public let ledger: Ledger?
    let manifest: [UInt8], checkpoint: String
    let lines: [JSONTree]
    let original: [ManifestEntry]

    public init(dir: String, ledger: Ledger?) throws {
        (self.dir, self.ledger) = (dir, ledger)
        manifest = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/MANIFEST.jsonl")))
        checkpoint = try String(contentsOfFile: dir + "/CHECKPOINT", encoding: .utf8)
        lines = manifest.split(separator: 0x0a).compactMap { JSONTree.parse(Array($0)) }
        original = try DatasetExport.entries(fromManifest: Data(manifest))
    }

    public func run(seed: UInt64, count: Int) -> FuzzOutcome {
        var rng = SplitMix64(seed: seed)
        var outcome = FuzzOutcome()
        for round in 0..<count {
            var m = manifest, cp = checkpoint
            switch rng.below(10) {
            case 0...4:
                var l = lines
                let i = rng.below(l.count)
                for _ in 0...rng.below(3) { rng.mutate(&l[i]) }
                m = l.flatMap { $0.serialized + [0x0a] }
            case 5, 6:
                var l = lines.map(\.serialized)
                let i = rng.below(l.count)
                switch rng.below(5) {
                case 0: l.remove(at: i)
                case 1: l.insert(l[i], at: rng.below(l.count + 1))
                case 2: l.swapAt(i, rng.below(l.count))
                case 3: l.insert([], at: rng.below(l.count + 1))
                default: l[i] = Array(String(decoding: l[i], as: UTF8.self).replacingOccurrences(of: "data/", with: ["data/../", "data/.", "", "data//"][rng.below(4)]).utf8)
                }
                m = l.flatMap { $0 + [0x0a] }
                if rng.below(4) == 0, !m.isEmpty { m.removeLast() }
            case 7, 8:
                rng.mutate(&m)
            default:
                var b = Array(cp.utf8)
                rng.mutate(&b)
                cp = String(decoding: b, as: UTF8.self)
            }
            let v = DatasetExport.verify(manifest: Data(m), checkpoint: cp, dir: dir, ledger: ledger, contentOnly: ledger == nil)
            guard v.holds else { outcome.refused += 1; continue }
            outcome.held += 1
            // Line order and the order of a folder's files carry nothing; without a ledger only
            // what the files prove is compared.
            func key(_ e: [ManifestEntry]) -> [String] {
                e.map { entry in
                    var m = entry
                    m.files = m.files?.sorted { $0.path < $1.path }
                    return ledger == nil ? "\(m.path) \(m.kind) \(m.content) \(m.size) \(m.sha256 ?? "") \(m.files.map { "\($0)" } ?? "")" : "\(m)"
                }.sorted()
            }
            if (try? DatasetExport.entries(fromManifest: Data(m))).map(key) != key(original) || cp != checkpoint && ledger != nil {
                outcome.failures.append("seed \(seed) round \(round): \(String(decoding: m.prefix(300), as: UTF8.self))")
            }
        }
        return outcome
    }
}
