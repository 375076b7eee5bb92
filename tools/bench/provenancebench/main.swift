// Provenance benchmark (run by hand through tools/bench/provenance; not a test).
//   provenance-bench log DIR [N]        receipt verify and audit at N leaves (default 1,000,000)
//   provenance-bench bundle DIR FILES   bundle export/import of one contribution per file in FILES
//                                       (the bundle stays at DIR/datanet.bundle)
//   provenance-bench import DIR BUNDLE  import alone, into a fresh store at DIR (for profiling)
//   provenance-bench audit DIR          audit alone, of the store a `log` run left in DIR
//   provenance-bench reviews DIR N B    N contributions accepted by reviews of B contributions each:
//                                       decide, audit, export and import (records only)
import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation
import Glibc

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
func time<R>(_ body: () throws -> R) rethrows -> (R, Double) {
    let t = ContinuousClock.now
    let r = try body()
    return (r, seconds(ContinuousClock.now - t))
}
func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
func p99(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[min(s.count - 1, s.count * 99 / 100)] }

/// A Datanet with one owner-sequencer, two curators (quorum 1) and two authors.
func makeDatanet(_ dir: String) throws -> (Ledger, DatanetID, SigningKey, [SigningKey], SigningKey) {
    try? FileManager.default.removeItem(atPath: dir)
    let ledger = try Ledger(store: try ObjectStore(directory: dir, create: true))
    let owner = try SigningKey(), curator = try SigningKey(), other = try SigningKey()
    let authors = [try SigningKey(), try SigningKey()]
    let policy = PolicyState(name: "bench", owner: owner.publicKey, sequencer: owner.publicKey, curators: [curator.publicKey, other.publicKey],
                             quorum: 1, contributors: nil, readers: nil, maxPendingProposals: .max, maxPendingBytes: .max)
    var g = Envelope(kind: .genesis, body: Genesis(policy: policy, createdAt: 0, nonce: [UInt8](repeating: 3, count: 16)).body)
    try g.sign(with: owner)
    return (ledger, try ledger.create(genesis: g, sequencerKey: owner), owner, authors, curator)
}

/// Signs contributions with the two authors' keys on two threads (each key signs serially).
func contributions(_ d: DatanetID, _ authors: [SigningKey], contents: [ObjectID], size: UInt64) throws -> [Envelope] {
    let halves = try Parallel.map([0, 1], grain: 1) { a -> [Envelope] in
        try stride(from: a, to: contents.count, by: 2).map { i in
            var e = Envelope(kind: .contribution, body: Contribution(
                datanet: d, author: authors[a].publicKey, content: contents[i], contentKind: .blob, size: size,
                mediaType: "application/octet-stream", license: "CC0-1.0", sidecar: .zero, createdAt: UInt64(i)).body)
            try e.sign(with: authors[a])
            return e
        }
    }
    return (0..<contents.count).map { halves[$0 % 2][$0 / 2] }
}

func propose(_ ledger: Ledger, _ records: [Envelope]) throws {
    for start in stride(from: 0, to: records.count, by: 20_000) { try ledger.propose(all: Array(records[start..<min(records.count, start + 20_000)])) }
}

let args = CommandLine.arguments
guard args.count >= 3 else { print("usage: provenance-bench log DIR [N] | bundle DIR FILES"); exit(2) }
let dir = args[2]

switch args[1] {
case "log":
    let n = args.count > 3 ? Int(args[3])! : 1_000_000
    let (ledger, d, owner, authors, curator) = try makeDatanet(dir)
    let (records, signT) = try time { try contributions(d, authors, contents: (0..<n).map { ObjectID(SHA256.hash(Array("c\($0)".utf8))) }, size: 1024) }
    try propose(ledger, records)
    let (_, intakeT) = try time { try ledger.sequence(d, key: owner) }
    // 1,000 decisions, spread over the log.
    let decided = stride(from: 0, to: n, by: max(1, n / 1000)).map { records[$0].id }
    try ledger.propose(all: try decided.map { id in
        var e = Envelope(kind: .review, body: Review(datanet: d, reviewer: curator.publicKey, contributions: [id], accept: true, reason: "").body)
        try e.sign(with: curator)
        return e
    })
    _ = try ledger.sequence(d, key: owner)
    let size = try ledger.reader.state(of: d).size
    print(String(format: "setup: %d contributions signed in %.1f s, %d intakes sequenced in %.1f s; log size %llu", n, signT, n, intakeT, size))
    // Receipts: build and verify, 200 random decided contributions.
    var build = [Double](), verify = [Double]()
    var rng = SystemRandomNumberGenerator()
    for _ in 0..<200 {
        let id = decided.randomElement(using: &rng)!
        let (receipt, b) = try time { try ledger.provenance.receipt(for: id) }
        let (v, t) = time { receipt.verify(anchor: d) }
        guard v.holds else { print("receipt did not verify"); exit(1) }
        build.append(b); verify.append(t)
    }
    print(String(format: "receipt at %llu leaves: build median %.2f ms; verify median %.2f ms, p99 %.2f ms", size, median(build) * 1e3, median(verify) * 1e3, p99(verify) * 1e3))
    // Single-core signature verification rate, in this run.
    let sample = Array(records.prefix(20_000))
    let (_, sigT) = try time { for e in sample { _ = try e.verifiedSigners() } }
    let sigRate = Double(sample.count) / sigT
    print(String(format: "single-core Ed25519 verify (record signatures): %.0f/s", sigRate))
    let (report, auditT) = try time { try ledger.audit(d) }
    guard report.holds else { print("audit found violations: \(report.violations.prefix(3))"); exit(1) }
    let rate = Double(report.signatures) / auditT
    print(String(format: "audit of %llu leaves: %.1f s = %.0f leaves/s, %d signatures = %.0f/s = %.0f%% of the single-core rate (%d cores)",
                 report.leaves, auditT, Double(report.leaves) / auditT, report.signatures, rate, 100 * rate / sigRate, Parallel.cores))
case "bundle":
    let files = args[3]
    let paths = try FileManager.default.subpathsOfDirectory(atPath: files).filter { !$0.hasSuffix("/") }.sorted()
        .map { files + "/" + $0 }.filter { var s = stat(); return stat($0, &s) == 0 && (s.st_mode & S_IFMT) == S_IFREG }
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let (ledger, d, owner, authors, _) = try makeDatanet(dir + "/a")
    let added = try Ingest(store: ledger.store).add(paths: paths)
    let records = try contributions(d, authors, contents: added.map(\.id), size: 1024)
    try propose(ledger, records)
    _ = try ledger.sequence(d, key: owner)
    let bundle = dir + "/datanet.bundle"
    let out = open(bundle, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let (summary, exportT) = try time { try ledger.exportBundle(d, to: out) }
    fsync(out); close(out)
    let mb = Double(summary.bytes) / 1e6
    print(String(format: "bundle export: %d contributions, %d objects, %.1f MB in %.2f s = %.1f MB/s", records.count, summary.objects, mb, exportT, mb / exportT))
    try? FileManager.default.removeItem(atPath: dir + "/b")
    let peer = try Ledger(store: try ObjectStore(directory: dir + "/b", create: true))
    let input = open(bundle, O_RDONLY)
    let (_, importT) = try time { try peer.importBundle(from: input) }
    close(input)
    print(String(format: "bundle import: %.1f MB in %.2f s = %.1f MB/s (log replayed, %d signatures checked, content verified)", mb, importT, mb / importT, records.count + 1))
case "audit":
    // The audit alone, of the store a `log` run left in DIR (for profiling).
    let ledger = try Ledger(store: try ObjectStore(directory: dir, create: false), create: false)
    let d = try ledger.reader.datanets()[0].id
    let (report, auditT) = try time { try ledger.audit(d) }
    print(String(format: "audit of %llu leaves: %.1f s = %.0f leaves/s", report.leaves, auditT, Double(report.leaves) / auditT))
case "reviews":
    // N contributions taken in, then accepted by reviews of B each (one curator, quorum 1).
    let n = Int(args[3])!, batch = Int(args[4])!
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let (ledger, d, owner, authors, curator) = try makeDatanet(dir + "/a")
    let records = try contributions(d, authors, contents: (0..<n).map { ObjectID(SHA256.hash(Array("c\($0)".utf8))) }, size: 1024)
    try propose(ledger, records)
    _ = try ledger.sequence(d, key: owner)
    let reviews = try Parallel.map(Array(stride(from: 0, to: n, by: batch))) { start -> Envelope in
        var e = Envelope(kind: .review, body: Review(datanet: d, reviewer: curator.publicKey,
                                                     contributions: records[start..<min(n, start + batch)].map(\.id), accept: true, reason: "").body)
        try e.sign(with: curator)
        return e
    }
    try propose(ledger, reviews)
    let before = try ledger.reader.state(of: d).size
    let (report, decideT) = try time { try ledger.sequence(d, key: owner) }
    let size = try ledger.reader.state(of: d).size
    guard report.decisions.count == n else { print("only \(report.decisions.count) of \(n) decided"); exit(1) }
    let leafBytes = try ledger.reader.leaves(d, from: size - 1).first!.leaf.encoded.count
    print(String(format: "decide: %d contributions by %d review(s) of %d: %.2f s = %.0f decisions/s; %llu leaves appended (last decision leaf %d bytes)",
                 n, reviews.count, batch, decideT, Double(n) / decideT, size - before, leafBytes))
    let (audit, auditT) = try time { try ledger.audit(d) }
    guard audit.holds else { print("audit found violations: \(audit.violations.prefix(3))"); exit(1) }
    print(String(format: "audit: %llu leaves, %d signatures in %.2f s", audit.leaves, audit.signatures, auditT))
    let bundle = dir + "/records.bundle"
    let out = open(bundle, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let (summary, exportT) = try time { try ledger.exportBundle(d, recordsOnly: true, to: out) }
    fsync(out); close(out)
    try? FileManager.default.removeItem(atPath: dir + "/b")
    let peer = try Ledger(store: try ObjectStore(directory: dir + "/b", create: true))
    let input = open(bundle, O_RDONLY)
    let (_, importT) = try time { try peer.importBundle(from: input) }
    close(input)
    print(String(format: "bundle: %.1f MB exported in %.2f s, imported (replayed and audited) in %.2f s", Double(summary.bytes) / 1e6, exportT, importT))
case "import":
    try? FileManager.default.removeItem(atPath: dir)
    let peer = try Ledger(store: try ObjectStore(directory: dir, create: true))
    let input = open(args[3], O_RDONLY)
    let (summary, importT) = try time { try peer.importBundle(from: input) }
    close(input)
    let mb = Double(summary.bytes) / 1e6
    print(String(format: "bundle import: %.1f MB in %.2f s = %.1f MB/s (%d leaves, %d objects)", mb, importT, mb / importT, summary.leaves, summary.objects))
default:
    print("unknown mode \(args[1])"); exit(2)
}
